"""What the moderation feature's own action does: ask the admin agent for
Element's reports. Features reach the agent only in their performers
(``tests/unit/test_layering.py`` checks it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import ListReports
from bots.framework.actions import Action, Extension, PutRecord
from bots.framework.agent_answers import ANSWERS
from bots.framework.feature import PerformerFactory
from bots.framework.logging import get_logger
from bots.moderation.protections.respond import FEATURE
from bots.moderation.reports import REPORT_FIELDS, FetchReports, new_reports

log = get_logger(__name__)


def fetch_reports_performer(
    admin_socket: Path | None,
) -> Callable[[FetchReports], Awaitable[Sequence[Action]]]:
    async def perform(action: FetchReports) -> Sequence[Action]:
        if admin_socket is None:
            # Not asked for: the reports service does not run without one.
            return []
        try:
            answer = await AgentClient(admin_socket).ask(ListReports(limit=100))
        except AgentError as exc:
            # No record: the asker sees no answer and tries again later.
            log.warning("reports not read", reason=exc.__class__.__name__)
            return []
        rows = answer.get("reports")
        reports = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
        new = new_reports(reports, action.seen, action.now_ms)
        kept = [{k: r.get(k) for k in REPORT_FIELDS} for r in new]
        return [PutRecord(FEATURE, ANSWERS, action.answer_key, {"reports": kept})]

    return perform


PERFORMERS: dict[type[Extension], PerformerFactory] = {
    FetchReports: lambda setup: fetch_reports_performer(setup.bot.admin_socket),
}
