"""How a bot asks the admin agent for something, over its Unix socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from bots.adminagent.requests import AgentRequest
from bots.base.errors import HearthError
from bots.matrix.transport import open_session


class AgentError(HearthError):
    """The agent refused the request, failed it, or could not be reached."""


class AgentClient:
    def __init__(self, socket_path: Path, timeout_s: float = 120.0) -> None:
        self.socket_path = socket_path
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def ask(self, request: AgentRequest) -> dict[str, Any]:
        """The agent's result for *request*.

        Raises:
            AgentError: with the agent's reason, safe to show a moderator.
        """
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        try:
            async with (
                open_session(connector=connector, timeout=self.timeout) as http,
                http.post("http://agent/request", json=request.model_dump()) as resp,
            ):
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise AgentError(f"the admin agent is not reachable ({type(exc).__name__})") from None
        if not isinstance(body, dict) or not body.get("ok"):
            reason = body.get("error") if isinstance(body, dict) else None
            raise AgentError(str(reason or "the admin agent refused the request"))
        result = body.get("result")
        return result if isinstance(result, dict) else {}
