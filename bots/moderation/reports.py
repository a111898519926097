"""Reports reach the moderators' room, and never name who sent them.

Two ways in: Element's own "Report" (the homeserver keeps it; the admin
agent reads Synapse's event reports for the bot, without the reporter),
and `!report <reason>` sent in reply to the message, which the bot removes
from the room at once and confirms to the reporter by DM.

The bot asks the agent for the reports with an action (:class:`FetchReports`),
as it reaches the agent for anything; the performer
(:mod:`bots.moderation.performers`) leaves the new ones in a record, which
the service reads and forwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import Action, Extension, PutRecord, Redact, SendDirect, SendNotice
from bots.framework.agent_answers import ask_agent
from bots.framework.commands.spec import Arg, Command, Invocation
from bots.framework.feature import Context, Running
from bots.framework.logging import get_logger
from bots.framework.markdown import Md, md
from bots.moderation.config import ModerationConfig
from bots.moderation.protections.respond import FEATURE, message_link
from provisioning.schema import CommunityFile

log = get_logger(__name__)

FIRST_LOOK_BACK_S = 86400.0  # on the first look, reports of the last day
MAX_REASON = 500
THANKS = Md(
    "Thank you: the moderators have your report. Nobody else is told who sent it, "
    "and I've removed your `!report` from the room."
)
HOW = Md("To report a message, reply to it with `!report` and, if you like, a reason.")
# What a report keeps of the agent's row: never who sent it (the agent
# does not say), and nothing the forwarding does not use.
REPORT_FIELDS = ("id", "received_ts", "room_id", "event_id", "reason")


@dataclass(frozen=True)
class FetchReports(Extension):
    """Ask the admin agent for the newest reports. The performer keeps those
    :func:`new_reports` picks (after *seen*, or of the day before *now_ms*)
    in the record (:data:`ANSWERS`, *answer_key*) as ``{"reports": [...]}``,
    and writes nothing when the agent could not answer."""

    seen: int | None
    now_ms: float
    answer_key: str


def room_label(
    markers: Mapping[str, Mapping[str, Any]], cfg: CommunityFile, room: str
) -> str | None:
    """ "Carers · General" for a community room; None for any other room."""
    marker = markers.get(room)
    if marker is None or marker.get("community") != cfg.community.key:
        return None
    group = cfg.group(str(marker.get("group"))) if marker.get("group") else None
    if group is None:
        return cfg.community.name
    decl = next((r for r in group.rooms if r.key == marker.get("room")), None)
    return f"{group.name} · {decl.name}" if decl else group.name


def report_notice(label: str, reason: str, room: str, event: str) -> Md:
    """What the moderators read: where, the reporter's reason as typed, and
    a link to the message (their own client decrypts it)."""
    said = reason.strip()[:MAX_REASON] or "no reason given"
    return md(
        "**Report** about a message in **{}**: “{}”.{}", label, said, message_link(room, event)
    )


def new_reports(
    reports: Sequence[Mapping[str, Any]], seen: int | None, now_ms: float
) -> list[Mapping[str, Any]]:
    """Pure: the reports to forward, oldest first: after *seen* (the last id
    forwarded), or on the first look those of the last day."""

    def is_new(r: Mapping[str, Any]) -> bool:
        if not isinstance(r.get("id"), int):
            return False
        if seen is not None:
            return int(r["id"]) > seen
        return now_ms - float(r.get("received_ts") or 0) < FIRST_LOOK_BACK_S * 1000

    return sorted(filter(is_new, reports), key=lambda r: int(r["id"]))


async def fetch_reports(
    run: Running[ModerationConfig], seen: int | None, now_ms: float
) -> list[Mapping[str, Any]]:
    """The reports to forward, oldest first, from the admin agent.

    ``run.submit`` performs the fetch before it returns, so its answer is
    in the records by then; it is deleted at once, with any a restart left.

    Raises:
        AgentUnanswered: so the service is restarted with backoff.
    """
    answer = await ask_agent(
        run,
        "fetch-reports",
        lambda key: FetchReports(seen, now_ms, key),
        "the admin agent did not give the reports",
    )
    reports = answer.get("reports")
    return [r for r in reports if isinstance(r, dict)] if isinstance(reports, list) else []


async def watch_reports(run: Running[ModerationConfig], ctx: Context[ModerationConfig]) -> None:
    config = ctx.config
    if ctx.bot.admin_socket is None:
        log.info("reports from Element are not forwarded: the bot has no admin_socket")
        return
    while True:
        ctx = run.fresh()
        seen_record = await ctx.record("reports", "seen")
        seen = seen_record.get("id") if seen_record else None
        new = await fetch_reports(run, seen if isinstance(seen, int) else None, ctx.now * 1000)
        community = ctx.community()
        cfg, markers = community.file(CommunityFile), community.rooms.markers
        mods = ctx.moderators_room or community.rooms.moderators
        for report in new:
            label = room_label(markers, cfg, str(report.get("room_id")))
            actions: list[Action] = [PutRecord(FEATURE, "reports", "seen", {"id": report["id"]})]
            if label is not None and mods is not None:
                text = report_notice(
                    label, str(report.get("reason") or ""), report["room_id"], report["event_id"]
                )
                actions.append(SendNotice(mods, text, mentions=()))
            await run.submit(f"report:{report['id']}", actions)
        await asyncio.sleep(config.reports_poll_s)


async def _report(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    community = ctx.community()
    cfg, markers = community.file(CommunityFile), community.rooms.markers
    label = room_label(markers, cfg, inv.room_id)
    quiet = Redact(inv.room_id, inv.event_id, "A report, sent to the moderators")
    if label is None:
        return [SendDirect(inv.sender, "Reports are for the community's rooms.")]
    if inv.reply_to is None:
        return [quiet, SendDirect(inv.sender, HOW)]
    mods = ctx.moderators_room or community.rooms.moderators
    reason = inv.args.get("reason")
    out: list[Action] = [quiet, SendDirect(inv.sender, THANKS)]
    if mods is not None:
        text = report_notice(
            label, reason if isinstance(reason, str) else "", inv.room_id, inv.reply_to
        )
        out.append(SendNotice(mods, text, mentions=()))
    return out


REPORT = Command(
    "report",
    "Report a message to the moderators: reply to it with `!report <reason>`",
    _report,
    (Arg("reason", "what is wrong with it", required=False, rest=True),),
)
