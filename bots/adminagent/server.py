"""The admin agent's server: Unix sockets, one request a call, each audited.

Two doors, each for one caller (:class:`bots.adminagent.requests.Role`):

- the bots' socket (0660, the bots reach it through the agent's group)
  takes only what the bots need: no registration token ever goes out
  through it, and no rate limit is lifted;
- the administrators' socket (0600, the agent's own user) takes the
  operator's requests: registration tokens and rate limits.

A file mode says who can open a socket; the kernel says who did. Each door
also checks the peer's user id (SO_PEERCRED) against the users allowed
through it, so a process that got hold of the socket some other way (a
group it should not be in, a mode loosened by hand) is still refused. Two
sockets rather than one with a per-user allow-list because in development
(`hearth dev`, the tests) the bot, the agent and the operator are one user:
the uid alone could not tell the bot from the operator there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from bots.adminagent.audit import AuditLog
from bots.adminagent.handlers import Agent, Refused
from bots.adminagent.requests import ALLOWED, Role, parse_request, subject_of
from bots.base.errors import HearthError
from bots.framework.logging import get_logger, register_secrets, use_salt_file
from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.preflight import exempt_from_rate_limits
from provisioning.schema import load_community

log = get_logger(__name__)


def peer_uid(request: web.Request) -> int | None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "request"
    return f"not an allowed request: {where}: {first['msg']}"


@dataclass(frozen=True)
class Door:
    """One socket of the agent: who may come through it, and as what."""

    role: Role
    path: Path
    mode: int
    uids: frozenset[int]


def _answer_error(error: str, status: int = 403) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


class AgentServer:
    def __init__(self, agent: Agent, audit: AuditLog, door: Door) -> None:
        self.agent = agent
        self.audit = audit
        self.door = door

    async def on_request(self, request: web.Request) -> web.Response:
        uid = peer_uid(request)
        if uid is None or uid not in self.door.uids:
            # Before the body is read: nothing of it is believed or recorded.
            self.audit.record(
                "?", uid, None, "refused", f"user not allowed on the {self.door.role} socket"
            )
            return _answer_error("this process's user may not use this socket of the admin agent")
        try:
            data = await request.json()
            parsed = parse_request(data)
        except ValidationError as exc:
            kind = data.get("type") if isinstance(data, dict) else None
            self.audit.record(str(kind or "?")[:40], uid, None, "refused", "not allowed")
            return _answer_error(_problem(exc), status=400)
        except ValueError:
            self.audit.record("?", uid, None, "refused", "not JSON")
            return _answer_error("not JSON", status=400)
        kind, subject = parsed.type, subject_of(parsed)
        if kind not in ALLOWED[self.door.role]:
            self.audit.record(kind, uid, subject, "refused", f"not for the {self.door.role} socket")
            return _answer_error(f"{kind} is not for this socket of the admin agent")
        try:
            result = await self.agent.handle(parsed)
        except Refused as exc:
            self.audit.record(kind, uid, subject, "refused", str(exc))
            return _answer_error(str(exc))
        except HearthError as exc:
            self.audit.record(kind, uid, subject, "failed", type(exc).__name__)
            log.warning("admin request failed", request=kind, problem=type(exc).__name__)
            return _answer_error(str(exc), status=502)
        except Exception as exc:
            # Recorded too: the audit log has a line for every request.
            self.audit.record(kind, uid, subject, "failed", type(exc).__name__)
            log.exception("admin request failed", request=kind)
            return _answer_error("the agent failed", status=500)
        self.audit.record(kind, uid, subject, "ok", "")
        log.info("admin request done", request=kind)
        return web.json_response({"ok": True, "result": result})


def operator_uids() -> frozenset[int]:
    """Who may use the administrators' socket: root and the agent's own user
    (`hearth-admin` runs `hearth` as that user), who can read the admin
    token anyway."""
    return frozenset({0, os.getuid()})


async def open_door(door: Door, server: AgentServer) -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/request", server.on_request)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    door.path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        door.path.unlink()
    # Made with no access for anyone, then opened to whom the mode says:
    # there is no moment when others could connect.
    old_umask = os.umask(0o177)
    try:
        await web.UnixSite(runner, str(door.path)).start()
    finally:
        os.umask(old_umask)
    os.chmod(door.path, door.mode)
    return runner


async def serve_agent(
    community_path: Path,
    socket_path: Path,
    audit_path: Path,
    *,
    socket_mode: int = 0o660,
    bot_uids: Iterable[int] | None = None,
    admin_socket: Path | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the agent until cancelled: the bots' requests on *socket_path*
    from *bot_uids* (default: the agent's own user, as in development), and
    the operator's on *admin_socket* (0600), if given. On start it exempts
    the community's bots from rate limits, so a busy room never throttles
    their replies."""
    cfg = load_community(community_path)
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    register_secrets([token])
    # A salt of its own, kept beside the audit log: the same member hashes
    # the same way across restarts, and differently from the bots' logs.
    use_salt_file(audit_path.parent / "log-salt")
    audit = AuditLog(audit_path)
    doors = [
        Door(
            Role.BOT,
            socket_path,
            socket_mode,
            frozenset(bot_uids) if bot_uids is not None else frozenset({os.getuid()}),
        )
    ]
    if admin_socket is not None:
        doors.append(Door(Role.ADMIN, admin_socket, 0o600, operator_uids()))
    async with Transport() as transport:
        api = ClientAPI(cfg.community.homeserver, token, transport)
        bots = [b.user_id for b in cfg.bots]
        if bots:
            await exempt_from_rate_limits(api, bots)
            for bot in bots:
                audit.record("exempt_from_rate_limits", os.getuid(), bot, "ok", "at start")
        agent = Agent(community_path, api, audit)
        runners: list[web.AppRunner] = []
        try:
            for door in doors:
                runners.append(await open_door(door, AgentServer(agent, audit, door)))
            log.info("admin agent ready", bots=len(bots), sockets=len(doors))
            if ready is not None:
                ready.set()
            await asyncio.Event().wait()
        finally:
            for runner in runners:
                await runner.cleanup()
            for door in doors:
                with contextlib.suppress(FileNotFoundError):
                    door.path.unlink()
