"""!protections: show a group's protections, change them in chat, or go back
to the community file's.

A change is kept as the bot's own state in the group's main room
(`provisioning.protections.OVERRIDES`), which the bot applies over the
file's settings, and which `hearth provision` reports as drift rather than
undoing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bots.framework.actions import Action, Reply, SetState
from bots.framework.commands.spec import Arg, Command, Invocation
from bots.framework.community import CommunityRooms
from bots.framework.feature import Context
from bots.framework.markdown import Md, bullets, md
from bots.moderation.commands.handlers import refusal, typed
from bots.moderation.config import ModerationConfig
from provisioning.protections import OVERRIDES, Protections, change, effective
from provisioning.schema import GroupDecl

USAGE = Md("Use `!protections`, `!protections set <setting> <value>`, or `!protections reset`.")


def overrides_of(ctx: Context[ModerationConfig], main_room: str, group: str) -> Mapping[str, Any]:
    return ctx.keyed_state(OVERRIDES).get(main_room, {}).get(group, {})


def settings_of(
    ctx: Context[ModerationConfig], group: GroupDecl, rooms: CommunityRooms
) -> Protections:
    """The group's protections as they apply now: the file's, with the changes
    moderators made in chat over them. *rooms*: the community's rooms."""
    main = rooms.main_room(group.key)
    changed = overrides_of(ctx, main, group.key) if main else {}
    return effective(group.protections, changed)


def describe(p: Protections, changed: Mapping[str, Any]) -> str:
    """Pure: the settings as moderators read them."""

    def on(enabled: bool) -> str:
        return "on" if enabled else "off"

    steps = ", ".join(s.value for s in p.steps)
    first, wave = p.first_message, p.join_wave
    lines = [
        f"Flood: {on(p.flood.enabled)}, over {p.flood.messages} in {p.flood.seconds:g} s",
        f"Mentions: {on(p.mentions.enabled)}, over {p.mentions.mentions} "
        f"in {p.mentions.seconds:g} s",
        f"A newcomer's first link or media: {on(first.enabled)}, "
        f"for {first.new_hours:g} h after joining",
        f"Join waves: {on(wave.enabled)}, over {wave.joins} in {wave.minutes:g} min",
        f"Words: {on(p.words.enabled)}, {len(p.words.patterns)} patterns",
        f"Crisis language: {on(p.crisis.enabled)}, resources by DM {on(p.crisis.send_resources)}",
        f"Steps: {steps}; mute {p.mute_minutes:g} min; "
        f"offences forgotten after {p.forget_hours:g} h",
    ]
    if changed:
        made = ", ".join(f"{k} = {v}" for k, v in sorted(changed.items()))
        lines.append(f"Changed in chat: {made}")
    return "\n".join(lines)


async def _protections(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    t = typed(inv, ctx)
    rooms = t.rooms
    key = rooms.group_of(inv.room_id)
    group = t.cfg.group(key) if key else None
    main = rooms.main_room(key) if key else None
    if group is None or main is None or t.refused(inv, t.config.levels.lock):
        return refusal(inv)
    changed = overrides_of(ctx, main, group.key)
    words = str(inv.args.get("change") or "").split()
    if not words or words == ["show"]:
        text = describe(effective(group.protections, changed), changed)
        shown = md("#### Protections of {}\n\n{}", group.name, bullets(text.splitlines()))
        return [Reply(inv.room_id, inv.event_id, shown)]
    if words == ["reset"]:
        updated: dict[str, Any] | str = {}
        said = f"{inv.sender} set {group.name}'s protections back to the community file's."
    elif len(words) == 3 and words[0] == "set":
        updated = change(group.protections, changed, words[1], words[2])
        said = f"{inv.sender} set {group.name}'s {words[1]} to {words[2]}."
    else:
        return [Reply(inv.room_id, inv.event_id, USAGE)]
    if isinstance(updated, str):
        return [Reply(inv.room_id, inv.event_id, updated)]
    out: list[Action] = [SetState(main, OVERRIDES, updated, group.key)]
    out += t.logged(said)
    return [*out, Reply(inv.room_id, inv.event_id, said)]


PROTECTIONS = Command(
    "protections",
    "Show this group's protections, or change one: set <setting> <value> | reset",
    _protections,
    (Arg("change", "set <setting> <value>, or reset", required=False, rest=True),),
    power_level=1,
)
