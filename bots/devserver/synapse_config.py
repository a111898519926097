"""A private, loopback-only Synapse configuration for development and tests."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml

from bots.framework.secrets import ensure_secret

HOMESERVER_YAML = "homeserver.yaml"
# Synapse's log configuration, beside homeserver.yaml.
LOG_YAML = "log.yaml"
# Where Hearth's Synapse module (hearth_synapse) leaves word of each new
# account for the onboarding bot, inside the homeserver's state folder.
REGISTRATIONS = "registrations"
# The bridge's application-service registration, and its as_token for
# `hearth import facebook apply` (both 0600, in the homeserver's folder).
BRIDGE_REGISTRATION = "hearth-bridge.yaml"
BRIDGE_AS_TOKEN = "bridge-as-token"

_GENEROUS = {"per_second": 1000, "burst_count": 1000}

# Synapse's loggers allowed to log at INFO: start-up, listening ports, schema
# migrations, background updates and Redis replication. Each is named after
# one module, not a package (a package's level would pass to every module
# under it), and none logs an account, a token or a room (read in Synapse
# 1.163's source). Every other logger stays at WARNING, because at INFO
# Synapse names members: synapse.handlers.auth writes "Logging in user @x on
# device D" and, on a sign-up, the registration token in clear ("Auth
# completed with creds"); synapse.access.* writes one line per request with
# the account and its IP address; synapse.handlers.register, .device and the
# room handlers, synapse.rest.client.login, synapse.storage (SQL values at
# DEBUG), synapse.federation, synapse.http (request paths and bodies),
# synapse.push and synapse.replication name accounts, devices or rooms.
# WARNING and above stay on: failures must be visible (a failed password
# login names the account tried, which is what an operator needs then).
# deploy/ansible/roles/hearth_synapse/templates/log.yaml.j2 has the same
# levels (tests/unit/test_synapse_log_config.py keeps them equal).
SYNAPSE_INFO_LOGGERS = (
    "synapse.app._base",
    "synapse.app.homeserver",
    "synapse.app.generic_worker",
    "synapse.config.logger",
    "synapse.server",
    "synapse.storage.prepare_database",
    "synapse.storage.background_updates",
    "synapse.replication.tcp.redis",
)


def free_port(preferred: int | None = None) -> int:
    """Return *preferred* if it can be bound on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def dev_config(state_dir: Path, port: int, server_name: str = "localhost") -> dict[str, Any]:
    """Synapse settings for a single-machine homeserver bound to loopback.

    The privacy settings match what deploy/ansible applies in production;
    the rate limits are raised because every client here is on one machine.
    """
    return {
        "server_name": server_name,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(state_dir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(state_dir / "homeserver.db")}},
        "log_config": str(state_dir / LOG_YAML),
        "media_store_path": str(state_dir / "media"),
        "signing_key_path": str(state_dir / "signing.key"),
        "registration_shared_secret_path": str(state_dir / "registration_shared_secret"),
        "macaroon_secret_key": ensure_secret(state_dir / "macaroon_secret_key"),
        "form_secret": ensure_secret(state_dir / "form_secret"),
        "report_stats": False,
        # Sign-up only with a registration token (`hearth tokens create`).
        "enable_registration": True,
        "registration_requires_token": True,
        "encryption_enabled_by_default_for_room_type": "all",
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "push": {"include_content": False},
        "require_auth_for_profile_requests": True,
        "limit_profile_requests_to_users_who_share_rooms": True,
        "include_profile_data_on_invite": False,
        "room_list_publication_rules": [{"action": "deny"}],
        "user_ips_max_age": "1d",
        "redaction_retention_period": "1d",
        "rc_message": _GENEROUS,
        "rc_registration": _GENEROUS,
        "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
        "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
        "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
        "rc_room_creation": _GENEROUS,
        "rc_key_requests": _GENEROUS,
        "rc_3pid_validation": _GENEROUS,
        "rc_admin_redaction": _GENEROUS,
        "rc_delayed_event_mgmt": _GENEROUS,
        # The Facebook import, as the playbook registers it.
        "app_service_config_files": [str(state_dir / BRIDGE_REGISTRATION)],
        # Tells the onboarding bot of each account registered with a token.
        "modules": [
            {
                "module": "hearth_synapse.RegistrationSpool",
                "config": {"spool_dir": str(registrations_dir(state_dir)), "file_mode": 0o600},
            }
        ],
    }


def synapse_log_config() -> dict[str, Any]:
    """Synapse's logging (Python's dictConfig): WARNING, but for the loggers
    in SYNAPSE_INFO_LOGGERS, to standard error (which SynapseProcess appends
    to synapse.log)."""
    return {
        "version": 1,
        "formatters": {
            "dev": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "filters": {
            "context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "dev", "filters": ["context"]}
        },
        "loggers": {name: {"level": "INFO"} for name in SYNAPSE_INFO_LOGGERS},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "disable_existing_loggers": False,
    }


def registrations_dir(state_dir: Path) -> Path:
    """The spool of new registrations of the homeserver kept in *state_dir*."""
    return state_dir / REGISTRATIONS


def write_dev_config(
    state_dir: Path,
    port: int,
    server_name: str = "localhost",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write homeserver.yaml (0600: it holds secrets), log.yaml and the signing key.

    *overrides* replace top-level settings (a test's strict rate limits)."""
    from signedjson.key import generate_signing_key, write_signing_keys  # Synapse's own dep

    state_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret(state_dir / "registration_shared_secret")
    key_path = state_dir / "signing.key"
    if not key_path.exists():
        with key_path.open("w") as fh:
            write_signing_keys(fh, [generate_signing_key("a_hearth")])
        key_path.chmod(0o600)
    from bots.framework.secrets import write_secret

    write_bridge_registration(state_dir, server_name)
    (state_dir / LOG_YAML).write_text(yaml.safe_dump(synapse_log_config(), sort_keys=False))
    path = state_dir / HOMESERVER_YAML

    config = {**dev_config(state_dir, port, server_name), **(overrides or {})}
    write_secret(path, yaml.safe_dump(config, sort_keys=False))
    return path


def write_bridge_registration(state_dir: Path, server_name: str) -> Path:
    """The bridge's registration, with tokens made once (the as_token kept
    beside it for the import); its path."""
    from bots.framework.secrets import write_secret
    from bridge.registration import Registration

    as_token = ensure_secret(state_dir / BRIDGE_AS_TOKEN)
    hs_token = ensure_secret(state_dir / "bridge-hs-token")
    path = state_dir / BRIDGE_REGISTRATION
    write_secret(path, Registration(server_name, as_token, hs_token).to_yaml())
    return path


def configured_port(config_path: Path) -> int:
    data = yaml.safe_load(config_path.read_text())
    return int(data["listeners"][0]["port"])
