"""Raw event JSON becomes a typed event here, and nowhere else. Pure: no I/O, no logging.

Everything in an event is remote input. Anything malformed makes :func:`to_event`
return None rather than raise, so one bad event cannot stop a sync loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, TypeGuard

from bots.framework.events import (
    MEDIA_MSGTYPES,
    EncryptedFile,
    Event,
    JoinRules,
    Media,
    MembershipChange,
    Message,
    PollAnswer,
    PollEnd,
    PollKind,
    PollResponse,
    PollStart,
    PowerLevels,
    Reaction,
    Redaction,
    SenderDevice,
)
from bots.framework.events import Membership as MembershipEvent

__all__ = ["Event", "classify_membership", "sender_device", "to_event", "with_sender_keys"]

# Where the inbox keeps, beside a decrypted event, the keys of the device
# that sent it (a name no Matrix event uses).
SENDER_KEYS = "io.hearth.sender_keys"

# MSC3381 tells clients to ignore options past the twentieth.
MAX_POLL_ANSWERS = 20
_DISCLOSED = frozenset({"org.matrix.msc3381.poll.disclosed", "m.poll.disclosed", "m.disclosed"})
# State and redactions are never encrypted: the server has to read them. A decrypted
# payload claiming one of these types is a member forging it (state_key and
# unsigned.prev_content included), so it is refused.
_NEVER_ENCRYPTED = frozenset(
    {"m.room.member", "m.room.power_levels", "m.room.join_rules", "m.room.redaction"}
)
_LEGACY_INT = re.compile(r"[+-]?[0-9]{1,18}")
_MX_REPLY = re.compile(r"^<mx-reply>.*?</mx-reply>", re.DOTALL)
_LEVEL_KEYS = (
    "users_default", "state_default", "events_default", "ban", "kick", "invite", "redact"
)  # fmt: skip


@dataclass(frozen=True)
class _Envelope:
    head: tuple[str, str, str, int]  # event_id, room_id, sender, server_ts_ms
    encrypted: bool
    content: Mapping[str, Any]
    source: Mapping[str, Any]


def to_event(room_id: str, source: Mapping[str, Any], *, encrypted: bool = False) -> Event | None:
    """The typed form of *source* (an event as /sync serves it, decrypted if it was
    encrypted), or None if the bot does not handle its type or it is malformed."""
    raw: object = source
    if not isinstance(raw, Mapping):
        return None
    event_type = source.get("type")
    if not isinstance(event_type, str) or (encrypted and event_type in _NEVER_ENCRYPTED):
        return None
    parser = _PARSERS.get(event_type)
    env = _envelope(room_id, source, encrypted) if parser else None
    return parser(env) if parser and env else None


def classify_membership(
    previous: str | None, new: str, sender: str, target: str
) -> MembershipChange:
    """What a membership transition means, as the spec's table for m.room.member reads."""
    by_self = sender == target
    if new == "join":
        return MembershipChange.PROFILE if previous == "join" else MembershipChange.JOIN
    if new in ("invite", "knock", "ban"):
        return MembershipChange.NONE if previous == new else MembershipChange(new)
    if new != "leave":
        return MembershipChange.NONE
    if previous == "join":
        return MembershipChange.LEAVE if by_self else MembershipChange.KICK
    if previous == "invite":
        return MembershipChange.INVITE_REJECTED if by_self else MembershipChange.INVITE_REVOKED
    if previous == "knock":
        return MembershipChange.KNOCK_RETRACTED if by_self else MembershipChange.KNOCK_REJECTED
    if previous == "ban":
        return MembershipChange.UNBAN
    return MembershipChange.NONE


# --- the envelope and small readers ---


def _envelope(room_id: str, source: Mapping[str, Any], encrypted: bool) -> _Envelope | None:
    event_id, sender = source.get("event_id"), source.get("sender")
    ts, content = source.get("origin_server_ts"), source.get("content")
    if not (isinstance(event_id, str) and isinstance(sender, str) and _is_int(ts)):
        return None
    if not isinstance(content, Mapping):
        return None
    # A decrypted payload names its room; one from another room is being replayed here.
    claimed = source.get("room_id", room_id)
    if claimed != room_id:
        return None
    return _Envelope((event_id, room_id, sender, ts), encrypted, content, source)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _str(mapping: object, key: str) -> str | None:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, str) else None


def _map(mapping: object, key: str) -> Mapping[str, Any]:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _reference(content: Mapping[str, Any], rel_type: str) -> str | None:
    relates = _map(content, "m.relates_to")
    return _str(relates, "event_id") if relates.get("rel_type") == rel_type else None


# --- messages ---


