"""The example feature of docs/writing-a-feature.md, in a bot on a real
Synapse: the command answered, the reaction counted, the week's job run
and the count it kept told, and the next week's after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.core.feature import FEATURE as CORE
from bots.thanks.config import ThanksConfig
from bots.thanks.feature import FEATURE as THANKS
from bots.thanks.feature import digest
from tests.support.homeserver import Homeserver, cast, member, running_bot, wait_joined
from tests.support.member_client import body

pytestmark = pytest.mark.integration


async def test_thanks_are_answered_counted_and_told(homeserver: Homeserver, state: Path) -> None:
    c = await cast(homeserver, state)
    # A "week" of four seconds: long enough for the thank-yous below.
    section = ThanksConfig(week_s=4)
    config = c.config.model_copy(update={"feature_sections": {"thanks": section}})
    async with (
        running_bot(config, [CORE, THANKS]),
        member(homeserver, c.alice, state / "alice") as m,
    ):
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)
        said = await m.send(c.room, "I made it to the meeting, thanks to you all")
        relation = {"rel_type": "m.annotation", "event_id": said, "key": "🙏"}
        await m.send_event(c.room, "m.reaction", {"m.relates_to": relation})
        sent = await m.send(c.room, f"!thanks {c.mod.user_id} for the lift")
        reply = await m.wait_for_reply(sent)
        assert body(reply) == f"Thank you passed on to {c.mod.user_id}."
        told = await m.wait_for(lambda ev: body(ev).startswith("This week"), timeout=30)
        assert body(told) == digest(2)
        # The weeks go on: a thank-you after the digest is told in the next.
        again = await m.send(c.room, f"!thanks {c.mod.user_id}")
        await m.wait_for_reply(again)
        next_week = await m.wait_for(lambda ev: body(ev) == digest(1), timeout=30)
        assert next_week.event_id != told.event_id
