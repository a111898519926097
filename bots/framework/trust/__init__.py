"""Trust in other people's devices: their cross-signing read and checked
(`identity.py`), the rules built on it (`policy.py`), the cache and pinned
identities (`identities.py`) and key sharing that follows the rules
(`sharing.py`). nio has no cross-signing of others; this is the layer around
it, written for the matrix-nio version pinned in constraints.txt."""
