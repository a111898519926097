"""Event contents for the bot's outgoing events. Pure.

HTML is cleaned by nh3 (Ammonia) down to what the Matrix spec lets clients
render, so text that quotes a member can never inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nh3

from bots.framework.actions import Edit, EndPoll, Reply, SendDirect, SendNotice, SendPoll

# The spec's recommended subset (client-server API, "m.room.message msgtypes").
MATRIX_TAGS = frozenset(
    {
        "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul",
        "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br",
        "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
        "details", "summary",
    }
)  # fmt: skip
MATRIX_ATTRIBUTES = {
    "a": {"href", "target"},
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler"},
    "font": {"data-mx-bg-color", "data-mx-color", "color"},
    "ol": {"start"},
    "code": {"class"},
}
URL_SCHEMES = frozenset({"https", "http", "mailto", "matrix"})

POLL_START = "org.matrix.msc3381.poll.start"
POLL_END = "org.matrix.msc3381.poll.end"
TEXT = "org.matrix.msc1767.text"
POLL_KIND = "org.matrix.msc3381.poll."


def sanitise_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(MATRIX_TAGS),
        attributes={k: set(v) for k, v in MATRIX_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=None,
    )


def _text(body: str, html: str | None, mentions: Sequence[str] = ()) -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": "m.notice", "body": body}
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = sanitise_html(html)
    # Intentional mentions: only the people named are pinged; an empty list
    # keeps clients from guessing mentions out of the body.
    content["m.mentions"] = {"user_ids": sorted(set(mentions))} if mentions else {}
    return content


def message_content(action: Reply | SendNotice | SendDirect) -> dict[str, Any]:
    """The event content for a notice; replies carry no quoted fallback."""
    mentions = () if isinstance(action, SendDirect) else action.mentions
    content = _text(action.body, action.html, mentions)
    relates: dict[str, Any] = {}
    thread_root = None if isinstance(action, SendDirect) else action.thread_root
    if thread_root is not None:
        relates = {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": True}
    if isinstance(action, Reply):
        relates["m.in_reply_to"] = {"event_id": action.in_reply_to}
        if thread_root is not None:
            relates["is_falling_back"] = False
    elif thread_root is not None:
        relates["m.in_reply_to"] = {"event_id": thread_root}
    if relates:
        content["m.relates_to"] = relates
    return content


def edit_content(action: Edit) -> dict[str, Any]:
    new = _text(action.body, action.html)
    content = _text(f"* {action.body}", f"* {action.html}" if action.html else None)
    content["m.new_content"] = new
    content["m.relates_to"] = {"rel_type": "m.replace", "event_id": action.event_id}
    return content


def reaction_content(event_id: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}


def poll_content(action: SendPoll) -> dict[str, Any]:
    """An MSC3381 poll as Element sends it, with a text fallback."""
    ids = action.answer_ids or tuple(f"a{i}" for i in range(len(action.answers)))
    if len(ids) != len(action.answers):
        raise ValueError("a poll needs one answer ID per answer")
    answers = [{"id": id_, TEXT: text} for id_, text in zip(ids, action.answers, strict=True)]
    fallback = "\n".join(
        [action.question, *(f"{i + 1}. {a}" for i, a in enumerate(action.answers))]
    )
    return {
        POLL_START: {
            "question": {TEXT: action.question},
            "kind": "org.matrix.msc3381.poll."
            + ("disclosed" if action.disclosed else "undisclosed"),
            "max_selections": action.max_selections,
            "answers": answers,
        },
        TEXT: fallback,
        "body": fallback,
    }


def poll_end_content(action: EndPoll) -> dict[str, Any]:
    """Ends a poll; the text is the fallback older clients show."""
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": action.poll_id},
        POLL_END: {},
        TEXT: action.text,
        "body": action.text,
    }
