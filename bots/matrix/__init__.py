"""Hearth's HTTP calls to the homeserver outside nio, all through `http.call`."""
