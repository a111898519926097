"""Which function performs each built-in action: registered once, beside
the performer, and found by the action's class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bots.framework.actions import Effect

if TYPE_CHECKING:
    from bots.framework.outbox.means import Means

# A performer: the means, the action and its transaction id; its reply is
# nio's response (an ErrorResponse when refused) or DONE.
Perform = Callable[["Means", Any, str], Awaitable[Any]]
F = TypeVar("F", bound=Perform)

PERFORMERS: dict[type[Effect], Perform] = {}


def performs(*kinds: type[Effect]) -> Callable[[F], F]:
    """Register the decorated function as the performer of *kinds*."""

    def register(perform: F) -> F:
        for kind in kinds:
            if kind in PERFORMERS:
                raise TypeError(f"{kind.__name__} has two performers")
            PERFORMERS[kind] = perform
        return perform

    return register
