"""`Storage` is composed of one store per concern (inbox, outbox, records,
DMs, pins, sessions, migrations), as Synapse composes its DataStore. Mixins
compose silently: a method two stores both define would leave one of them
unreachable through `Storage`, whichever comes later in the MRO."""

from __future__ import annotations

import inspect

from bots.framework.storage import Storage
from bots.framework.storage.base import StoreBase


def own_names(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("__")}


def test_no_two_stores_define_the_same_method() -> None:
    stores = [c for c in inspect.getmro(Storage) if issubclass(c, StoreBase) and c is not Storage]
    assert len(stores) == 8  # six concerns, migrations and the base they share
    clashes = sorted(
        f"{name}: {a.__name__} and {b.__name__}"
        for i, a in enumerate(stores)
        for b in stores[i + 1 :]
        for name in own_names(a) & own_names(b)
    )
    assert clashes == []
