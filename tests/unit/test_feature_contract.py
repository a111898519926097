"""The feature contract: the example feature of docs/writing-a-feature.md
decides as the doc says, and mypy refuses a handler of another feature's
config type."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bots.framework.actions import Action, DeleteRecord, PutRecord, Reply, ScheduleJob, SendNotice
from bots.framework.commands.spec import Invocation
from bots.framework.config import BotConfig
from bots.framework.events import PowerSnapshot, Reaction
from bots.framework.feature import Context, Job
from bots.thanks.config import ThanksConfig
from bots.thanks.feature import FEATURE, digest, on_reaction, tell_week, thank

ROOT = Path(__file__).resolve().parents[2]
ROOM = "!peers:example.org"
ALICE, BOB = "@alice:example.org", "@bob:example.org"
NOW = 1_800_000_000.0


class Records:
    """The feature's records, as the platform's store keeps them."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    async def record(self, feature: str, kind: str, key: str) -> dict[str, Any] | None:
        return self.data.get((kind, key))

    async def records(self, feature: str, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for (kd, k), v in self.data.items() if kd == kind}

    def apply(self, actions: Any) -> list[Action]:
        """Write the decision's records, as the runtime does; the rest."""
        rest = []
        for a in actions:
            if isinstance(a, PutRecord):
                self.data[(a.kind, a.key)] = dict(a.value)
            elif isinstance(a, DeleteRecord):
                self.data.pop((a.kind, a.key), None)
            else:
                rest.append(a)
        return rest


def context(records: Records, week_s: float = 60.0) -> Context[ThanksConfig]:
    return Context(
        me="@hearth-bot:example.org",
        feature=FEATURE.name,
        config=ThanksConfig(week_s=week_s),
        bot=BotConfig(
            homeserver="https://example.org",
            user_id="@hearth-bot:example.org",
            password_file=Path("unused"),
            state_dir=Path("unused"),
        ),
        now=NOW,
        db=None,  # type: ignore[arg-type]  # the feature keeps records only
        power=lambda room, user: PowerSnapshot(0, None),
        store=records,
    )


def invocation(sender: str, who: str, event_id: str) -> Invocation:
    args: Mapping[str, Any] = {"who": who, "why": None}
    return Invocation("thanks", dict(args), sender, ROOM, event_id, PowerSnapshot(0, None))


def test_the_digest_says_a_count_and_no_names() -> None:
    assert digest(1) == (
        "This week one thank-you was said here. Thank you for looking after each other."
    )
    assert digest(3).startswith("This week 3 thank-yous were said here.")


def digest_job(n: int, told: int, due: float = NOW + 60) -> ScheduleJob:
    payload = {"room": ROOM, "n": n, "told": told}
    return ScheduleJob("thanks", "digest", due, f"digest:{ROOM}:{n}", payload)


def run(job: ScheduleJob) -> Job:
    return Job(job.kind, job.key, job.due, job.payload, late=False, parsed=None)


async def test_a_week_of_thanks_is_counted_and_told_once() -> None:
    records = Records()
    first = records.apply(await thank(invocation(ALICE, BOB, "$1"), context(records)))
    assert first == [digest_job(0, 0), Reply(ROOM, "$1", f"Thank you passed on to {BOB}.")]
    # The week's second thank-you, and a 🙏: counted, no second digest.
    second = records.apply(await thank(invocation(BOB, ALICE, "$2"), context(records)))
    assert [type(a) for a in second] == [Reply]
    reaction = Reaction("$3", ROOM, BOB, 0, True, "$2", "🙏")
    assert records.apply(await on_reaction(reaction, context(records))) == []

    told = records.apply(await tell_week(run(digest_job(0, 0)), context(records)))
    assert told == [SendNotice(ROOM, digest(3), mentions=()), digest_job(1, 3)]
    # A quiet week: nothing said, and the next week's digest all the same.
    quiet = await tell_week(run(digest_job(1, 3)), context(records))
    assert quiet == [digest_job(2, 3)]


async def test_a_thank_you_as_the_digest_runs_is_told_the_week_after() -> None:
    """The digest runs beside the room's queue: a thank-you counted after
    it read the count is neither lost nor told twice."""
    records = Records()
    records.apply(await thank(invocation(ALICE, BOB, "$1"), context(records)))
    digest_read = await tell_week(run(digest_job(0, 0)), context(records))
    # Counted between the digest's read and its actions being written.
    records.apply(await thank(invocation(BOB, ALICE, "$2"), context(records)))
    assert records.apply(digest_read) == [
        SendNotice(ROOM, digest(1), mentions=()),
        digest_job(1, 1),
    ]
    after = records.apply(await tell_week(run(digest_job(1, 1)), context(records)))
    assert after == [SendNotice(ROOM, digest(1), mentions=()), digest_job(2, 2)]


async def test_thanking_yourself_and_other_reactions_count_for_nothing() -> None:
    records = Records()
    own = await thank(invocation(ALICE, ALICE, "$1"), context(records))
    assert own == [Reply(ROOM, "$1", "That one doesn't count, but well done you.")]
    smile = Reaction("$2", ROOM, BOB, 0, True, "$1", "🙂")
    assert await on_reaction(smile, context(records)) == []
    assert records.data == {}


PROBE = """
from collections.abc import Sequence

from bots.core.config import CoreConfig
from bots.framework.actions import Action
from bots.framework.commands.spec import Command, Invocation
from bots.framework.events import Reaction
from bots.framework.feature import Context, EventHandler, Feature, Job, JobSpec
from bots.thanks.config import ThanksConfig


async def cmd(inv: Invocation, ctx: Context[CoreConfig]) -> Sequence[Action]:
    return []


async def on(event: Reaction, ctx: Context[CoreConfig]) -> Sequence[Action]:
    return []


async def job(job: Job[None], ctx: Context[CoreConfig]) -> Sequence[Action]:
    return []


RIGHT = Feature("r", "", CoreConfig, (Command("x", "", cmd),), (EventHandler(Reaction, on),))
WRONG_COMMAND = Feature("a", "", ThanksConfig, commands=(Command("x", "", cmd),))
WRONG_HANDLER = Feature("b", "", ThanksConfig, handlers=(EventHandler(Reaction, on),))
WRONG_JOB = Feature("c", "", ThanksConfig, jobs=(JobSpec("j", job),))
"""


def test_mypy_refuses_a_handler_of_another_features_config(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    lines = PROBE.splitlines()
    wrong = {i + 1 for i, line in enumerate(lines) if line.startswith("WRONG_")}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    flagged = {int(line.split(":")[1]) for line in done.stdout.splitlines() if ": error:" in line}
    assert flagged == wrong, done.stdout


def test_the_doc_shows_the_feature_as_it_is() -> None:
    """docs/writing-a-feature.md shows the code the tests run, not a copy
    that drifts: each of its Python blocks is in the example's files."""
    doc = (ROOT / "docs" / "writing-a-feature.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```python\n")[1:]]
    files = "".join(
        (ROOT / "bots" / "thanks" / name).read_text(encoding="utf-8")
        for name in ("config.py", "feature.py")
    )
    assert len(blocks) == 2
    for block in blocks:
        assert block in files, block
