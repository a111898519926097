"""`hearth`'s bridge registration and the playbook's are the same file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import yaml

from bridge.registration import Registration

TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "deploy/ansible/roles/hearth_bridge/templates/appservice.yaml.j2"
)
DEFAULTS = TEMPLATE.parents[1] / "defaults" / "main.yml"


def rendered(domain: str, as_token: str, hs_token: str) -> dict[str, object]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    env.filters["regex_escape"] = re.escape
    defaults = yaml.safe_load(DEFAULTS.read_text())
    plain = {k: v for k, v in defaults.items() if v is None or isinstance(v, str)}
    values = {k: v for k, v in plain.items() if "{{" not in (v or "")} | {
        "ansible_managed": "managed",
        "hearth_domain": domain,
        "_hearth_bridge_as_token": as_token,
        "_hearth_bridge_hs_token": hs_token,
    }
    loaded = yaml.safe_load(env.from_string(TEMPLATE.read_text()).render(**values))
    assert isinstance(loaded, dict)
    return loaded


def test_hearth_writes_the_registration_the_playbook_writes() -> None:
    ours = Registration("care.example.org", "as-secret", "hs-secret")
    theirs = rendered("care.example.org", "as-secret", "hs-secret")
    assert yaml.safe_load(ours.to_yaml()) == theirs
    assert ours.sender == "@hearth-bridge:care.example.org"
    # The namespace matches imported authors on this server only.
    (users,) = ours.as_dict()["namespaces"]["users"]
    assert re.fullmatch(users["regex"], "@fb_alicja:care.example.org")
    assert not re.fullmatch(users["regex"], "@fb_alicja:careXexample.org")
