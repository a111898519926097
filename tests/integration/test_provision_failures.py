"""Provisioning interrupted, refused or misconfigured: clear errors, nothing lost."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from bots.base.errors import ConfigError, SecretFileError
from bots.framework.secrets import write_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import RequestError
from provisioning.applier import ApplyError
from provisioning.provision import provision
from provisioning.state import parse_sync, sync_filter
from tests.support.community import Community, make_community
from tests.support.homeserver import Homeserver

pytestmark = pytest.mark.integration

HEARTH = str(Path(sys.executable).with_name("hearth"))


def groups(n: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"g{i}",
            "name": f"Group {i}",
            "join": "space",
            "rooms": [{"key": "general", "name": "General"}, {"key": "news", "name": "News"}],
        }
        for i in range(n)
    ]


async def labels_on_server(hs: Homeserver, community: Community) -> list[str]:
    """Every room's label, repeated if two rooms claim it."""
    api = await hs.api(community.admin)
    state = parse_sync(await api.sync(sync_filter()), "circle")
    dupes = [label for label, rooms in state.duplicates.items() for _ in rooms[1:]]
    return sorted([*state.rooms, *dupes])


async def quiet(community: Community, dry_run: bool = False) -> Any:
    return await provision(community.load(), community.path, dry_run=dry_run, out=io.StringIO())


async def test_killed_half_way_then_rerun_completes_without_duplicates(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    community = await make_community(homeserver, tmp_path, groups(8))
    proc = await asyncio.create_subprocess_exec(
        HEARTH,
        "provision",
        str(community.path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    # Let it create a few rooms, then kill it without warning.
    async with asyncio.timeout(120):
        while len(await labels_on_server(homeserver, community)) < 5:  # noqa: ASYNC110 (polls the server)
            await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    # A createRoom already in flight still completes on the server; give it
    # a moment, as any real re-run would come later than this.
    await asyncio.sleep(1.5)
    partial = await labels_on_server(homeserver, community)
    assert 5 <= len(partial) < 3 + 16

    outcome = await quiet(community)
    assert not any(
        a.label in partial for a in outcome.plan.actions if type(a).__name__ == "CreateRoom"
    )
    final = await labels_on_server(homeserver, community)
    assert final == sorted(set(final)), "a room was created twice"
    assert len(final) == 3 + 16
    assert (await quiet(community)).plan.empty


async def test_refused_request_half_way_stops_with_a_clear_error_and_rerun_finishes(
    homeserver: Homeserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = await make_community(homeserver, tmp_path, groups(3))
    real = ClientAPI.request
    writes = 0

    async def refuse_the_sixth_write(
        self: ClientAPI, method: str, path: str, *a: Any, **k: Any
    ) -> Any:
        nonlocal writes
        if method != "GET" and "override_ratelimit" not in path:
            writes += 1
            if writes == 6:
                raise RequestError(
                    f"{method} {path}", 500, {"errcode": "M_UNKNOWN", "error": "boom"}
                )
        return await real(self, method, path, *a, **k)

    monkeypatch.setattr(ClientAPI, "request", refuse_the_sixth_write)
    with pytest.raises(
        ApplyError, match=r"stopped after 5 of \d+ changes: .*HTTP 500.*run the same command again"
    ):
        await quiet(community)
    monkeypatch.setattr(ClientAPI, "request", real)
    assert len(await labels_on_server(homeserver, community)) == 5
    await quiet(community)
    final = await labels_on_server(homeserver, community)
    assert len(final) == len(set(final)) == 3 + 6


async def test_missing_moderator_account_is_named_by_key_path(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    community = await make_community(homeserver, tmp_path, groups(2))
    community.data["groups"][1]["moderators"] = ["@nobody-here:localhost"]
    community.save()
    with pytest.raises(ConfigError) as err:
        await quiet(community)
    assert "groups[1].moderators[0]" in str(err.value)
    assert "there is no account @nobody-here:localhost" in str(err.value)
    assert await labels_on_server(homeserver, community) == [], "changed something anyway"


async def test_admin_token_missing_wrong_or_not_admin(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    community = await make_community(homeserver, tmp_path, groups(1))
    token_file = tmp_path / "admin.token"
    token_file.unlink()
    with pytest.raises(SecretFileError, match=r"admin access token file .* does not exist"):
        await quiet(community)

    write_secret(token_file, "syt_not_a_real_token")
    with pytest.raises(ConfigError, match="does not accept this access token"):
        await quiet(community)

    plain = await homeserver.user("plain")
    write_secret(token_file, (await homeserver.api(plain)).access_token)
    community.data["community"]["admin"]["user_id"] = plain.user_id
    community.save()
    with pytest.raises(ConfigError, match="is not a server admin"):
        await quiet(community)


async def test_cli_exit_codes_and_messages(homeserver: Homeserver, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "community:\n  key: c\n  name: C\n  homeserver: http://x\n"
        "  admin: {user_id: '@a:x', access_token_file: t}\n"
        "  code_of_conduct: ok\n  crisis_resources: ok\n"
        "groups:\n  - {key: a, name: A}\n  - {key: a, name: B}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        HEARTH, "provision", "--dry-run", str(bad), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert f"{bad}:10: groups[1].key: group key 'a' is already used" in err.decode()

    community = await make_community(homeserver, tmp_path / "ok", groups(1))
    proc = await asyncio.create_subprocess_exec(
        HEARTH, "provision", "--dry-run", str(community.path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert "5 to create" in out.decode()
    assert await labels_on_server(homeserver, community) == []
