"""A feature's question to the admin agent, asked as an action.

The agent is reached only through performers (``bots/<feature>/performers.py``).
A read that must return something (which group a token was for, the newest
reports) is an action whose performer writes the agent's answer to a record
under the asker's key; the asker reads it right after ``run.submit``, which
performs the action before it returns, and deletes it at once, with any
answer a restart left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bots.base.errors import HearthError
from bots.framework.actions import Action
from bots.framework.feature import FeatureConfig, Running

C = TypeVar("C", bound=FeatureConfig)

# Records holding the admin agent's answers, each under its asker's key.
ANSWERS = "agent-answer"


class AgentUnanswered(HearthError):
    """The admin agent gave no answer (the performer logged why)."""


async def ask_agent(
    run: Running[C], what: str, asking: Callable[[str], Action], unanswered: str
) -> Mapping[str, Any]:
    """Perform ``asking(answer_key)`` (submitted as *what*) and return the
    answer its performer recorded.

    Raises:
        AgentUnanswered: with *unanswered*, when the performer wrote none.
    """
    key = uuid.uuid4().hex
    await run.submit(f"{what}:{key}", [asking(key)])
    ctx = run.fresh()
    answers = await ctx.records(ANSWERS)
    if answers:
        await run.submit(f"{what}:{key}:read", [ctx.delete(ANSWERS, k) for k in answers])
    answer = answers.get(key)
    if answer is None:
        raise AgentUnanswered(unanswered)
    return answer
