"""The admin agent's server: a Unix socket, one request a call, each audited.

Only processes that can open the socket (the bots' group; see the playbook)
can ask. The peer's user id (SO_PEERCRED) goes into the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from bots.adminagent.audit import AuditLog
from bots.adminagent.handlers import Agent, Refused
from bots.adminagent.requests import parse_request, subject_of
from bots.base.errors import HearthError
from bots.framework.logging import get_logger, register_secrets, use_salt_file
from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
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


class AgentServer:
    def __init__(self, agent: Agent, audit: AuditLog) -> None:
        self.agent = agent
        self.audit = audit

    async def on_request(self, request: web.Request) -> web.Response:
        uid = peer_uid(request)
        try:
            data = await request.json()
            parsed = parse_request(data)
        except ValidationError as exc:
            kind = data.get("type") if isinstance(data, dict) else None
            self.audit.record(str(kind or "?")[:40], uid, None, "refused", "not allowed")
            return web.json_response({"ok": False, "error": _problem(exc)}, status=400)
        except ValueError:
            self.audit.record("?", uid, None, "refused", "not JSON")
            return web.json_response({"ok": False, "error": "not JSON"}, status=400)
        kind, subject = parsed.type, subject_of(parsed)
        try:
            result = await self.agent.handle(parsed)
        except Refused as exc:
            self.audit.record(kind, uid, subject, "refused", str(exc))
            return web.json_response({"ok": False, "error": str(exc)}, status=403)
        except HearthError as exc:
            self.audit.record(kind, uid, subject, "failed", type(exc).__name__)
            log.warning("admin request failed", request=kind, problem=type(exc).__name__)
            return web.json_response({"ok": False, "error": str(exc)}, status=502)
        except Exception as exc:
            # Recorded too: the audit log has a line for every request.
            self.audit.record(kind, uid, subject, "failed", type(exc).__name__)
            log.exception("admin request failed", request=kind)
            return web.json_response({"ok": False, "error": "the agent failed"}, status=500)
        self.audit.record(kind, uid, subject, "ok", "")
        log.info("admin request done", request=kind)
        return web.json_response({"ok": True, "result": result})


async def serve_agent(
    community_path: Path,
    socket_path: Path,
    audit_path: Path,
    *,
    socket_mode: int = 0o660,
    ready: asyncio.Event | None = None,
) -> None:
    """Run the agent until cancelled. On start it exempts the community's
    bots from rate limits, so a busy room never throttles their replies."""
    cfg = load_community(community_path)
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    register_secrets([token])
    # A salt of its own, kept beside the audit log: the same member hashes
    # the same way across restarts, and differently from the bots' logs.
    use_salt_file(audit_path.parent / "log-salt")
    audit = AuditLog(audit_path)
    async with aiohttp.ClientSession() as http:
        api = ClientAPI(cfg.community.homeserver, token, http)
        bots = [b.user_id for b in cfg.bots]
        if bots:
            await exempt_from_rate_limits(api, bots)
            for bot in bots:
                audit.record("exempt_from_rate_limits", os.getuid(), bot, "ok", "at start")
        server = AgentServer(Agent(community_path, api, audit), audit)
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/request", server.on_request)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        # Made with no access for anyone, then opened to the group: there
        # is no moment when others could connect.
        old_umask = os.umask(0o177)
        try:
            site = web.UnixSite(runner, str(socket_path))
            await site.start()
        finally:
            os.umask(old_umask)
        os.chmod(socket_path, socket_mode)
        log.info("admin agent ready", bots=len(bots))
        if ready is not None:
            ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
