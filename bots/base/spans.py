"""A length of time in the words a member reads ("1 minute", "2 hours"). Pure."""

from __future__ import annotations

from datetime import timedelta

UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))


def span_words(duration: timedelta) -> str:
    """The largest whole unit that states *duration* exactly, singular for
    one: "1 minute", "90 minutes", "2 weeks"; seconds otherwise."""
    seconds = int(duration.total_seconds())
    for unit, size in UNITS:
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"
