"""The bridge's application-service registration, as Synapse reads it.

The playbook writes the same file from its own template
(``deploy/ansible/roles/hearth_bridge/templates/appservice.yaml.j2``);
``tests/unit/test_bridge_registration.py`` renders that template and checks
the two agree, so an import works the same on a dev machine and a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

DEFAULT_ID = "hearth-bridge"
DEFAULT_SENDER = "hearth-bridge"
DEFAULT_PREFIX = "fb_"


@dataclass(frozen=True)
class Registration:
    domain: str
    as_token: str
    hs_token: str
    id: str = DEFAULT_ID
    # Nothing listens: an import is a command, not a server, so Synapse is
    # told to send the bridge no events.
    url: str | None = None
    sender_localpart: str = DEFAULT_SENDER
    user_prefix: str = DEFAULT_PREFIX

    @property
    def sender(self) -> str:
        return f"@{self.sender_localpart}:{self.domain}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": self.sender_localpart,
            # Imported authors may get accounts of their own; only the
            # bridge may create them.
            "namespaces": {
                "users": [
                    {
                        "exclusive": True,
                        "regex": f"@{self.user_prefix}.*:{re.escape(self.domain)}",
                    }
                ],
                "aliases": [],
                "rooms": [],
            },
            # An import sends in bursts and paces itself (it backs off on 429).
            "rate_limited": False,
        }

    def to_yaml(self) -> str:
        head = "# Application-service registration of the Hearth bridge (read by Synapse).\n"
        return head + yaml.safe_dump(self.as_dict(), sort_keys=False)
