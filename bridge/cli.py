"""``hearth import facebook plan|apply``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bots.base.errors import HearthError


def cmd_plan(args: argparse.Namespace) -> int:
    from bridge.facebook.planning import describe, plan_import

    try:
        planned = plan_import(
            [Path(p) for p in args.exports],
            args.group,
            Path(args.roster) if args.roster else None,
            args.facebook_group,
            Path(args.out),
        )
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    for line in describe(planned):
        print(line)
    print(
        f"Review file: {args.out} ({planned.lines} lines). Delete any line that should "
        "not be carried over, then: hearth import facebook apply " + args.out
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from bridge.importer import Review, apply_review
    from provisioning.schema import load_community

    try:
        cfg = load_community(Path(args.community))
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("Importing", total=None)

            def started(review: Review) -> None:
                # Lines, not events: a photo is one more event on its line.
                bar.update(task, total=review.lines, description=f"Importing into {review.group}")

            outcome = asyncio.run(
                apply_review(
                    Path(args.review),
                    cfg,
                    as_token_file=Path(args.as_token_file) if args.as_token_file else None,
                    state_dir=Path(args.state_dir) if args.state_dir else None,
                    on_review=started,
                    on_line=lambda: bar.advance(task),
                )
            )
    except HearthError as exc:
        print(f"hearth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(
        f"Archive room: {outcome.room_id}; {outcome.in_archive} events in it"
        + (f" ({outcome.sent} sent now, resuming an earlier run)" if outcome.resumed else "")
        + "."
    )
    if outcome.photos_unreadable:
        print(f"{outcome.photos_unreadable} photos could not be read and were left out.")
    print(
        "The community bot now lists the archive in the Space and invites the group's "
        "members; members who join the group later are invited too."
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
    a = fsub.add_parser(
        "apply",
        help="import a review file into an encrypted archive room of the group",
        description="Create the group's encrypted archive room and send each line of the "
        "review into it with its original time (comments in their post's thread, photos "
        "without their metadata). Interrupted, run it again: it carries on where it stopped.",
    )
    a.add_argument("review", help="the review file written by `plan` (pruned as you wish)")
    a.add_argument(
        "--community",
        "-c",
        default="community.yaml",
        help="the community file, for its homeserver, bots and bridge section "
        "(default: community.yaml here)",
    )
    a.add_argument("--as-token-file", help="instead of the community file's bridge.as_token_file")
    a.add_argument("--state-dir", help="instead of the community file's bridge.state_dir")
    a.set_defaults(func=cmd_apply)
