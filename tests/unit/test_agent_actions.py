"""Features reach the admin agent only as actions, reads too: the answer
comes back as a record the asker reads once the action is performed.

Here the agent cannot be reached (its socket is not there): the real
outbox, storage, effector and performers, without a homeserver. The
answered paths run against the real agent and Synapse in
tests/integration/test_onboarding.py and test_moderation.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bots.framework.actions import Action, ActionTypes, PutRecord
from bots.framework.agent_answers import ANSWERS, AgentUnanswered
from bots.framework.community import Community
from bots.framework.config import BotConfig
from bots.framework.events import PowerSnapshot
from bots.framework.feature import Context, FeatureConfig, Running
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.queue import Outbox
from bots.framework.storage import Storage
from bots.moderation.config import ModerationConfig
from bots.moderation.performers import fetch_reports_performer
from bots.moderation.reports import FetchReports, watch_reports
from bots.onboarding.arrivals import LookUpTokenGroups, watch_registrations
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.performers import token_groups_performer
from bots.onboarding.plan import FEATURE as ONBOARDING
from bots.onboarding.plan import KIND as APPLICATION
from provisioning.schema import load_community

BOT = "@hearth-bot:example.org"
NEWCOMER = "@newcomer:example.org"
TOKEN_REF = "0123456789abcdef01234567"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "community.example.yaml"
C = TypeVar("C", bound=FeatureConfig)


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    gone = tmp_path / "agent.sock"  # no agent listens here
    box = Outbox(ActionTypes((LookUpTokenGroups, FetchReports)))
    box.storage = await Storage.open(tmp_path / "bot.db")
    box.effector = Effector(
        None,  # asking the agent sends nothing to the homeserver
        performers={
            LookUpTokenGroups: token_groups_performer(gone),
            FetchReports: fetch_reports_performer(gone),
        },
    )
    try:
        yield box
    finally:
        await box.storage.close()


def running(outbox: Outbox, feature: str, config: C, tmp_path: Path) -> Running[C]:
    assert outbox.storage is not None
    ctx = Context(
        me=BOT,
        feature=feature,
        config=config,
        bot=BotConfig(
            homeserver="https://example.org",
            user_id=BOT,
            password_file=Path("unused"),
            state_dir=tmp_path,
            admin_socket=tmp_path / "agent.sock",
        ),
        now=1e9,
        db=None,  # type: ignore[arg-type]  # records only
        power=lambda room, user: PowerSnapshot(0, None),
        store=outbox.storage,
        community=lambda: Community(document=load_community(EXAMPLE)),
    )

    async def submit(key: str, actions: Sequence[Action]) -> None:
        await outbox.submit(f"service:{feature}:{key}", actions)

    return Running(lambda: ctx, submit)


async def test_a_newcomer_is_not_welcomed_without_the_group_their_token_was_for(
    outbox: Outbox, tmp_path: Path
) -> None:
    assert outbox.storage is not None
    spool = tmp_path / "registrations"
    spool.mkdir()
    arrived = spool / "newcomer.json"
    arrived.write_text(
        json.dumps({"user_id": NEWCOMER, "token_ref": TOKEN_REF, "registered_at": 0})
    )
    # An answer a restart left behind, which nobody read.
    await outbox.submit("left", [PutRecord(ONBOARDING, ANSWERS, "old", {"groups": {}})])
    config = OnboardingConfig(community=Path("unused.yaml"), registrations=spool)
    run = running(outbox, ONBOARDING, config, tmp_path)

    with pytest.raises(AgentUnanswered):
        await asyncio.wait_for(watch_registrations(run, run.fresh()), 10)

    # Still in the spool, looked at again once the service is restarted.
    assert arrived.exists()
    assert await outbox.storage.records(ONBOARDING, APPLICATION) == {}
    assert await outbox.storage.records(ONBOARDING, ANSWERS) == {}
    assert not await outbox.storage.pending_outbox()


async def test_reports_wait_for_an_agent_that_answers(outbox: Outbox, tmp_path: Path) -> None:
    assert outbox.storage is not None
    run = running(outbox, "moderation", ModerationConfig(community=Path("u.yaml")), tmp_path)
    reports: Any = {"reports": [{"id": 1, "reason": "left behind"}]}
    await outbox.submit("left", [PutRecord("moderation", ANSWERS, "old", reports)])

    with pytest.raises(AgentUnanswered):
        await asyncio.wait_for(watch_reports(run, run.fresh()), 10)

    assert await outbox.storage.record("moderation", "reports", "seen") is None
    # No report's reason is kept once the answer is read, nor one left behind.
    assert await outbox.storage.records("moderation", ANSWERS) == {}
