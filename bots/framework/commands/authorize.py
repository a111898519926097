"""Who may run a command. Pure: decided from a snapshot of power levels and
how far the sending device is trusted."""

from __future__ import annotations

from bots.framework.commands.spec import MEMBER, Command, Scope
from bots.framework.events import PowerSnapshot
from bots.framework.markdown import Md, code, md
from bots.framework.trust.policy import DeviceTrust

# One reply for every refusal, so it reveals neither the level a command
# needs nor anything about its arguments.
REFUSAL = Md("Sorry, you don't have permission to use that command here.")

# Said only to someone whose power allows the command: how to fix it, nothing more.
UNVERIFIED_REFUSAL = Md(
    "This command needs a verified session, and the one you sent it from is not. "
    "In Element, open **Settings → Sessions**, select this session and choose **Verify** "
    "(confirm it from another signed-in device or with your recovery key), "
    "then send the command again."
)
IDENTITY_CHANGED_REFUSAL = (
    "Your account's security identity has changed since I last saw it (for example, "
    "after resetting your recovery key), so I can't accept this command yet. "
    "Another moderator can confirm the change with {}."
)


def is_allowed(command: Command, power: PowerSnapshot) -> bool:
    if command.scope is Scope.MODERATORS_ROOM and not power.typed_in_moderators_room:
        return False
    if command.scope in (Scope.COMMUNITY, Scope.MODERATORS_ROOM):
        level = power.in_moderators_room
        return level is not None and level >= command.power_level
    return power.in_room >= command.power_level


def needs_verified_device(command: Command) -> bool:
    """Commands that need power are accepted only from a verified device:
    a stolen password plus a new login must not be enough to moderate. So
    are a member's commands that say so (what cannot be undone)."""
    return command.power_level > MEMBER or command.verified_device


def device_refusal(command: Command, device: DeviceTrust, prefix: str, sender: str) -> Md | None:
    """Why *command* is refused from this device, or None if it is not."""
    if not needs_verified_device(command) or device is DeviceTrust.VERIFIED:
        return None
    if device is DeviceTrust.IDENTITY_CHANGED:
        return md(IDENTITY_CHANGED_REFUSAL, code(f"{prefix}trust {sender}"))
    return UNVERIFIED_REFUSAL
