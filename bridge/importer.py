"""``hearth import facebook apply``: a review file into an encrypted archive room.

In order:

1. The review file is checked whole (every line readable, every export it
   names present) before anything is sent; the group must exist and let
   newcomers read history, or nobody could ever read the archive.
2. The archive room is created in the group's name by the archive bot,
   encrypted from its first event, read-only, with the community's bots
   invited. The import waits for them to join: the room's keys go to
   them, marked shareable, so they can hand the history to members.
3. Each line is sent in the file's order (the review is in date order),
   with its original time: posts at the top level, comments in their
   post's thread, photos re-encoded and encrypted as attachments.
4. The room's marker is set complete and the archive bot leaves; the
   community bot then lists the room in the Space and invites the group's
   members, each with a history bundle (`bots.archives`).

Resuming: each part sent is recorded (`bridge.progress`). Run again, the
import first reads the archive's last events back and records any that
landed just before an interruption, then carries on; transaction IDs come
from the room and the line, so a repeated send is the same send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, EncryptionError, Event, MegolmEvent
from nio.crypto.attachments import encrypt_attachment

from bots.base.errors import HomeserverError, InputError
from bots.framework.logging import get_logger, register_secrets
from bots.framework.secrets import read_secret
from bridge.appservice import AppService
from bridge.archivist import Archivist
from bridge.facebook.archive import Export
from bridge.facebook.media import CleanImage, clean_image
from bridge.facebook.messages import (
    carried,
    import_mark,
    photo_content,
    text_content,
    txn_id,
    video_content,
)
from bridge.facebook.planning import read_header
from bridge.facebook.review import Line, MediaLine, read_review
from bridge.facebook.video import CleanVideo, clean_video
from bridge.progress import Part, Progress
from provisioning.desired import MARKER, MODERATOR_LEVEL, ROOM_VERSION, power_levels
from provisioning.schema import CommunityFile, GroupDecl

log = get_logger(__name__)

ARCHIVE_KIND = "archive"
# How long to wait for the community bot to join the archive.
JOIN_WAIT_S = 120.0
# How many of the archive's last events are read back on resuming: more
# than an interruption can leave unrecorded (one send at a time).
READ_BACK = 20


@dataclass(frozen=True)
class Review:
    path: Path
    group: str
    facebook_group: str
    lines: int
    exports: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.group}\x1f{self.facebook_group}"


@dataclass(frozen=True)
class Outcome:
    room_id: str
    sent: int  # events sent by this run
    in_archive: int  # events of the import in the archive
    photos_unreadable: int
    resumed: bool


def read_lines(path: Path) -> Iterator[Line]:
    """The review's item lines, one at a time (a review can be large)."""
    with path.open(encoding="utf-8") as f:
        next(f, None)
        for number, raw in enumerate(f, start=2):
            yield from read_review([raw], str(path), number)


def check_review(path: Path) -> Review:
    """Read the review through once: its header, every line, the exports it names."""
    try:
        with path.open(encoding="utf-8") as f:
            header = read_header(f.readline(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the review file ({exc.strerror})") from None
    count = 0
    exports: set[str] = set()
    for line in read_lines(path):
        count += 1
        exports.update(m.export for m in carried(line))
    missing = sorted(e for e in exports if not Path(e).is_file())
    if missing:
        raise InputError(
            f"{path}: the review names exports that are not here: {', '.join(missing)} "
            "(run the import where the plan was made, or restore them)"
        )
    group, facebook_group = str(header["group"]), str(header["facebook_group"])
    return Review(path, group, facebook_group, count, frozenset(exports))


def archive_group(cfg: CommunityFile, key: str, source: str) -> GroupDecl:
    group = cfg.group(key)
    if group is None:
        raise InputError(
            f"{source}: the review is for group {key!r}, which the community file lacks"
        )
    if not group.history_before_joining:
        raise InputError(
            f"group {key!r} keeps its history from newcomers (history_before_joining: false), "
            "so nobody could read an archive of it; set history_before_joining: true for the "
            "group (and run hearth provision) to import its history"
        )
    return group


def archive_room_body(cfg: CommunityFile, group: GroupDecl, sender: str) -> dict[str, Any]:
    """The archive room: encrypted from its first event, history shared with
    later members, read-only (bots keep their level to invite and list it)."""
    users = {m: MODERATOR_LEVEL for m in (*cfg.community.moderators, *group.moderators)}
    users |= {b.user_id: b.power_level for b in cfg.bots}
    users.pop(sender, None)  # the creator's power is implicit in room version 12
    marker = {
        "community": cfg.community.key,
        "kind": ARCHIVE_KIND,
        "group": group.key,
        "source": "facebook",
        "complete": False,
    }
    return {
        "preset": "private_chat",
        "room_version": ROOM_VERSION,
        "name": f"{group.name}: Facebook archive",
        "topic": "What members carried over from the group's Facebook, from their own exports",
        "initial_state": [
            {"type": t, "state_key": "", "content": c}
            for t, c in (
                ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}),
                ("m.room.history_visibility", {"history_visibility": "shared"}),
                ("m.room.guest_access", {"guest_access": "forbidden"}),
                ("m.room.join_rules", {"join_rule": "invite"}),
                (MARKER, marker),
            )
        ],
        "power_level_content_override": power_levels(users, events_default=100),
    }


