"""Performers of the actions that post in a room: notices and replies,
reactions, edits, polls and encrypted files."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

from nio import UploadResponse

from bots.framework.actions import Edit, EndPoll, React, Reply, SendNotice, SendPoll, UploadFile
from bots.framework.content import (
    POLL_END,
    POLL_START,
    edit_content,
    message_content,
    poll_content,
    poll_end_content,
    reaction_content,
)
from bots.framework.outbox.means import Means
from bots.framework.outbox.registry import performs


@performs(Reply, SendNotice)
async def notice(means: Means, action: Reply | SendNotice, txn: str) -> Any:
    return await means.send_event(action.room_id, "m.room.message", message_content(action), txn)


@performs(React)
async def react(means: Means, action: React, txn: str) -> Any:
    content = reaction_content(action.event_id, action.key)
    return await means.send_event(action.room_id, "m.reaction", content, txn)


@performs(Edit)
async def edit(means: Means, action: Edit, txn: str) -> Any:
    return await means.send_event(action.room_id, "m.room.message", edit_content(action), txn)


@performs(SendPoll)
async def poll(means: Means, action: SendPoll, txn: str) -> Any:
    return await means.send_event(action.room_id, POLL_START, poll_content(action), txn)


@performs(EndPoll)
async def end_poll(means: Means, action: EndPoll, txn: str) -> Any:
    return await means.send_event(action.room_id, POLL_END, poll_end_content(action), txn)


@performs(UploadFile)
async def upload(means: Means, action: UploadFile, txn: str) -> Any:
    if action.text is not None:
        data = action.text.encode()
    else:
        data = await asyncio.to_thread(Path(action.data_path).read_bytes)
    size = len(data)
    resp, keys = await means.client.upload(
        io.BytesIO(data), action.mimetype, action.filename, encrypt=True, filesize=size
    )
    if not isinstance(resp, UploadResponse):
        return resp
    content = {
        "msgtype": action.msgtype,
        "body": action.filename,
        "info": {"mimetype": action.mimetype, "size": size},
        "file": {"url": resp.content_uri, **(keys or {})},
    }
    return await means.send_event(action.room_id, "m.room.message", content, txn)
