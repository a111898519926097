"""Hostile Facebook exports handed to `hearth import facebook plan` beside
an honest one: the real command, in a process of its own.

The attacker is a member who hands the organiser a crafted export: one
comment of 256 MiB (deflating 73 to 1, so past the ZIP bomb check), a
comment nested a hundred thousand levels deep, and titles built to make a
backtracking regular expression run for hours. Each hostile export is
left out, named with its entry in the summary; the honest member's
history is all in the review file; the command ends at once, and its peak
memory (from wait4) stays far below the 256 MiB it was handed. No Synapse
is needed: the attack is a file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.facebook.review import Line, read_review
from tests.support.facebook_exports import (
    PROFILE_ENTRY,
    Comment,
    FakeExport,
    Post,
    json_text,
    profile_json,
    write_zip,
)

pytestmark = [pytest.mark.adversarial]

HEARTH = str(Path(sys.executable).with_name("hearth"))
GROUP = "Carers UK"
T0 = 1_600_000_000
GROUPS = "facebook-export/your_facebook_activity/groups/"
COMMENTS = GROUPS + "your_comments_in_groups.json"
POSTS = GROUPS + "group_posts_and_comments.json"
MiB = 2**20
# Past this the planning process is holding what it was handed, not
# streaming it: half the 256 MiB entry. The command itself (Python and
# Hearth's modules) takes about 60 MiB.
RSS_BOUND = 128 * MiB
# The address space the process may take (ulimit -v): enough for Python,
# and a failure, not a swamped machine, if a reader loads the entry whole.
ADDRESS_SPACE = 2048 * MiB


def big_comment(path: Path) -> Path:
    """One comment of 256 MiB of text: as large as an entry may be."""
    head = (
        b'{"group_comments_v2": [{"timestamp": %d, "title": "Mallory replied to '
        b'Alicja Wr\\u00c3\\u00b3bel\'s post.", "data": [{"comment": {"author": '
        b'"Mallory", "group": "Carers UK", "comment": "' % T0
    )
    tail = b'"}}]}]}'
    text = json_text(256 * MiB - len(head) - len(tail))
    entries = {PROFILE_ENTRY: profile_json("Mallory"), COMMENTS: [(head, 1), *text, (tail, 1)]}
    return write_zip(path, entries)


def deep_comment(path: Path) -> Path:
    depth = 100_000
    comments = b'{"group_comments_v2": [' + b"[" * depth + b"]" * depth + b"]}"
    return write_zip(path, {PROFILE_ENTRY: profile_json("Oscar"), COMMENTS: comments})


# Titles that the old expressions took hours on: 1.7 MB with no ending
# they could match, so they tried every split (quadratic in the length).
POST_TITLE = "".join(f"m{n} posted in " for n in range(100_000)) + "\nx"
COMMENT_TITLE = "".join(f"m{n} replied to " for n in range(100_000)) + "x"


def backtracking_titles(path: Path) -> Path:
    post = {"timestamp": T0 + 10, "title": POST_TITLE, "data": [{"post": "elsewhere"}]}
    comment = {
        "timestamp": T0 + 200,
        "title": COMMENT_TITLE,
        "data": [
            {"comment": {"author": "Eve", "group": GROUP, "comment": "a comment, titled oddly"}}
        ],
    }
    entries = {
        PROFILE_ENTRY: profile_json("Eve"),
        POSTS: json.dumps({"group_posts_v2": [post]}).encode(),
        COMMENTS: json.dumps({"group_comments_v2": [comment]}).encode(),
    }
    return write_zip(path, entries)


@dataclass(frozen=True)
class Planned:
    code: int | None  # None: still running after a minute
    out: str
    err: str
    peak_rss: int  # bytes
    lines: list[Line]
    bomb: Path
    deep: Path


# Runs a command and writes its peak RSS, from wait4, to a file. Measured
# here, not from the test session: a process forked from the session
# starts with the session's memory counted in its peak (Linux records the
# forked copy's high-water mark at exec), and the session has other
# children (a homeserver) in RUSAGE_CHILDREN. This launcher is small when
# it forks, and caps the address space it and the command may take.
LAUNCHER = """
import os, resource, subprocess, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
child = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[2], "w") as f:
    f.write(str(usage.ru_maxrss * 1024))
