"""From findings to what the bot does: gentle, and escalating only for
someone who keeps breaking the rules."""

from __future__ import annotations

from dataclasses import dataclass

from bots.moderation.protections.checks import Finding, Rule
from provisioning.protections import Protections, Step


@dataclass(frozen=True)
class Decision:
    findings: tuple[Finding, ...]
    step: Step | None = None  # warn, mute or alert, for this member's n-th offence
    redact: bool = False
    crisis: bool = False  # alert the moderators privately, offer resources; nothing else
    close_room: bool = False  # switch the room to ask-to-join (a join wave)
    offence: bool = False  # counts towards the member's next step

    @property
    def acts(self) -> bool:
        return bool(self.findings)


NOTHING = Decision(())


def decide(findings: tuple[Finding, ...], earlier_offences: int, cfg: Protections) -> Decision:
    """*earlier_offences*: this member's offences within forget_hours, before this one."""
    if not findings:
        return NOTHING
    rules = {f.rule for f in findings}
    if Rule.CRISIS in rules:
        return Decision(findings, crisis=True)
    if rules == {Rule.JOIN_WAVE}:
        return Decision(findings, step=Step.ALERT, close_room=True)
    if rules == {Rule.SLOW_MODE}:
        return Decision(findings, redact=True)  # removed, but no offence
    step = cfg.steps[min(earlier_offences, len(cfg.steps) - 1)]
    return Decision(findings, step=step, redact=cfg.redact, offence=True)
