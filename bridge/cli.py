"""``hearth import facebook plan|apply``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bots.base.errors import HearthError


def cmd_plan(args: argparse.Namespace) -> int:
    from bridge.facebook.planning import describe, plan_import, write_review

    try:
        planned = plan_import(
            [Path(p) for p in args.exports],
            args.group,
            Path(args.roster) if args.roster else None,
            args.facebook_group,
        )
        write_review(planned, Path(args.out))
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    for line in describe(planned):
        print(line)
    print(
        f"Review file: {args.out} ({len(planned.lines)} lines). Delete any line that should "
        "not be carried over, then: hearth import facebook apply " + args.out
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser("import", help="carry a group's history over from elsewhere")
    isub = imp.add_subparsers(dest="source", required=True, metavar="SOURCE")
    fb = isub.add_parser(
        "facebook",
        help="from members' own Facebook exports (Download Your Information, JSON)",
    )
    fsub = fb.add_subparsers(dest="step", required=True, metavar="STEP")
    p = fsub.add_parser(
        "plan",
        help="read the exports and write a review file, one line per post or comment",
        description="Read members' export ZIPs (nothing is extracted), merge them, place "
        "comments under their posts, apply the roster and write a review file to read and "
        "prune before anything is imported.",
    )
    p.add_argument("exports", nargs="+", help="members' export ZIP files")
    p.add_argument("--group", required=True, help="the Hearth group the archive is for")
    p.add_argument(
        "--roster", help="CSV: facebook_name, shown_as (Matrix ID or pseudonym), exclude"
    )
    p.add_argument("--facebook-group", help="which Facebook group (if the exports hold several)")
    p.add_argument("--out", required=True, help="the review file to write (JSON lines, 0600)")
    p.set_defaults(func=cmd_plan)
