"""The `hearth` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bots.base.errors import HearthError
from bots.base.tasks import StopHook
from bots.framework.logging import configure_logging, get_logger, install_asyncio_handler

if TYPE_CHECKING:
    from bots.framework.runtime import BotRuntime

log = get_logger("hearth")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _until_signalled(coro: Coroutine[Any, Any, None], hook: StopHook | None = None) -> None:
    """Run *coro* until it ends or a signal stops it.

    SIGINT (Ctrl-C) and SIGTERM (systemd's stop) are handled alike, by the
    loop's own handlers rather than Python's KeyboardInterrupt: the first
    starts *hook*'s graceful stop, or cancels *coro* when there is none; a
    second cancels it, so its clean-up runs. A stop through the bot's own
    flag does not depend on a cancellation travelling through every await
    of a busy bot (a library that swallows one would leave it running).
    """
    install_asyncio_handler()
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1 and hook is not None and hook():
            log.info("stopping: the work in hand is finished first (signal again to cut it short)")
            return
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _run(main: Coroutine[Any, Any, None]) -> int:
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from bots.devserver.devstack import run_dev

    configure_logging(args.log_level, "auto")
    from bots.devserver.devstack import EXAMPLE_COMMUNITY

    example = Path(args.community) if args.community else EXAMPLE_COMMUNITY
    hook = StopHook()
    return _run(
        _until_signalled(run_dev(Path(args.state_dir).resolve(), args.port, example, hook), hook)
    )


async def _serve_bot(runtime: BotRuntime) -> None:
    """Run the bot; SIGTERM (systemd's stop) or Ctrl-C stops intake, lets the
    work in hand finish (bounded by stop_timeout_s), then returns, so the
    exit is 0."""
    hook = StopHook()
    hook.offer(runtime.stop)
    await _until_signalled(runtime.run(), hook)


def cmd_run(args: argparse.Namespace) -> int:
    from bots.app import build_bot, load_config

    try:
        config = load_config(Path(args.config))
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    configure_logging(config.log.level, config.log.format)
    return _run(_serve_bot(build_bot(config)))


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the bot file, every feature's section, and the community file
    when one is named with --community."""
    from bots.app import load_config, select_features
    from provisioning.schema import load_community

    # Both files are checked whatever the other holds: one pass shows all.
    failures: list[HearthError] = []
    features: list[Any] = []
    notes: list[str] = []
    try:
        config = load_config(Path(args.config))
        features, notes = select_features(config, source=args.config)
    except HearthError as exc:
        failures.append(exc)
    community = Path(args.community) if args.community else None
    if community is not None:
        try:
            load_community(community)
        except HearthError as exc:
            failures.append(exc)
    for failure in failures:
        print(f"hearth: error: {failure}", file=sys.stderr)
    if failures:
        return failures[0].exit_code
    for note in notes:
        print(f"note: {note}")
    print(f"features: {', '.join(f.name for f in features)}")
    if community is not None:
        print(f"{community}: OK")
    print(f"{args.config}: OK")
    return 0


def _uid_of(user: str) -> int:
    """A user's id, by name or number, for the admin agent's --bots-user."""
    import pwd

    from bots.base.errors import ConfigError

    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise ConfigError(
            "(command line)", "--bots-user", f"a user on this machine, not {user!r}"
        ) from None


def cmd_admin_agent(args: argparse.Namespace) -> int:
    from bots.adminagent.server import serve_agent

    configure_logging(args.log_level, "auto")
    try:
        bot_uids = [_uid_of(u) for u in args.bots_user] if args.bots_user else None
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return _run(
        _until_signalled(
            serve_agent(
                Path(args.community),
                Path(args.socket),
                Path(args.audit_log),
                socket_mode=int(args.socket_mode, 8),
                bot_uids=bot_uids,
                admin_socket=Path(args.admin_socket) if args.admin_socket else None,
            )
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Hearth: an end-to-end-encrypted home for patient peer-support groups.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev",
        help="run a local homeserver, demo accounts and the bot on this machine",
        description="Start a private Synapse on 127.0.0.1 (SQLite), create the demo accounts "
        "and an encrypted room, run the bot and print the logins. Ctrl-C stops everything.",
    )
    dev.add_argument(
        "--state-dir", default=".hearth-dev", help="where everything is kept (default: %(default)s)"
    )
    dev.add_argument(
        "--port", type=int, default=None, help="homeserver port (default: 8008 or the saved one)"
    )
    dev.add_argument(
        "--community",
        default=None,
        help="community YAML to provision (default: config/community.example.yaml); "
        "its homeserver and admin are replaced by the local ones",
    )
    dev.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    dev.set_defaults(func=cmd_dev)

    run = sub.add_parser("run", help="run the bot from a config file", description="Run the bot.")
    run.add_argument("--config", "-c", required=True, help="bot YAML (see config/bot.example.yaml)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser(
        "check-config",
        help="validate a bot config file (every feature's section) and exit",
    )
    check.add_argument("config")
    check.add_argument(
        "--community",
        default=None,
        help="also validate this community YAML",
    )
    check.set_defaults(func=cmd_check_config)

    agent = sub.add_parser(
        "admin-agent",
        help="run the admin agent: the one process that holds the Synapse admin token",
        description="Serve the typed allow-list of admin requests on Unix sockets, auditing "
        "each one: the bots' (which group a token is for, abuse reports, erasure at a "
        "member's own request, new groups) on --socket, the operator's (registration "
        "tokens, bot rate limits) on --admin-socket. The bots hold no admin token themselves.",
    )
    agent.add_argument("--community", required=True, help="the community YAML")
    agent.add_argument("--socket", required=True, help="the bots' Unix socket")
    agent.add_argument(
        "--bots-user",
        action="append",
        metavar="USER",
        help="the user the bots run as (name or uid; repeat for more); only its processes "
        "are served on --socket (default: the agent's own user, as in development)",
    )
    agent.add_argument(
        "--admin-socket",
        default=None,
        help="the operator's Unix socket (0600; root and the agent's own user only)",
    )
    agent.add_argument("--audit-log", required=True, help="append-only audit log (0600)")
    agent.add_argument(
        "--socket-mode",
        default="660",
        help="the bots' socket's permissions, octal (default: %(default)s)",
    )
    agent.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    agent.set_defaults(func=cmd_admin_agent)

    from bridge.cli import register as register_bridge
    from provisioning.cli import register

    register(sub)
    register_bridge(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
