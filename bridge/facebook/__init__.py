"""Reading members' Facebook "Download Your Information" exports (JSON)."""
