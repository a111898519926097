"""The allow-list: every request the admin agent accepts, typed, and who
may make it.

Anything that does not validate against exactly one of these models is
refused before it reaches the admin API. Each of the agent's sockets serves
one :class:`Role`, and takes only that role's requests (:data:`ALLOWED`):
the bots' socket what the bots ask for, the administrators' socket what an
operator does by hand.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from bots.framework.ids import is_user_id


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Stricter than the spec's grammar on purpose: no '/' or '+' in a localpart
# the agent puts into an admin API path.
_SAFE_USER = re.compile(r"^@[a-z0-9._=-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _user(v: str) -> str:
    if not is_user_id(v) or not _SAFE_USER.match(v):
        raise ValueError("expected a Matrix user ID like @someone:example.org")
    return v


class ExemptFromRateLimits(_Request):
    """Lift Synapse's message limits for one of the community's bots."""

    type: Literal["exempt_from_rate_limits"] = "exempt_from_rate_limits"
    user_id: str
    _u = field_validator("user_id")(_user)


class CreateToken(_Request):
    """A registration token for an onboarding wave, optionally for one group."""

    type: Literal["create_token"] = "create_token"
    uses: int = Field(ge=1, le=1000)
    expires_s: int = Field(ge=60, le=90 * 86400)
    group: str | None = None


class ListTokens(_Request):
    type: Literal["list_tokens"] = "list_tokens"


class RevokeToken(_Request):
    type: Literal["revoke_token"] = "revoke_token"
    token: str = Field(min_length=1, max_length=64)


class TokenGroups(_Request):
    """Which group each registration token was made for, by the token's
    reference (what the Synapse module records; the token itself is never
    sent). For the onboarding bot, to welcome a newcomer to the right group."""

    type: Literal["token_groups"] = "token_groups"
    refs: tuple[Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")], ...] = Field(max_length=500)


class ListReports(_Request):
    """The newest abuse reports, for the moderators."""

    type: Literal["list_reports"] = "list_reports"
    limit: int = Field(default=20, ge=1, le=100)


class EraseAccount(_Request):
    """Deactivate and erase a member's account at that member's own request.

    *requested_by* is who asked (the bot checked it was sent from that
    person's account); it must be the account itself.
    """

    type: Literal["erase_account"] = "erase_account"
    user_id: str
    requested_by: str
    _u = field_validator("user_id", "requested_by")(_user)


class CreateGroup(_Request):
    """Open a new peer group (`!group create`), as the provisioning admin."""

    type: Literal["create_group"] = "create_group"
    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    requested_by: str
    _u = field_validator("requested_by")(_user)


AgentRequest = Annotated[
    ExemptFromRateLimits
    | CreateToken
    | ListTokens
    | RevokeToken
    | TokenGroups
    | ListReports
    | EraseAccount
    | CreateGroup,
    Field(discriminator="type"),
]
REQUEST = TypeAdapter(AgentRequest)


class Role(StrEnum):
    """Who is behind a socket of the agent."""

    # The bots' processes (the playbook's bots user): what features ask for.
    BOT = "bot"
    # An operator: root, or the agent's own user (`hearth-admin`).
    ADMIN = "admin"


# What each role may ask. The bots never see a registration token (only
# which group a token's reference is for) and never lift a rate limit.
ALLOWED: dict[Role, frozenset[str]] = {
    Role.BOT: frozenset(
        {
            "token_groups",  # onboarding: the group of a newcomer's token
            "list_reports",  # moderation: Element's reports, for the moderators
            "erase_account",  # onboarding: !erase-me confirm
            "create_group",  # roomkeeping: !group create
        }
    ),
    Role.ADMIN: frozenset(
        {"create_token", "list_tokens", "revoke_token", "exempt_from_rate_limits"}
    ),
}


def parse_request(data: Any) -> AgentRequest:
    """Raises pydantic.ValidationError for anything outside the allow-list."""
    return REQUEST.validate_python(data)


def subject_of(request: AgentRequest) -> str | None:
    """The member a request concerns, for the audit log (hashed there)."""
    return getattr(request, "user_id", None) or getattr(request, "requested_by", None)
