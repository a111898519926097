"""The bot's Matrix session: one nio AsyncClient with encryption always on.

State lives in ``state_dir``:

- ``credentials.json`` (0600): user id, device id, access token. The bot logs
  in with its password once and reuses the token afterwards.
- ``pickle.key`` (0600): encrypts nio's crypto store (never nio's default key).
- ``crypto/``: nio's store: Olm/Megolm sessions and the sync token.
- ``cross_signing.json`` (0600): the account's cross-signing private keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientConnectionError
from nio import (
    AsyncClient,
    AsyncClientConfig,
    SyncError,
    SyncResponse,
    WhoamiError,
)
from nio import (
    LoginError as NioLoginError,
)

from bots.base.backoff import Backoff
from bots.base.errors import LoginError
from bots.framework.config import BotConfig
from bots.framework.cross_signing import ensure_cross_signed
from bots.framework.logging import get_logger, register_secrets
from bots.framework.secrets import ensure_secret, read_secret, write_secret
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.store import RoundStore
from bots.matrix.nio_client import TransportClient
from bots.matrix.transport import Transport

log = get_logger(__name__)

# Up to this many events per room in one sync; a room with more since the
# last one comes back "limited" and the runtime pages back through the rest.
TIMELINE_LIMIT = 100
SYNC_FILTER = {"room": {"timeline": {"limit": TIMELINE_LIMIT}}}

# Network failures worth waiting out; anything else is a bug or a refusal.
TRANSIENT = (ClientConnectionError, TimeoutError, asyncio.TimeoutError, OSError)


def encrypted_client(
    homeserver: str,
    user_id: str,
    device_id: str | None,
    state_dir: Path,
    pickle_key: str,
    *,
    ceiling: float | None = None,
    unreachable_retries: int = 0,
) -> TransportClient:
    """A nio client with encryption on and its crypto store in
    ``state_dir/crypto``, encrypted with *pickle_key*. Every request it
    makes goes through the account's one transport, as fast as the
    homeserver accepts, or at most *ceiling* a second.

    The bot's own loops wait out an outage (the effector, sync, login), so
    its transport does not retry an unreachable server too; a one-shot
    tool (the archive bot's import) asks for the transport's brief retries."""
    store = state_dir / "crypto"
    store.mkdir(exist_ok=True)
    return TransportClient(
        homeserver,
        user_id,
        transport=Transport(ceiling=ceiling, unreachable_retries=unreachable_retries),
        device_id=device_id,
        store_path=str(store),
        config=AsyncClientConfig(
            encryption_enabled=True,
            # The runtime keeps the sync position itself, with the events
            # it covers; nio's own copy is saved before they are handled.
            store_sync_tokens=False,
            pickle_key=pickle_key,
            # The transport owns retrying; nio reports failures promptly.
            max_timeouts=0,
            # nio would otherwise sleep on every 429 itself, inside the
            # transport's wait: the transport honours Retry-After, once,
            # for the whole account.
            max_limit_exceeded=0,
            request_timeout=30,
            # Saves Olm sessions a round at a time (trust/store.py).
            store=RoundStore,
        ),
    )


@dataclass(frozen=True)
class Credentials:
    user_id: str
    device_id: str
    access_token: str


class BotSession:
    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.client: AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._inflight: asyncio.Future[SyncResponse | SyncError] | None = None

    @property
    def credentials_path(self) -> Path:
        return self.state_dir / "credentials.json"

    def _load_credentials(self) -> Credentials | None:
        if not self.credentials_path.exists():
            return None
        data = json.loads(read_secret(self.credentials_path, what="bot credentials"))
        if data.get("user_id") != self.config.user_id:
            # The config now names another account: start its session afresh.
            return None
        return Credentials(data["user_id"], data["device_id"], data["access_token"])

    def _save_credentials(self, creds: Credentials) -> None:
        write_secret(self.credentials_path, json.dumps(creds.__dict__))

    async def _wait(self, backoff: Backoff, what: str) -> None:
        delay = backoff.next_delay()
        log.warning("homeserver unreachable, retrying", during=what, retry_in_s=round(delay, 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def connect(self) -> AsyncClient:
        """Log in (or restore the saved login) and prepare encryption.

        Waits out an unreachable homeserver with capped exponential backoff.

        Raises:
            LoginError: the homeserver refused the bot's password.
            SecretFileError: a secret file is missing or too readable.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        password = read_secret(self.config.password_file, what="bot password")
        pickle_key = ensure_secret(self.state_dir / "pickle.key", what="crypto store pickle key")
        register_secrets([password, pickle_key])
        creds = self._load_credentials()
        client = encrypted_client(
            self.config.homeserver,
            self.config.user_id,
            creds.device_id if creds else None,
            self.state_dir,
            pickle_key,
            ceiling=self.config.send_rate_limit,
        )
        self.client = client
        backoff = Backoff()
        while True:
            try:
                if creds is not None:
                    register_secrets([creds.access_token])
                    client.restore_login(creds.user_id, creds.device_id, creds.access_token)
                    who = await client.whoami()
                    if isinstance(who, WhoamiError):
                        if who.status_code == "M_UNKNOWN_TOKEN":
                            log.info("saved login expired, logging in again")
                            creds = await self._password_login(client, password, creds.device_id)
                        else:
                            raise ClientConnectionError(f"whoami failed: {who.status_code}")
                else:
                    creds = await self._password_login(client, password, None)
                break
            except TRANSIENT:
                if self._stopping.is_set():
                    raise
                await self._wait(backoff, "login")
        log.info("logged in", user_id=creds.user_id, device_id=creds.device_id)
        while True:
            try:
                if client.should_upload_keys:
                    await CryptoChannel(client).upload_keys()
                await ensure_cross_signed(client, password, self.state_dir / "cross_signing.json")
                break
            except TRANSIENT:
                if self._stopping.is_set():
                    raise
                await self._wait(backoff, "key upload")
        return client

    async def _password_login(
        self, client: AsyncClient, password: str, device_id: str | None
    ) -> Credentials:
        if device_id:
            client.device_id = device_id
        resp = await client.login(password=password, device_name=self.config.device_name)
        if isinstance(resp, NioLoginError):
            if resp.status_code in ("M_FORBIDDEN", "M_USER_DEACTIVATED", "M_INVALID_USERNAME"):
                raise LoginError(
                    f"the homeserver refused the bot's login ({resp.status_code}); "
                    f"check {self.config.password_file} and user_id"
                )
            raise ClientConnectionError(f"login failed: {resp.status_code}")
        creds = Credentials(resp.user_id, resp.device_id, resp.access_token)
        register_secrets([creds.access_token])
        self._save_credentials(creds)
        return creds

    async def sync_forever(
        self,
        on_sync: Callable[[SyncResponse], Awaitable[None]],
        since: str | None,
    ) -> None:
        """Sync from *since* until :meth:`stop`, riding out homeserver outages.

        The caller persists the position (with the events it covers) in
        *on_sync*; nio's own saved token is not used, because nio saves it
        before the events are handed over. :meth:`stop` cancels a long-poll
        in flight but never *on_sync*, so a sync's events are either all
        recorded or not at all.
        """
        client = self.client
        assert client is not None, "connect() first"
        backoff = Backoff()
        # nio keeps no room state on disk: after a restart ask for it in full.
        full_state = since is not None
        while not self._stopping.is_set():
            self._inflight = asyncio.ensure_future(
                client.sync(
                    timeout=self.config.sync_timeout_ms,
                    since=since,
                    full_state=full_state,
                    sync_filter=SYNC_FILTER,
                )
            )
            try:
                resp = await self._inflight
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    break
                raise
            except TRANSIENT:
                await self._wait(backoff, "sync")
                continue
            finally:
                self._inflight = None
            if isinstance(resp, SyncError):
                if resp.status_code == "M_UNKNOWN_TOKEN":
                    raise LoginError("the bot's access token was revoked; restart to log in again")
                await self._wait(backoff, f"sync ({resp.status_code})")
                continue
            if backoff.attempt:
                log.info("homeserver reachable again")
            backoff.reset()
            since, full_state = resp.next_batch, False
            try:
                await self._crypto_housekeeping(client, resp)
            except TRANSIENT:
                await self._wait(backoff, "key exchange")
            await on_sync(resp)

    @staticmethod
    async def _crypto_housekeeping(client: AsyncClient, resp: SyncResponse) -> None:
        no_keys_left = resp.device_key_count.signed_curve25519 == 0
        await CryptoChannel(client).housekeeping(zero_one_time_keys_on_server=no_keys_left)

    def stop(self) -> None:
        self._stopping.set()
        if self._inflight is not None:
            self._inflight.cancel()

    async def close(self) -> None:
        self.stop()
        if self.client is not None:
            await self.client.close()
