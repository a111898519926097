"""The crypto channel: every request the bot's encryption makes, named here.

Device and one-time key uploads, key queries and claims, to-device messages
(room keys, key requests, withheld notices), the encrypted history bundle's
upload and the cross-signing uploads. They are not actions: each is part of
sending or reading an encrypted message, decided by the crypto layer as it
goes, and never worth an outbox entry. They travel on the bot's one
transport (:mod:`bots.matrix.transport`), so a 429 on any of them pauses the
account and they wait out a pause as every other request does.

Everything else that writes is an action, performed by the outbox
(:mod:`bots.framework.outbox`).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from nio import AsyncClient, MegolmEvent, Response, UploadResponse

from bots.base.errors import HomeserverError
from bots.matrix.client_api import ClientAPI
from bots.matrix.nio_client import api_of

JsonDict = dict[str, Any]

KEYS_QUERY = "/_matrix/client/v3/keys/query"
KEYS_CLAIM = "/_matrix/client/v3/keys/claim"
DEVICE_SIGNING_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
SIGNATURES_UPLOAD = "/_matrix/client/v3/keys/signatures/upload"


class CryptoChannel:
    """The crypto calls of one nio client's account."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    def _api(self) -> ClientAPI:
        return api_of(self.client)

    # --- nio's own bookkeeping (its Olm machine reads the replies) ---

    async def upload_keys(self) -> Response:
        """Device keys and fresh one-time keys, as nio's Olm machine asks."""
        return await self.client.keys_upload()

    async def query_keys(self) -> Response:
        """Device keys of the users nio marked as changed."""
        return await self.client.keys_query()

    async def claim_keys(self) -> Response:
        """One-time keys for the devices nio wants Olm sessions with."""
        return await self.client.keys_claim(self.client.get_users_for_key_claiming())

    async def send_queued(self) -> None:
        """The to-device messages nio queued (key requests, key shares)."""
        await self.client.send_to_device_messages()

    async def request_room_key(self, event: MegolmEvent) -> None:
        """Ask the sender's devices for the key of an undecryptable message."""
        await self.client.request_room_key(event)

    async def housekeeping(self, zero_one_time_keys_on_server: bool) -> None:
        """After each sync: what nio's Olm machine wants sent, uploaded,
        queried and claimed."""
        client = self.client
        # nio takes the server's one-time key count only when it is non-zero.
        # A server that holds none of ours (a restore leaves them out of the
        # dump; every key claimed while we were down) would then never get
        # new ones, and no new device could start an Olm session with the bot.
        if client.olm is not None and zero_one_time_keys_on_server:
            client.olm.uploaded_key_count = 0
        await self.send_queued()
        if client.should_upload_keys:
            await self.upload_keys()
        if client.should_query_keys:
            await self.query_keys()
        if client.should_claim_keys:
            await self.claim_keys()

    # --- Hearth's own (the trust policy decides, not nio) ---

    async def query(self, users: Sequence[str], what: str = "keys query") -> Any:
        """``/keys/query`` for every device of *users*: the raw reply, whose
        signatures :mod:`.identity` checks."""
        return await self._api().request(
            "POST", KEYS_QUERY, {"device_keys": {u: [] for u in users}}, what=what
        )

    async def query_devices(self, devices: Mapping[str, list[str]]) -> Any:
        """``/keys/query`` for named devices (the bot's own, at start-up)."""
        return await self._api().request(
            "POST", KEYS_QUERY, {"device_keys": dict(devices)}, what="keys query"
        )

    async def claim(self, missing: Mapping[str, Mapping[str, str]]) -> Any:
        """``/keys/claim``: one one-time key for each device in *missing*."""
        return await self._api().request(
            "POST", KEYS_CLAIM, {"one_time_keys": missing}, what="keys claim"
        )

    async def send_to_device(self, event_type: str, messages: Mapping[str, Any]) -> None:
        """One ``sendToDevice`` request. Its transaction id is new, kept
        through the transport's retries: a repeated request is not delivered twice."""
        path = f"/_matrix/client/v3/sendToDevice/{event_type}/{uuid.uuid4().hex}"
        await self._api().request("PUT", path, {"messages": messages}, what="sending room keys")

    async def upload_encrypted(self, plaintext: bytes, filename: str) -> JsonDict:
        """Encrypt and upload a file (the history bundle); its ``url`` and
        decryption keys."""
        resp, keys = await self.client.upload(
            io.BytesIO(plaintext),
            "application/octet-stream",
            filename,
            encrypt=True,
            filesize=len(plaintext),
        )
        if not isinstance(resp, UploadResponse) or not keys:
            raise HomeserverError(f"uploading the {filename} failed")
        return {"url": resp.content_uri, **keys}

    async def upload_signing_keys(self, body: JsonDict, what: str) -> Any:
        """The account's cross-signing keys (``keys/device_signing/upload``)."""
        return await self._api().request("POST", DEVICE_SIGNING_UPLOAD, body, what=what)

    async def upload_signatures(self, body: JsonDict) -> Any:
        """Signatures of devices and keys (``keys/signatures/upload``)."""
        return await self._api().request(
            "POST", SIGNATURES_UPLOAD, body, what="uploading device signature"
        )
