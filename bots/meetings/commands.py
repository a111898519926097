"""!meeting add|skip|move|cancel|edit, !meetings, !meetings ics, !rsvp, !tz:
the meetings feature's command table. The moderators' handlers are in
`moderators.py`, the members' in `members.py`.

Moderators' commands are declared at a moderator's level in the room they
are typed in (a group's moderators hold it in their group's rooms), so
the framework refuses them to members and to unverified devices.
"""

from __future__ import annotations

from bots.framework.commands.spec import MODERATOR, Arg, ArgType, Command
from bots.meetings.members import ics, list_meetings, rsvp, tz
from bots.meetings.moderators import add, cancel, edit, move, skip

ID = Arg("id", "the meeting's number (from !meetings)", type=ArgType.INT)

COMMANDS = (
    Command(
        "meeting add",
        "Schedule a meeting in this group's room",
        add,
        (Arg("details", '"<title>" every <weekday> <time> [zone] ...', rest=True),),
        power_level=MODERATOR,
        details=(
            'Examples: !meeting add "Tuesday check-in" every tuesday 19:00 Europe/Berlin '
            "for 60m remind 1d,15m link https://meet.example/room · "
            '!meeting add "Coffee" on 2026-12-12 10:30 · '
            '!meeting add "Monthly" every month on the first monday 18:00 until 2027-06-30'
        ),
    ),
    Command(
        "meeting skip",
        "Call off one date of a meeting",
        skip,
        (ID, Arg("details", "the date", rest=True)),
        power_level=MODERATOR,
    ),
    Command(
        "meeting move",
        "Move one date of a meeting: <date> <time>, or <date> <new date> <time>",
        move,
        (ID, Arg("details", "<date> [<new date>] <time>", rest=True)),
        power_level=MODERATOR,
    ),
    Command(
        "meeting edit",
        "Change a meeting: title, at <time> [zone], for <length>, remind, link",
        edit,
        (
            ID,
            Arg("details", 'title "..." | at 19:30 | for 90m | remind 1h | link <url>', rest=True),
        ),
        power_level=MODERATOR,
    ),
    Command(
        "meeting cancel",
        "Cancel a meeting and all its dates",
        cancel,
        (ID, Arg("details", "", required=False, rest=True)),
        power_level=MODERATOR,
    ),
    Command("meetings", "List the meetings coming up here", list_meetings),
    Command("meetings ics", "Get this group's meetings as a calendar file", ics),
    Command(
        "rsvp",
        "Say whether you're coming to a meeting",
        rsvp,
        (
            ID,
            Arg("answer", "yes, maybe or no"),
            Arg("date", "which date (the next one if left out)", required=False, rest=True),
        ),
    ),
    Command(
        "tz",
        "Set the time zone meetings are shown to you in (!tz clear forgets it)",
        tz,
        (Arg("zone", "like America/Chicago, or clear", required=False),),
    ),
)
