"""What the bot says, in the community's own words where it has them. Pure."""

from __future__ import annotations

import datetime as dt

from bots.framework.markdown import Md, bullets, code, md
from bots.onboarding.applicant import Application, Say, Stage, TellModerators, Via
from provisioning.schema import CommunityFile

# As the applicant reads it with the default prefix (the tests look for it).
AGREE_HINT = "When you have read it, reply !agree (or react to this message with 👍)."


def group_name(cfg: CommunityFile, key: str | None) -> str:
    group = cfg.group(key) if key else None
    return group.name if group else (key or "a group")


def choices(cfg: CommunityFile) -> Md:
    return bullets(md("{}: {}", code(g.key), g.name) for g in cfg.groups)


def to_applicant(cfg: CommunityFile, app: Application, say: Say, prefix: str) -> Md:
    """What the applicant reads. The community file's texts are Markdown,
    written by its staff; the applicant's own words are never echoed."""
    ob = cfg.onboarding
    match say.what:
        case "welcome":
            return Md("\n\n").join(
                [
                    Md(ob.welcome.strip()),
                    Md("#### Our code of conduct"),
                    Md(cfg.community.code_of_conduct.strip()),
                    Md(ob.privacy_advice.strip()),
                    Md(ob.backup_advice.strip()),
                    md(AGREE_HINT.replace("!agree", "{}"), code(prefix + "agree")),
                ]
            )
        case "choose_group":
            return md(
                "Thank you. Which group are you looking for? Reply with its key:\n\n{}",
                choices(cfg),
            )
        case "question":
            n, total = len(app.answers) + 1, len(app.questions)
            return md("**Question {} of {}:** {}", n, total, say.detail)
        case "empty_answer":
            return md("I didn't catch an answer. {}", say.detail)
        case "next_steps":
            return Md(ob.next_steps.strip())
        case "approved":
            group = cfg.group(app.group) if app.group else None
            history = Md(
                " Its members share their earlier conversations with newcomers: accept my "
                "invitation (rather than joining from the Space) and you can read them too."
                if group is not None and group.history_before_joining
                else ""
            )
            return md(
                "Good news: you're in! I've invited you to **{}**. "
                "Accept the invitations in Element to join.{}",
                group_name(cfg, app.group),
                history,
            )
        case "denied":
            reason = md("\n\nThe moderators said: {}", say.detail) if say.detail else Md("")
            return md(
                "I'm sorry: the moderators could not accept your request to join {}.{}\n\n"
                "Thank you for your interest, and take care.",
                group_name(cfg, app.group),
                reason,
            )
        case "reminder":
            return Md(
                "Just a gentle reminder: your application is waiting for you here, "
                "whenever you're ready."
            )
        case "expired":
            return Md(
                "As we haven't heard from you for a while, I've closed your application. "
                "If you'd still like to join, ask a moderator to reopen it."
            )
        case "expired_undecided":
            return Md(
                "I'm sorry: the moderators didn't get to your application in time, so I've "
                "closed it, and your answers will be deleted. If you'd still like to join, ask "
                "a moderator to reopen it."
            )
        case "reopened":
            return Md("A moderator has reopened your application: let's carry on.")
        case "not_now":
            return _not_now(Stage(say.detail) if say.detail else app.stage, prefix)
    return Md("")


def _not_now(stage: Stage, prefix: str) -> Md:
    if stage is Stage.ANSWERING:
        return Md("You've already agreed: please answer the question above.")
    if stage is Stage.PENDING:
        return Md("Your answers are with the moderators; I'll tell you when they have decided.")
    if stage in (Stage.APPROVED, Stage.DENIED, Stage.EXPIRED, Stage.WITHDRAWN):
        return Md("Your application is closed.")
    return md(
        "There's nothing to agree to right now. Send {} to see what I can do.",
        code(prefix + "help"),
    )


VIA = {
    Via.TOKEN: "registered with an invitation code for this group",
    Via.NO_TOKEN: "registered without a group's invitation code",
    Via.KNOCK: "asked to join (knock)",
    Via.JOIN: "asked to join with !join",
}


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def to_moderators(cfg: CommunityFile, app: Application, tell: TellModerators, prefix: str) -> Md:
    """What the moderators read. The applicant's note and answers are shown
    exactly as typed, never as Markdown."""
    who, group = app.user_id, group_name(cfg, app.group)
    match tell.what:
        case "application":
            parts = [
                md("#### New application to {}", group),
                md("From {}: {}, {}.", who, VIA[app.via], when(app.created_at)),
            ]
            if app.note:
                parts.append(md("**Their note:** {}", app.note))
            for q, a in zip(app.questions, app.answers, strict=False):
                parts.append(md("**Q:** {}\\\n**A:** {}", q, a))
            parts.append(
                md(
                    "Decide with {} or {}.",
                    code(f"{prefix}approve {who}"),
                    code(f"{prefix}deny {who} <reason>"),
                )
            )
            return Md("\n\n").join(parts)
        case "decided":
            verb = "approved" if app.stage is Stage.APPROVED else "denied"
            return md("{} {} {}'s application to {}.", app.decided_by, verb, who, group)
        case "already_decided":
            verb = "approved" if app.stage is Stage.APPROVED else "denied"
            return md("{}'s application was already {} by {}.", who, verb, tell.detail)
        case "not_ready":
            return md("{}'s application is not ready for a decision ({}).", who, tell.detail)
        case "not_expired":
            return md("Only an expired application can be reopened; {}'s is {}.", who, tell.detail)
        case "withdrawn":
            return md("{} withdrew their application to {}.", who, group)
        case "expired":
            return md(
                "{}'s application to {} waited too long for a decision and is closed; "
                "its answers will be deleted. {} puts it before you again.",
                who,
                group,
                code(f"{prefix}reopen {who}"),
            )
    return Md("")
