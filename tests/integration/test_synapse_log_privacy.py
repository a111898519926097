"""Synapse's own log names nobody: a sign-up with a token and a login leave no trace in it."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from tests.support.homeserver import Homeserver
from tests.support.registration import register

pytestmark = pytest.mark.integration


async def test_sign_up_with_a_token_and_login_leave_no_name_token_or_device_in_synapse_log(
    homeserver: Homeserver,
) -> None:
    admin = await homeserver.user("admin", admin=True)
    made = await (await homeserver.api(admin)).request(
        "POST", "/_synapse/admin/v1/registration_tokens/new", {"uses_allowed": 1}
    )
    token = made["token"]
    localpart = f"quiet-{secrets.token_hex(5)}"

    # The user-interactive sign-up a member's app does: the token stage, then dummy.
    status, signed_up, user = await register(homeserver.base_url, token, localpart)
    assert status == 200, signed_up
    assert user is not None
    assert homeserver.http is not None
    access = await ClientAPI.login(
        homeserver.base_url, user.user_id, user.password, Transport(homeserver.http), "Phone"
    )
    api = ClientAPI(homeserver.base_url, access, Transport(homeserver.http))
    whoami = await api.request("GET", "/_matrix/client/v3/account/whoami")
    assert whoami["user_id"] == user.user_id
    # Synapse writes a request's lines as it finishes it: give the last one a moment.
    await asyncio.sleep(0.5)

    log = (homeserver.dir / "synapse.log").read_text(errors="replace")
    # The log works (start-up lines are kept)...
    assert "Synapse now listening on TCP port" in log
    # ...and holds nothing of this newcomer's.
    secret_or_naming = {
        "the registration token": token,
        "the user ID": user.user_id,
        "the localpart": localpart,
        "the sign-up's device": signed_up["device_id"],
        "the login's device": whoami["device_id"],
        "the sign-up's access token": signed_up["access_token"],
        "the login's access token": access,
        "the password": user.password,
    }
    found = [what for what, value in secret_or_naming.items() if value in log]
    assert found == [], f"synapse.log holds {', '.join(found)}"