def _message(env: _Envelope) -> Message | None:
    top = env.content
    relates = _map(top, "m.relates_to")
    rel_type, target = relates.get("rel_type"), _str(relates, "event_id")
    replaces = target if rel_type == "m.replace" else None
    thread_root = target if rel_type == "m.thread" else None
    reply_to = _str(_map(relates, "m.in_reply_to"), "event_id")
    # In a thread, m.in_reply_to flagged is_falling_back only points threadless
    # clients at the thread's latest message; an edit never carries a reply.
    if replaces or (thread_root and relates.get("is_falling_back") is True):
        reply_to = None
    # An edit's full new text is in m.new_content; its top level is a "* …" fallback.
    new = _map(top, "m.new_content")
    shown = new if replaces and _str(new, "body") is not None and _str(new, "msgtype") else top
    body, msgtype = _str(shown, "body"), _str(shown, "msgtype")
    if body is None or not msgtype:
        return None
    formatted = _str(shown, "formatted_body")
    if _str(shown, "format") != "org.matrix.custom.html":
        formatted = None
    if reply_to:
        body, formatted = _strip_reply_fallback(body, formatted)
    # Top-level m.mentions: on an edit it lists only the newly mentioned, which is
    # whom the edit should notify.
    mentions = _map(top, "m.mentions")
    user_ids = mentions.get("user_ids")
    event_id, room_id, sender, ts = env.head
    return Message(
        *(event_id, room_id, sender, body, msgtype, ts, env.encrypted),
        formatted_body=formatted,
        reply_to=reply_to,
        thread_root=thread_root,
        replaces=replaces,
        media=_media(shown, msgtype, body) if msgtype in MEDIA_MSGTYPES else None,
        mentions=tuple(dict.fromkeys(u for u in _list(user_ids) if isinstance(u, str))),
        mentions_room=mentions.get("room") is True,
        sender_device=sender_device(env.source) if env.encrypted else None,
    )


def sender_device(source: Mapping[str, Any]) -> SenderDevice | None:
    """The sending device's keys, as the runtime recorded them on arrival
    (:func:`with_sender_keys`), never as the payload claims."""
    keys = _map(source, SENDER_KEYS)
    curve, ed = _str(keys, "curve25519"), _str(keys, "ed25519")
    if curve is None or ed is None:
        return None
    return SenderDevice(curve, ed, keys.get("forwarded") is not False)


def with_sender_keys(source: Mapping[str, Any], keys: SenderDevice | None) -> dict[str, Any]:
    """*source* with the keys of the device that sent it, for the inbox.

    A decrypted payload is written by its sender, so whatever it carries under
    this name is replaced (or removed) here, before anything reads it.
    """
    out = {k: v for k, v in source.items() if k != SENDER_KEYS}
    if keys is not None:
        out[SENDER_KEYS] = {
            "curve25519": keys.curve25519,
            "ed25519": keys.ed25519,
            "forwarded": keys.forwarded,
        }
    return out


def _strip_reply_fallback(body: str, formatted: str | None) -> tuple[str, str | None]:
    """Older clients quote the replied-to message; the spec says to drop that quote."""
    lines = body.split("\n")
    n = next((i for i, line in enumerate(lines) if not line.startswith("> ")), len(lines))
    n += 1 if 0 < n < len(lines) and lines[n] == "" else 0
    return "\n".join(lines[n:]), formatted and _MX_REPLY.sub("", formatted, count=1)


def _media(content: Mapping[str, Any], msgtype: str, body: str) -> Media | None:
    info = _map(content, "info")
    size = info.get("size")
    url = _str(content, "url")
    url = url if url and url.startswith("mxc://") else None
    file = _encrypted_file(_map(content, "file"))
    if url is None and file is None:
        return None
    return Media(
        msgtype=msgtype,
        # Since Matrix 1.10 "filename" names the file and "body" may be a caption.
        filename=_str(content, "filename") or body,
        mimetype=_str(info, "mimetype"),
        size=size if _is_int(size) and size >= 0 else None,
        url=url,
        file=file,
    )


def _encrypted_file(file: Mapping[str, Any]) -> EncryptedFile | None:
    url, iv, v = _str(file, "url"), _str(file, "iv"), _str(file, "v")
    sha256 = _str(_map(file, "hashes"), "sha256")
    key = _map(file, "key")
    if not (url and url.startswith("mxc://") and iv and v and sha256 and _str(key, "k")):
        return None
    # A JWK is flat but for key_ops, a list.
    jwk = {k: tuple(v) if isinstance(v, list) else v for k, v in key.items()}
    return EncryptedFile(url, MappingProxyType(jwk), iv, sha256, v)


def _reaction(env: _Envelope) -> Reaction | None:
    relates = _map(env.content, "m.relates_to")
    target, key = _reference(env.content, "m.annotation"), _str(relates, "key")
    if target is None or key is None:
        return None
    return Reaction(*env.head, env.encrypted, target, key)


def _redaction(env: _Envelope) -> Redaction | None:
    # Room version 11 moved "redacts" into content; earlier versions have it at the top.
    redacts = _str(env.content, "redacts") or _str(env.source, "redacts")
    if not redacts:
        return None
    return Redaction(*env.head, redacts, _str(env.content, "reason"))


# --- state ---


