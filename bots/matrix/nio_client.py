"""nio's ``AsyncClient``, sending through a :class:`~bots.matrix.transport.Transport`.

nio's ``_send`` builds each request and reads its response; its ``send`` is
the one call that reaches the network, and this subclass hands it to the
transport. nio's own retries are off (``max_limit_exceeded=0``,
``max_timeouts=0``), so a 429 on any request (a room send, an invite, a
``keys/query``) is waited out once, by the transport, and pauses every other
request of the account with it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from nio import AsyncClient, AsyncClientConfig

from bots.base.errors import HomeserverError
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport


class TransportClient(AsyncClient):
    def __init__(
        self,
        homeserver: str,
        user: str,
        *,
        transport: Transport,
        device_id: str | None = None,
        store_path: str | None = None,
        config: AsyncClientConfig | None = None,
    ) -> None:
        if config is None or config.max_limit_exceeded != 0 or config.max_timeouts != 0:
            # Two retry loops, one inside the other, would each wait out a 429.
            raise ValueError("nio's own retries must be off: the transport retries")
        super().__init__(
            homeserver, user, device_id=device_id, store_path=store_path, config=config
        )
        self.transport = transport

    async def send(
        self,
        method: str,
        path: str,
        data: Any = None,
        headers: dict[str, str] | None = None,
        trace_context: Any | None = None,
        timeout: float | None = None,
    ) -> ClientResponse:
        """nio's ``send`` (one request, no ``receive_response``), through the transport."""
        return await self.transport.send(
            method,
            self.homeserver + path,
            data=data,
            headers=headers,
            timeout_s=self.config.request_timeout if timeout is None else timeout,
            ssl=self.ssl,
        )

    async def close(self) -> None:
        await super().close()
        await self.transport.close()


def api_of(client: AsyncClient) -> ClientAPI:
    """Hearth's own calls for *client*'s account, on its transport: the same
    rate limits, pauses and timeouts as nio's requests. (A member's plain nio
    client in the tests and benches gets a transport over its own session.)"""
    if not client.access_token:
        raise HomeserverError("a call on the account needs a logged-in client")
    if isinstance(client, TransportClient):
        transport = client.transport
    elif client.client_session is not None:
        transport = Transport(client.client_session)
    else:
        raise HomeserverError("a call on the account needs a logged-in client")
    return ClientAPI(client.homeserver, client.access_token, transport)