class Importer:
    def __init__(
        self,
        cfg: CommunityFile,
        review: Review,
        service: AppService,
        archivist: Archivist,
        progress: Progress,
        on_line: Callable[[], None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.review = review
        self.service = service
        self.archivist = archivist
        self.progress = progress
        self.on_line = on_line
        self.group = archive_group(cfg, review.group, str(review.path))
        self._exports: dict[str, Export] = {}
        self.sent = 0
        self.unreadable = 0
        self._upload_max: int | None = None

    @property
    def client(self) -> AsyncClient:
        assert self.archivist.client is not None
        return self.archivist.client

    async def run(self, stop_after: int | None = None) -> Outcome:
        """Import the review; *stop_after* sends, stop as if killed (tests)."""
        key = self.review.key
        found = await self.progress.room(key)
        if found is not None and found[1]:
            raise InputError(
                f"{self.review.path}: this history was already imported, into {found[0]}"
            )
        resumed = found is not None
        if found is None:
            body = archive_room_body(self.cfg, self.group, self.service.sender)
            room_id = await self.service.create_room(body)
            await self.progress.start(key, room_id)
            log.info("archive room created", room_id=room_id)
        else:
            room_id = found[0]
        await self._bots_joined(room_id)
        await self.archivist.learn_room(room_id)
        if resumed:
            await self._read_back(room_id)
        try:
            for line in read_lines(self.review.path):
                await self._send_line(room_id, line)
                self.on_line()
                if stop_after is not None and self.sent >= stop_after:
                    return await self._outcome(room_id, resumed)
        finally:
            for export in self._exports.values():
                export.__exit__(None, None, None)
        marker = archive_room_body(self.cfg, self.group, self.service.sender)["initial_state"][-1]
        await self.service.put_state(room_id, MARKER, {**marker["content"], "complete": True})
        await self.progress.finish(key)
        # Done: the archive bot leaves; the community bot keeps the room.
        # Nothing more comes from it, so it has no reason to stay and see
        # what members do there.
        await self.service.leave(room_id)
        return await self._outcome(room_id, resumed)

    async def _outcome(self, room_id: str, resumed: bool) -> Outcome:
        total = await self.progress.count(self.review.key)
        return Outcome(room_id, self.sent, total, self.unreadable, resumed)

    async def _bots_joined(self, room_id: str) -> None:
        bots = [b.user_id for b in self.cfg.bots]
        joined = await self.service.joined(room_id)
        for bot in bots:
            if bot not in joined:
                with contextlib.suppress(HomeserverError):  # already invited
                    await self.service.invite(room_id, bot)
        deadline = asyncio.get_running_loop().time() + JOIN_WAIT_S
        while not set(bots) <= joined:
            if asyncio.get_running_loop().time() > deadline:
                missing = ", ".join(sorted(set(bots) - joined))
                raise HomeserverError(
                    f"the community's bot ({missing}) has not joined the archive room {room_id}; "
                    "is it running? Run the import again once it is: it carries on where it stopped"
                )
            await asyncio.sleep(0.5)
            joined = await self.service.joined(room_id)

    async def _read_back(self, room_id: str) -> None:
        """Record what landed in the archive just before an interruption."""
        key = self.review.key
        for raw in await self.service.latest(room_id, READ_BACK):
            if raw.get("sender") != self.service.sender or raw.get("type") != "m.room.encrypted":
                continue
            event = Event.parse_encrypted_event(raw)
            if not isinstance(event, MegolmEvent):
                continue
            event.room_id = room_id
            try:
                decrypted = self.client.decrypt_event(event)
            except EncryptionError:
                continue  # not of this device's sessions: not this import's
            mark = import_mark(getattr(decrypted, "source", {}).get("content", {}))
            if mark is None:
                continue
            relates = (raw.get("content") or {}).get("m.relates_to") or {}
            root = relates.get("event_id") or raw["event_id"]
            part = Part(*mark)
            if not await self.progress.done(key, part):
                await self.progress.sent(key, part, raw["event_id"], root)
                log.info("an event sent before the interruption was found and kept")

    def _export(self, path: str) -> Export:
        if path not in self._exports:
            self._exports[path] = Export(Path(path)).__enter__()
        return self._exports[path]

    async def _send_line(self, room_id: str, line: Line) -> None:
        key = self.review.key
        root: str | None = None
        if line.thread_of is not None:
            parent = await self.progress.placed(key, line.thread_of)
            root = parent.root if parent is not None else None
        text = Part(line.id, 0)
        if not await self.progress.done(key, text):
            event_id = await self._send(room_id, line, 0, text_content(line, root))
            await self.progress.sent(key, text, event_id, root or event_id)
        # A post's photos and videos follow it at the top level; a comment's
        # go in its thread.
        for number, media in enumerate(carried(line), start=1):
            part = Part(line.id, number)
            if await self.progress.done(key, part):
                continue
            content = await self._attachment(line, number, media, root)
            if content is None:
                continue
            event_id = await self._send(room_id, line, number, content)
            await self.progress.sent(key, part, event_id, root or event_id)

    async def _attachment(
        self, line: Line, number: int, media: MediaLine, root: str | None
    ) -> dict[str, Any] | None:
        """A photo's or video's event, cleaned of its metadata, encrypted
        and uploaded; None (and counted) when it is missing from its export
        or cannot be carried."""
        export = self._export(media.export)
        name = export.media(media.uri)
        if name is None:
            self.unreadable += 1
            return None
        if media.kind == "video" and export.size(name) > await self._upload_limit():
            log.warning("a video larger than the server takes was left out")
            self.unreadable += 1
            return None
        try:
            with export.open(name) as source:
                cleaned: CleanImage | CleanVideo = (
                    clean_video(source.read(), export.where(name))
                    if media.kind == "video"
                    else clean_image(source, export.where(name))
                )
        except InputError as exc:
            log.warning(
                "an attachment could not be read and was left out",
                kind=media.kind,
                problem=type(exc).__name__,
            )
            self.unreadable += 1
            return None
        ciphertext, keys = encrypt_attachment(cleaned.data)
        file = {"url": await self.service.upload(ciphertext, media.kind), **keys}
        size = len(cleaned.data)
        if isinstance(cleaned, CleanVideo):
            return video_content(line, number, file, cleaned.mimetype, size, root)
        return photo_content(
            line, number, file, cleaned.mimetype, size, cleaned.width, cleaned.height, root
        )

    async def _upload_limit(self) -> int:
        if self._upload_max is None:
            self._upload_max = await self.service.upload_limit()
        return self._upload_max

    async def _send(self, room_id: str, line: Line, part: int, content: dict[str, Any]) -> str:
        keys = self.archivist.keys
        assert keys is not None
        await keys.ensure_shared(room_id)
        event_type, encrypted = self.client.encrypt(room_id, "m.room.message", content)
        # Parts of one line keep their order when their times are equal.
        event_id = await self.service.send(
            room_id, event_type, encrypted, txn_id(room_id, line.id, part), line.ts * 1000 + part
        )
        self.sent += 1
        return event_id


async def apply_review(
    review_path: Path,
    cfg: CommunityFile,
    *,
    as_token_file: Path | None = None,
    state_dir: Path | None = None,
    on_line: Callable[[], None] = lambda: None,
    on_review: Callable[[Review], None] = lambda _r: None,
    stop_after: int | None = None,
) -> Outcome:
    review = check_review(review_path)
    archive_group(cfg, review.group, str(review_path))
    token_file = as_token_file or cfg.bridge.as_token_file
    folder = state_dir or cfg.bridge.state_dir
    if token_file is None:
        raise InputError(
            "the community file's bridge.as_token_file (or --as-token-file) must name the file "
            "holding the bridge's as_token"
        )
    if folder is None:
        raise InputError(
            "the community file's bridge.state_dir (or --state-dir) must name the archive "
            "bot's state folder"
        )
    as_token = read_secret(token_file, what="bridge as_token")
    register_secrets([as_token])
    on_review(review)
    progress = await Progress.open(folder / "imports.db")
    try:
        async with aiohttp.ClientSession() as http:
            service = AppService(cfg.community.homeserver, as_token, cfg.bridge_user(), http)
            archivist = Archivist(cfg.community.homeserver, service, folder, progress)
            try:
                await archivist.connect()
                importer = Importer(cfg, review, service, archivist, progress, on_line)
                return await importer.run(stop_after)
            finally:
                await archivist.close()
    finally:
        await progress.close()
