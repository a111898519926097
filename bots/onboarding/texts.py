"""What the bot says, in the community's own words where it has them. Pure."""

from __future__ import annotations

import datetime as dt

from bots.onboarding.applicant import Application, Say, Stage, TellModerators, Via
from provisioning.schema import CommunityFile

AGREE_HINT = "When you have read it, reply !agree (or react to this message with 👍)."


def group_name(cfg: CommunityFile, key: str | None) -> str:
    group = cfg.group(key) if key else None
    return group.name if group else (key or "a group")


def choices(cfg: CommunityFile) -> str:
    return "\n".join(f"• {g.key}: {g.name}" for g in cfg.groups)


def to_applicant(cfg: CommunityFile, app: Application, say: Say, prefix: str) -> str:
    ob = cfg.onboarding
    match say.what:
        case "welcome":
            return (
                f"{ob.welcome.strip()}\n\n"
                f"Our code of conduct:\n{cfg.community.code_of_conduct.strip()}\n\n"
                f"{ob.privacy_advice.strip()}\n\n"
                f"{ob.backup_advice.strip()}\n\n"
                f"{AGREE_HINT.replace('!', prefix, 1)}"
            )
        case "choose_group":
            return (
                f"Thank you. Which group are you looking for? Reply with its key:\n{choices(cfg)}"
            )
        case "question":
            n, total = len(app.answers) + 1, len(app.questions)
            return f"Question {n} of {total}: {say.detail}"
        case "empty_answer":
            return f"I didn't catch an answer. {say.detail}"
        case "next_steps":
            return ob.next_steps.strip()
        case "approved":
            group = cfg.group(app.group) if app.group else None
            history = (
                " Its members share their earlier conversations with newcomers: accept my "
                "invitation (rather than joining from the Space) and you can read them too."
                if group is not None and group.history_before_joining
                else ""
            )
            return (
                f"Good news: you're in! I've invited you to {group_name(cfg, app.group)}. "
                f"Accept the invitations in Element to join.{history}"
            )
        case "denied":
            reason = f"\n\nThe moderators said: {say.detail}" if say.detail else ""
            return (
                f"I'm sorry: the moderators could not accept your request to join "
                f"{group_name(cfg, app.group)}.{reason}\n\n"
                "Thank you for your interest, and take care."
            )
        case "reminder":
            return (
                "Just a gentle reminder: your application is waiting for you here, "
                "whenever you're ready."
            )
        case "expired":
            return (
                "As we haven't heard from you for a while, I've closed your application. "
                "If you'd still like to join, ask a moderator to reopen it."
            )
        case "expired_undecided":
            return (
                "I'm sorry: the moderators didn't get to your application in time, so I've "
                "closed it, and your answers will be deleted. If you'd still like to join, ask "
                "a moderator to reopen it."
            )
        case "reopened":
            return "A moderator has reopened your application: let's carry on."
        case "not_now":
            return _not_now(Stage(say.detail) if say.detail else app.stage, prefix)
    return ""


def _not_now(stage: Stage, prefix: str) -> str:
    if stage is Stage.ANSWERING:
        return "You've already agreed: please answer the question above."
    if stage is Stage.PENDING:
        return "Your answers are with the moderators; I'll tell you when they have decided."
    if stage in (Stage.APPROVED, Stage.DENIED, Stage.EXPIRED, Stage.WITHDRAWN):
        return "Your application is closed."
    return f"There's nothing to agree to right now. Send {prefix}help to see what I can do."


VIA = {
    Via.TOKEN: "registered with an invitation code for this group",
    Via.NO_TOKEN: "registered without a group's invitation code",
    Via.KNOCK: "asked to join (knock)",
    Via.JOIN: "asked to join with !join",
}


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def to_moderators(cfg: CommunityFile, app: Application, tell: TellModerators, prefix: str) -> str:
    who, group = app.user_id, group_name(cfg, app.group)
    match tell.what:
        case "application":
            lines = [
                f"New application to {group} from {who}: {VIA[app.via]}, {when(app.created_at)}."
            ]
            if app.note:
                lines.append(f"Their note: {app.note}")
            for q, a in zip(app.questions, app.answers, strict=False):
                lines.append(f"Q: {q}\nA: {a}")
            lines.append(f"Decide with {prefix}approve {who} or {prefix}deny {who} <reason>.")
            return "\n\n".join(lines)
        case "decided":
            verb = "approved" if app.stage is Stage.APPROVED else "denied"
            return f"{app.decided_by} {verb} {who}'s application to {group}."
        case "already_decided":
            verb = "approved" if app.stage is Stage.APPROVED else "denied"
            return f"{who}'s application was already {verb} by {tell.detail}."
        case "not_ready":
            return f"{who}'s application is not ready for a decision ({tell.detail})."
        case "not_expired":
            return f"Only an expired application can be reopened; {who}'s is {tell.detail}."
        case "withdrawn":
            return f"{who} withdrew their application to {group}."
        case "expired":
            return (
                f"{who}'s application to {group} waited too long for a decision and is closed; "
                f"its answers will be deleted. {prefix}reopen {who} puts it before you again."
            )
    return ""
