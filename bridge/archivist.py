"""The archive bot's encryption device: the layer around nio for an
application service.

Synapse gives an application service no device of its own: requests with
its token act for its sender account without one. Two ways exist to get
one. Synapse's MSC4190 support (``io.element.msc4190: true`` in the
registration) lets the service create devices with ``PUT /devices`` but
then refuses ``m.login.application_service``; without it, the service logs
its sender in with ``m.login.application_service``, which makes an ordinary
device with its own access token. Hearth takes the login: it needs nothing
unstable, works with the registration the playbook installs, and gives nio
the logged-in device it expects.

So the archive bot has one device, logged in once and kept in its state
folder (``credentials.json``, ``pickle.key``, ``cross_signing.json``, all
0600; nio's crypto store in ``crypto/``), cross-signed like the community
bot's (`bots.framework.cross_signing`: a first upload needs no password).
The device's token carries the key traffic (uploads, queries, room keys to
the community bot); events are sent with the service's token, which alone
may set their time (`bridge.appservice`).

Room keys are shared by Hearth's trust layer (`bots.framework.trust`): only
with devices their owners cross-signed, and marked shareable
(``m.shared_history``), so the community bot can hand the archive to
members in its history bundles. Written for matrix-nio 0.26.0
(constraints.txt), like the layer it reuses.
"""

from __future__ import annotations

import json
from pathlib import Path

from nio import (
    AsyncClient,
    JoinedMembersError,
    KeysQueryError,
    MatrixRoom,
    WhoamiError,
)

from bots.base.errors import HomeserverError
from bots.framework.cross_signing import ensure_cross_signed
from bots.framework.logging import get_logger, register_secrets
from bots.framework.secrets import ensure_secret, read_secret, write_secret
from bots.framework.session import encrypted_client
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import KeySharing
from bots.framework.trust.sharing import KeySharer
from bots.matrix.transport import UNREACHABLE_RETRIES
from bridge.appservice import AppService
from bridge.progress import Progress

log = get_logger(__name__)

DEVICE_NAME = "Hearth archive"


class Archivist:
    def __init__(
        self, homeserver: str, service: AppService, state_dir: Path, progress: Progress
    ) -> None:
        self.homeserver = homeserver
        self.service = service
        self.state_dir = state_dir
        self.progress = progress
        self.client: AsyncClient | None = None
        self.keys: KeySharer | None = None

    @property
    def _credentials(self) -> Path:
        return self.state_dir / "credentials.json"

    async def connect(self) -> AsyncClient:
        """Log the device in (or restore it), upload its keys, cross-sign it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        pickle_key = ensure_secret(self.state_dir / "pickle.key", what="crypto store pickle key")
        register_secrets([pickle_key])
        saved: dict[str, str] | None = None
        if self._credentials.exists():
            saved = json.loads(read_secret(self._credentials, what="archive bot credentials"))
            if saved.get("user_id") != self.service.sender:
                saved = None
        client = encrypted_client(
            self.homeserver,
            self.service.sender,
            saved["device_id"] if saved else None,
            self.state_dir,
            pickle_key,
            unreachable_retries=UNREACHABLE_RETRIES,
        )
        self.client = client
        if saved is not None:
            register_secrets([saved["access_token"]])
            client.restore_login(saved["user_id"], saved["device_id"], saved["access_token"])
            if isinstance(await client.whoami(), WhoamiError):
                # The token was revoked: the same device again.
                await self._login(client, saved["device_id"])
        else:
            await self._login(client, None)
        if client.should_upload_keys:
            await client.keys_upload()
        # An application service has no password: the first upload of its
        # cross-signing keys needs none (MSC3967); replacing them would.
        await ensure_cross_signed(client, "", self.state_dir / "cross_signing.json")
        identities = Identities(
            CryptoChannel(client),
            self.progress,
            holds_power=lambda _user: False,
            report_change=_nothing,
        )
        self.keys = KeySharer(
            client, identities, KeySharing.CROSS_SIGNED, shared_history=lambda _room: True
        )
        return client

    async def _login(self, client: AsyncClient, device_id: str | None) -> None:
        await self.service.register()
        device, token = await self.service.login(DEVICE_NAME, device_id)
        register_secrets([token])
        write_secret(
            self._credentials,
            json.dumps(
                {"user_id": self.service.sender, "device_id": device, "access_token": token}
            ),
        )
        client.restore_login(self.service.sender, device, token)
        log.info("archive bot device logged in", device_id=device)

    async def learn_room(self, room_id: str) -> None:
        """Tell nio of the archive room and who is in it. An application
        service's account may not /sync (Synapse refuses), so the room is
        made known by hand: encrypted, as the bot created it, with its
        members read from the server (which starts tracking their devices)."""
        client = self.client
        assert client is not None
        assert client.user_id
        if room_id not in client.rooms:
            client.rooms[room_id] = MatrixRoom(room_id, client.user_id, encrypted=True)
            client.encrypted_rooms.add(room_id)
        if isinstance(await client.joined_members(room_id), JoinedMembersError):
            raise HomeserverError("reading the archive room's members failed")
        if client.should_query_keys and isinstance(await client.keys_query(), KeysQueryError):
            raise HomeserverError("reading the members' device keys failed")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def _nothing(_user: str) -> None:
    return None
