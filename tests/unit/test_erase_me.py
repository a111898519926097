"""`!erase-me confirm` is run only from one of the member's verified devices;
the explanation before it, from any (pure: the router's decision)."""

from __future__ import annotations

import pytest

from bots.framework.actions import Reply
from bots.framework.commands.authorize import UNVERIFIED_REFUSAL
from bots.framework.commands.spec import MEMBER, CommandTable
from bots.framework.events import IncomingMessage, PowerSnapshot
from bots.framework.markdown import render
from bots.framework.router import Respond, Run, needs_device_trust, route
from bots.framework.trust.policy import DeviceTrust
from bots.onboarding.leaving import ERASE, ERASE_CONFIRMED, LEAVE

ME, ALICE, DM = "@hearth-bot:example.org", "@alice:example.org", "!dm:example.org"
T0 = 1_700_000_000_000


def table() -> CommandTable:
    commands = CommandTable()
    for command in (LEAVE, ERASE, ERASE_CONFIRMED):
        commands.add(command)
    return commands


def message(body: str) -> IncomingMessage:
    return IncomingMessage(
        event_id="$e",
        room_id=DM,
        sender=ALICE,
        body=body,
        msgtype="m.text",
        server_ts_ms=T0 + 1,
        encrypted=True,
    )


def decide(body: str, device: DeviceTrust) -> object:
    return route(
        message(body),
        me=ME,
        oldest_ms=T0,
        prefix="!",
        table=table(),
        power=PowerSnapshot(in_room=MEMBER),
        device=device,
    )


@pytest.mark.parametrize("body", ["!erase-me confirm", "!Erase-me CONFIRM"])
def test_confirming_from_a_device_its_owner_never_verified_is_refused(body: str) -> None:
    # What a stolen access token gives: a session, not the member's keys.
    decision = decide(body, DeviceTrust.UNVERIFIED)
    assert isinstance(decision, Respond)
    (reply,) = decision.actions
    assert isinstance(reply, Reply)
    assert reply.body == render(UNVERIFIED_REFUSAL).body


def test_confirming_from_a_device_of_an_identity_not_the_pinned_one_is_refused() -> None:
    # (A member's reset identity is followed, and pinned, before this is
    # asked; resetting it needs the account's password.)
    decision = decide("!erase-me confirm", DeviceTrust.IDENTITY_CHANGED)
    assert isinstance(decision, Respond)


def test_confirming_from_a_verified_device_runs() -> None:
    decision = decide("!erase-me confirm", DeviceTrust.VERIFIED)
    assert isinstance(decision, Run)
    assert decision.command is ERASE_CONFIRMED


@pytest.mark.parametrize("body", ["!erase-me", "!erase-me please", "!leave"])
def test_the_explanation_and_leaving_need_no_verified_device(body: str) -> None:
    decision = decide(body, DeviceTrust.UNVERIFIED)
    assert isinstance(decision, Run)
    assert decision.command is not ERASE_CONFIRMED


def test_the_runtime_looks_up_the_device_for_the_confirmation_only() -> None:
    assert needs_device_trust(message("!erase-me confirm"), prefix="!", table=table())
    assert not needs_device_trust(message("!erase-me"), prefix="!", table=table())