def _membership(env: _Envelope) -> MembershipEvent | None:
    source = env.source
    target, new = _str(source, "state_key"), _str(env.content, "membership")
    if target is None or new is None:
        return None
    # Top-level prev_content is what servers sent before unsigned.prev_content.
    prev_content = _map(source, "unsigned").get("prev_content", source.get("prev_content"))
    previous = _str(prev_content, "membership")
    return MembershipEvent(
        *env.head,
        target=target,
        membership=new,
        previous=previous,
        change=classify_membership(previous, new, env.head[2], target),
        reason=_str(env.content, "reason"),
        is_direct=env.content.get("is_direct") is True,
        displayname=_str(env.content, "displayname"),
    )


def _level(value: object) -> int | None:
    if _is_int(value):
        return value
    # Room versions before 10 allow levels written as strings of digits.
    if isinstance(value, str) and _LEGACY_INT.fullmatch(value.strip()):
        return int(value)
    return None


def _levels(value: object) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        return MappingProxyType({})
    parsed = {k: _level(v) for k, v in value.items() if isinstance(k, str)}
    return MappingProxyType({k: v for k, v in parsed.items() if v is not None})


def _power_levels(env: _Envelope) -> PowerLevels | None:
    if env.source.get("state_key") != "":
        return None
    c = env.content
    # Whatever the event leaves out (or garbles) keeps the dataclass's default, the spec's.
    levels: dict[str, Any] = {k: v for k in _LEVEL_KEYS if (v := _level(c.get(k))) is not None}
    users, events = _levels(c.get("users")), _levels(c.get("events"))
    return replace(PowerLevels(*env.head, users=users, events=events), **levels)


def _join_rules(env: _Envelope) -> JoinRules | None:
    join_rule = _str(env.content, "join_rule")
    if env.source.get("state_key") != "" or join_rule is None:
        return None
    # The allow list means something only to the restricted rules.
    restricted = join_rule in ("restricted", "knock_restricted")
    allow = _list(env.content.get("allow")) if restricted else []
    rooms = (_str(e, "room_id") for e in allow if _str(e, "type") == "m.room_membership")
    return JoinRules(*env.head, join_rule, tuple(room for room in rooms if room))


# --- polls (MSC3381): Element's unstable names, and the MSC's final shape ---


def _text(block: object) -> str | None:
    """Text from an extensible-events block: a string, or a list of representations."""
    for key in ("org.matrix.msc1767.text", "m.text", "body"):
        value = block.get(key) if isinstance(block, Mapping) else None
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            for rep in value:
                if _str(rep, "mimetype") in (None, "text/plain") and _str(rep, "body"):
                    return _str(rep, "body")
    return None


def _poll_start(env: _Envelope) -> PollStart | None:
    c = env.content
    poll = _map(c, "org.matrix.msc3381.poll.start") or _map(c, "m.poll.start") or _map(c, "m.poll")
    question, raw_answers = _text(_map(poll, "question")), poll.get("answers")
    if question is None or not isinstance(raw_answers, list):
        return None
    answers = tuple(
        PollAnswer(answer_id, text)
        for raw in raw_answers[:MAX_POLL_ANSWERS]
        if (answer_id := _str(raw, "id") or _str(raw, "m.id")) and (text := _text(raw)) is not None
    )
    max_selections = poll.get("max_selections", 1)
    kind = PollKind.DISCLOSED if _str(poll, "kind") in _DISCLOSED else PollKind.UNDISCLOSED
    selections = max(1, max_selections) if _is_int(max_selections) else 1
    return PollStart(*env.head, env.encrypted, question, kind, selections, answers)


def _poll_response(env: _Envelope) -> PollResponse | None:
    c = env.content
    poll_id = _reference(c, "m.reference")
    if poll_id is None:
        return None
    raw = c.get("m.selections")
    for key in ("org.matrix.msc3381.poll.response", "m.poll.response"):
        raw = _map(c, key).get("answers", raw)
    # MSC3381: a malformed vote is spoiled, counted as no selection.
    spoiled = not isinstance(raw, list) or not all(isinstance(a, str) for a in raw)
    return PollResponse(*env.head, env.encrypted, poll_id, () if spoiled else tuple(_list(raw)))


def _poll_end(env: _Envelope) -> PollEnd | None:
    poll_id = _reference(env.content, "m.reference")
    if poll_id is None:
        return None
    return PollEnd(*env.head, env.encrypted, poll_id, _text(env.content) or "")


_Parser = Callable[[_Envelope], Event | None]
_PARSERS: dict[str, _Parser] = {
    "m.room.message": _message,
    "m.reaction": _reaction,
    "m.room.redaction": _redaction,
    "m.room.member": _membership,
    "m.room.power_levels": _power_levels,
    "m.room.join_rules": _join_rules,
    **dict.fromkeys(("org.matrix.msc3381.poll.start", "m.poll.start"), _poll_start),
    **dict.fromkeys(("org.matrix.msc3381.poll.response", "m.poll.response"), _poll_response),
    **dict.fromkeys(("org.matrix.msc3381.poll.end", "m.poll.end"), _poll_end),
}