sys.exit(child.returncode)
"""


def run_measured(args: list[str], cwd: Path, timeout: float) -> tuple[int | None, str, str, int]:
    """(exit status, None if still running after *timeout* s; stdout,
    stderr, peak RSS in bytes) of *args*."""
    out, err, rss = cwd / "stdout", cwd / "stderr", cwd / "peak-rss"
    launch = [sys.executable, "-c", LAUNCHER, str(ADDRESS_SPACE), str(rss), *args]
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(launch, cwd=cwd, stdout=o, stderr=e, start_new_session=True)
    try:
        code: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    peak = int(rss.read_text()) if rss.exists() else 0
    return code, out.read_text(), err.read_text(), peak


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Planned:
    folder = tmp_path_factory.mktemp("hostile")
    honest = FakeExport(
        "Alicja Wróbel",
        posts=[Post(T0, "Our first meeting is on Tuesday", GROUP)],
        comments=[Comment(T0 + 100, "See you there 💙", GROUP, "Alicja Wróbel")],
    ).write(folder / "alicja.zip")
    bomb = big_comment(folder / "mallory.zip")
    deep = deep_comment(folder / "oscar.zip")
    titles = backtracking_titles(folder / "eve.zip")
    review = folder / "review.jsonl"
    args = [HEARTH, "import", "facebook", "plan", str(honest), str(bomb), str(deep), str(titles),
            "--group", "carers", "--out", str(review)]  # fmt: skip
    code, out, err, rss = run_measured(args, folder, timeout=60)
    lines = read_review(review.read_text().splitlines()[1:], str(review)) if code == 0 else []
    return Planned(code, out, err, rss, lines, bomb, deep)


def test_hostile_exports_are_left_out_naming_the_archive_and_the_entry(planned: Planned) -> None:
    assert (planned.code, planned.err) == (0, ""), "None: still running after a minute"
    said = planned.out.splitlines()
    at = said.index("Left out, nothing of them in the review: 2 exports")
    assert said[at + 1 : at + 3] == [
        f"  {planned.bomb}: '{COMMENTS}' holds a single value longer than 4 MiB "
        "(the longest Facebook writes, a post's text, is under 2 MB); not read",
        f"  {planned.deep}: '{COMMENTS}' is nested deeper than 64 levels "
        "(Facebook's own files nest about 12); not read",
    ]
    assert f"Facebook group: {GROUP} → Hearth group carers" in said
    assert "Contributors: 2 (Member 1, Member 2)" in said


def test_the_honest_history_is_all_in_the_review(planned: Planned) -> None:
    assert planned.code == 0, planned.err
    assert [(line.kind, line.text) for line in planned.lines] == [
        ("post", "Our first meeting is on Tuesday"),
        ("comment", "See you there 💙"),
        ("comment", "a comment, titled oddly"),
    ]
    assert planned.lines[1].thread_of == planned.lines[0].id


def test_a_title_built_to_backtrack_is_read_at_once(planned: Planned) -> None:
    # Read within the minute the command had (the old expressions would
    # have taken hours): the comment is kept, as a message of its own, its
    # post unknown.
    assert planned.code == 0, planned.err
    odd = planned.lines[2]
    assert (odd.text, odd.thread_of, odd.confidence) == ("a comment, titled oddly", None, 0.0)


def test_the_plan_stays_small_in_memory(planned: Planned) -> None:
    assert planned.code == 0, planned.err
    assert planned.peak_rss < RSS_BOUND, f"peak RSS {planned.peak_rss / MiB:.0f} MiB"
