"""The benches' report table, as a reader of a bench's output sees it.

No bench runs here: the helper, and each bench's ``report``, are fed canned
results shaped like a run's, and the printed rows are read back cell by
cell. The figures expected are those the benches printed before they shared
the helper (copied from their old output), with the deliberate changes
bench/README.md describes: one set of column names, a Met mark wherever the
target is a threshold, and "n/a" for a ratio with no floor.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from bench.report import Row, print_report, ratio


@pytest.fixture(autouse=True)
def wide_plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Wide enough that no row wraps (each printed line is then one row), and
    # no colour codes between the cells.
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def header(text: str) -> tuple[str, ...]:
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return tuple(cell.strip() for cell in line.split("┃")[1:-1])


def rows(text: str) -> list[tuple[str, ...]]:
    """The first table's body rows, cell by cell."""
    lines = text.splitlines()
    body = lines[: next(i for i, line in enumerate(lines) if line.startswith("└"))]
    return [
        tuple(cell.strip() for cell in line.split("│")[1:-1])
        for line in body
        if line.startswith("│")
    ]


def test_each_row_shows_figure_floor_ratio_target_and_mark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_report(
        "Round trips (2026-12-08)",
        [
            Row("!ping, median", "88.8 ms", "87.7 ms", ratio(88.8, 87.7), "≤ 1.5× floor", True),
            Row("!ping, p90", "190.0 ms", "101.2 ms", ratio(190.0, 101.2), "≤ 1.5× floor", False),
            Row("!ping, slowest", "239.3 ms"),
        ],
        ["Floor: member B echoes A."],
        value="Bot",
    )
    assert [line.rstrip() for line in capsys.readouterr().out.splitlines()] == [
        "                      Round trips (2026-12-08)",
        "┏━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━┓",
        "┃ Figure         ┃      Bot ┃    Floor ┃ Ratio ┃       Target ┃ Met ┃",
        "┡━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━┩",
        "│ !ping, median  │  88.8 ms │  87.7 ms │ 1.01× │ ≤ 1.5× floor │ yes │",
        "│ !ping, p90     │ 190.0 ms │ 101.2 ms │ 1.88× │ ≤ 1.5× floor │  NO │",
        "│ !ping, slowest │ 239.3 ms │          │       │              │     │",
        "└────────────────┴──────────┴──────────┴───────┴──────────────┴─────┘",
        "  Floor: member B echoes A.",
    ]


def test_columns_no_row_fills_are_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    print_report("Flood", [Row("Muted after", "1.22 s", "0.42 s", ratio(1.22, 0.42))])
    out = capsys.readouterr().out
    assert header(out) == ("Figure", "Hearth", "Floor", "Ratio")
    assert rows(out) == [("Muted after", "1.22 s", "0.42 s", "2.90×")]


def test_a_ratio_without_a_floor_is_not_a_number() -> None:
    assert ratio(2500.0, 0.0) == "n/a"
    assert ratio(1.0, None) == "n/a"
    assert ratio(46.0, 1.0) == "46.00×"


def test_names_and_notes_print_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    # Rich would read "[bold]" as markup and drop it; a figure's name is data.
    print_report("T", [Row("[bold]x[/bold] ([1])", "1 ms")], ["see [1]"])
    out = capsys.readouterr().out
    assert rows(out) == [("[bold]x[/bold] ([1])", "1 ms")]
    assert out.splitlines()[-1] == "  see [1]"


V = {"date": "2026-12-08", "cpus": 2, "synapse": "1.163.2", "nio": "0.26.0"}

# bench module, canned results, the printed header and rows.
CASES: list[tuple[str, dict[str, Any], tuple[str, ...], list[tuple[str, ...]]]] = [
    (
        "bot",
        V | {"pings": 200, "ping_bot_median_ms": 88.799, "ping_floor_median_ms": 87.711,
             "ping_bot_p90_ms": 106.786, "ping_floor_p90_ms": 101.229, "rss_first_mb": 77.688,
             "rss_nio_mb": 50.34, "rss_restart_mb": 176.961, "start_first_s": 1.678,
             "start_restart_s": 1.13, "import_floor_s": 0.819,
             "marks_first_s": {"logged in": 1.328}, "marks_restart_s": {"logged in": 0.925}},
        ("Figure", "Hearth bot", "Floor / reference", "Ratio", "Target", "Met"),
        [
            ("!ping round trip, median", "88.8 ms", "87.7 ms", "1.01×", "≤ 1.5× floor", "yes"),
            ("!ping round trip, p90", "106.8 ms", "101.2 ms", "1.05×", "", ""),
            ("RSS after start-up, fresh state", "77.7 MB", "50.3 MB", "1.54×", "< 150 MB", "yes"),
            ("RSS after start-up, restart", "177.0 MB", "50.3 MB", "3.52×", "< 150 MB", "NO"),
            ("Start → first reply, fresh state", "1.7 s", "0.8 s", "2.05×", "< 3 s", "yes"),
            ("Start → first reply, restart", "1.1 s", "0.8 s", "1.38×", "< 3 s", "yes"),
        ],
    ),
    (
        "bridge",
        {"items": 50000, "small": 12500, "apply_eps": 20.02, "floor_eps": 18.8, "ratio": 1.065,
         "apply_large_mb": 88.2, "python_mb": 82.1, "apply_small_mb": 87.9,
         "plan_large_mb": 60.4, "plan_small_mb": 59.8, "plan_large_s": 5.01,
         "lines_large": 50000, "apply_large_s": 2502.3, "floor_s": 2664.1,
         "floor_events": 50000},
        ("Figure", "Hearth", "Floor", "Ratio", "Target", "Met"),
        [
            ("Import speed", "20 ev/s", "19 ev/s (plain AS sends)", "1.06×", "≥ 0.7× floor",
             "yes"),
            ("Peak memory, apply", "88 MB", "82 MB (Python, modules loaded)", "", "< 300 MB",
             "yes"),
            ("…at 12500 items", "88 MB", "", "", "flat as it grows", ""),
            ("Peak memory, plan", "60 MB", "60 MB (at 12500 items)", "",
             "< 300 MB, flat as it grows", ""),
        ],
    ),
    (
        "bridge",  # --plan-only
        {"items": 50000, "small": 12500, "plan_large_mb": 60.4, "plan_small_mb": 59.8,
         "plan_large_s": 5.01, "lines_large": 50000},
        ("Figure", "Hearth", "Floor", "Target"),
        [("Peak memory, plan", "60 MB", "60 MB (at 12500 items)", "< 300 MB, flat as it grows")],
    ),
    (
        "load",
        V | {"pings": 100, "loaded_median_ms": 316.5, "floor_median_ms": 63.6,
             "loaded_p90_ms": 382.8, "floor_p90_ms": 77.0, "quiet_median_ms": 63.6,
             "quiet_p90_ms": 102.6, "floor_loaded_median_ms": 313.1, "cpu_share_synapse": 0.91,
             "cpu_share_bot": 0.08, "cpu_share_chatter": 0.09, "cpu_share_bench": 0.2,
             "background_sent": 775, "background_rate": 25.8},
        ("Figure", "Bot", "Quiet floor", "Ratio", "Target", "Met"),
        [
            ("!ping under load, median", "316.5 ms", "63.6 ms", "4.98×", "≤ 1.2× floor", "NO"),
            ("!ping under load, p90", "382.8 ms", "77.0 ms", "4.97×", "≤ 1.2× floor", "NO"),
            ("!ping, no load, median", "63.6 ms", "63.6 ms", "1.00×", "", ""),
            ("!ping, no load, p90", "102.6 ms", "77.0 ms", "1.33×", "", ""),
            ("!ping under load vs floor under load, median", "316.5 ms", "313.1 ms", "1.01×",
             "", ""),
        ],
    ),
    (
        "meetings",
        V | {"rooms": 200, "per_room": 50, "firing": 600, "window_s": 60.0,
             "delivered_median_s": 0.0123, "floor_median_s": 0.0081, "delivered_p99_s": 0.4512,
             "floor_p99_s": 0.0902, "ran_median_s": 0.0051, "ran_p99_s": 0.02, "burst": 100,
             "burst_delivered_median_s": 1.2, "burst_floor_median_s": 0.9,
             "burst_delivered_max_s": 2.5, "burst_floor_max_s": 0.0, "idle_cpu_s": 0.61,
             "idle_floor_cpu_s": 0.26, "idle_empty_cpu_s": 0.3, "idle_nio_cpu_s": 1.2,
             "start_full_s": 0.8, "start_empty_s": 0.5, "delivered_n": 500,
             "burst_delivered_n": 100, "ran_n": 500, "burst_ran_n": 100, "floor_n": 600,
             "fill_s": 3.21},
        ("Figure", "Hearth", "Floor", "Ratio", "Target", "Met"),
        [
            ("Reminder sent, lateness median", "12.3 ms", "8.1 ms (bare client)", "1.52×", "",
             ""),
            ("Reminder sent, lateness p99", "451.2 ms", "90.2 ms (bare client)", "5.00×",
             "p99 < 1 s", "yes"),
            ("Job ran, lateness median", "5.1 ms", "8.1 ms (bare send)", "0.63×", "", ""),
            ("Job ran, lateness p99", "20.0 ms", "90.2 ms (bare send)", "0.22×", "", ""),
            ("A burst of 100 due at once, median", "1200.0 ms", "900.0 ms (bare client)",
             "1.33×", "", ""),
            ("…the last of the burst sent", "2500.0 ms", "0.0 ms (bare client)", "n/a", "", ""),
            ("CPU over the idle window", "610.0 ms", "260.0 ms (idle Python)", "2.35×",
             "near idle Python", ""),
            ("…the bot with no jobs", "300.0 ms", "260.0 ms (idle Python)", "1.15×", "", ""),
            ("…against a client", "610.0 ms", "1200.0 ms (nio syncing)", "0.51×", "", ""),
            ("Start-up, to ready", "0.8 s", "0.5 s (no jobs)", "1.60×", "", ""),
        ],
    ),
    (
        "moderation",
        V | {"rate": 50.0, "seconds": 20.0, "rounds": 5, "muted_s": 2.13, "floor_s": 0.99,
             "flood_ping_ms": 398.7, "flood_pings_ms": [398.7, 532.3, 287.4, 444.9, 374.1],
             "flood_echo_ms": 420.0, "flood_echos_ms": [420.0, 500.0, 300.0, 450.0, 400.0],
             "quiet_ping_ms": 139.1, "quiet_echo_ms": 140.0, "sent": [21, 23, 23, 23, 22],
             "refused": [5, 5, 5, 5, 5]},
        ("Figure", "Hearth", "Floor", "Ratio", "Target", "Met"),
        [
            ("From a flood's start to the flooder muted (median of 5)", "2.13 s",
             "0.99 s (12th message seen)", "2.15×", "", ""),
            ("A moderator's !ping answered during a flood (median of 5)", "399 ms",
             "139 ms (quiet room, median of 9)", "2.87×", "≤ 1.5×", "NO"),
            ("The same !ping, against a member answering a member, same floods (median of 5)",
             "399 ms", "420 ms (client to client)", "0.95×", "", ""),
            ("A member answering a member: during a flood, against quiet", "420 ms",
             "140 ms (quiet room, median of 9)", "3.00×", "", ""),
        ],
    ),
    (
        "moderation",  # a flooder never muted; the pings within the target
        V | {"rate": 50.0, "seconds": 20.0, "rounds": 3, "muted_s": None, "floor_s": None,
             "flood_ping_ms": 100.0, "flood_pings_ms": [90.0, 100.0, 150.0],
             "flood_echo_ms": 80.0, "flood_echos_ms": [80.0, 70.0, 90.0],
             "quiet_ping_ms": 71.0, "quiet_echo_ms": 60.0, "sent": [25, 25, 25],
             "refused": [0, 0, 0]},
        ("Figure", "Hearth", "Floor", "Ratio", "Target", "Met"),
        [
            ("From a flood's start to the flooder muted (median of 3)", "never", "n/a", "", "",
             ""),
            ("A moderator's !ping answered during a flood (median of 3)", "100 ms",
             "71 ms (quiet room, median of 9)", "1.41×", "≤ 1.5×", "yes"),
            ("The same !ping, against a member answering a member, same floods (median of 3)",
             "100 ms", "80 ms (client to client)", "1.25×", "", ""),
            ("A member answering a member: during a flood, against quiet", "80 ms",
             "60 ms (quiet room, median of 9)", "1.33×", "", ""),
        ],
    ),
    (
        "onboarding",
        V | {"applicants": 500, "welcomed_s": 121.6, "floor_welcomed_s": 116.9,
             "approved_s": 204.2, "floor_invites_s": 79.9, "floor_sending_s": 70.0,
             "doubled": 0, "lost": 1, "rss_mb": 94.2, "rss_before_mb": 82.0,
             "register_s": 60.0, "welcome_lag_s": 61.5},
        ("Figure", "Hearth", "Floor (bare client)", "Ratio", "Target", "Met"),
        [
            ("Until every newcomer is welcomed", "121.6 s", "116.9 s", "1.04×", "", ""),
            ("Until every approval has its invites", "204.2 s", "79.9 s", "2.56×", "≤ 1.3×", "NO"),
            ("The same, against the sending alone", "204.2 s", "70.0 s", "2.92×", "", ""),
            ("Newcomers with a message doubled / lost", "0 / 1", "0", "", "", ""),
            ("RSS with all in flight (bot and bench share it)", "94 MB",
             "82 MB before the bot", "+12 MB", "", ""),
        ],
    ),
    (
        "protection",
        V | {"messages": 20000, "median_ms": 0.035, "floor_median_ms": 0.015, "p99_ms": 0.115,
             "floor_p99_ms": 0.023, "acted_on": 12011},
        ("Figure", "All protections", "Floor (typing the event)", "Target", "Met"),
        [
            ("Median", "0.035 ms", "0.015 ms", "< 0.5 ms", "yes"),
            ("99th percentile", "0.115 ms", "0.023 ms", "", ""),
        ],
    ),
    (
        "provision",
        V | {"groups": 20, "rooms_per_group": 4, "rooms_declared": 83, "min_writes": 500,
             "min_reads": 40, "prov_writes": 520, "prov_reads": 44, "prov_requests": 564,
             "prov_s": 12.3, "floor_s": 10.1, "prov_over_floor": 1.218,
             "prov_create_median_ms": 80.2, "floor_create_median_ms": 70.1,
             "prov_state_events": 900, "floor_state_events": 800, "prov_ms_per_event": 13.6,
             "floor_ms_per_event": 12.6, "synapse_cpu_prov_s": 9.1, "synapse_cpu_floor_s": 7.2,
             "noop_writes": 0, "noop_reads": 40, "min_noop_reads": 0, "noop_s": 0.52,
             "creates": 83, "puts": 300, "invites": 117, "declared_users": 5, "floor_a_s": 10.0,
             "floor_b_s": 10.2, "retries_429": 0, "synapse_429s": 0,
             "phases": {
                 run: {"by_kind": {"createRoom": {"n": 83, "s": 6.1}}, "outside_http_s": 0.3,
                       "wall_s": 12.3, "synapse_cpu_s": 9.1, "bench_cpu_s": 1.2}
                 for run in ("provision", "noop", "floor_a")
             }},
        ("Figure", "Hearth", "Minimum / floor", "Ratio", "Target", "Met"),
        [
            ("From nothing: writes", "520", "500", "1.04×", "≤ 1.2×", "yes"),
            ("From nothing: reads", "44", "40", "1.10×", "", ""),
            ("From nothing: all requests", "564", "540", "1.04×", "≤ 1.2×", "yes"),
            ("From nothing: wall time", "12.30 s", "10.10 s", "1.22×", "", ""),
            ("createRoom, median", "80.2 ms", "70.1 ms", "1.14×", "", ""),
            ("state events created", "900", "800", "1.12×", "", ""),
            ("wall time per state event", "13.6 ms", "12.6 ms", "1.08×", "", ""),
            ("Synapse CPU", "9.10 s", "7.20 s", "1.26×", "", ""),
            ("No-op re-run: writes", "0", "0", "", "= 0", "yes"),
            ("No-op re-run: reads", "40", "0", "n/a", "", ""),
            ("No-op re-run: wall time", "0.52 s", "", "", "", ""),
        ],
    ),
    (
        "scale",  # one size only, no sessions-ahead pings: no floor for the announcement
        V | {"sizes": [500], "first_500_hearth_median_ms": 1842.0,
             "first_500_element_median_ms": 2419.0, "second_500_hearth_median_ms": 62.0,
             "second_500_element_median_ms": 262.0, "first_500_ahead_median_ms": 192.0,
             "announcement_members": 1000, "loaded_ping_ms": 276.0,
             "quiet_ping_median_ms": 82.0, "warming_ping_median_ms": None,
             "warming_ping_ms": [], "sessions_made_ahead": 1001, "warming_s": 11.2,
             "announcement_ms": 627.0, "bot_rss_after_mb": 199.0, "bot_rss_before_mb": 96.0},
        ("Figure", "Hearth", "Floor", "Ratio", "Target", "Met"),
        [
            ("First message, 500 members (median)", "1842 ms", "2419 ms (Element's stack)",
             "0.76×", "≤ 1.0×", "yes"),
            ("Second message, 500 members (median)", "62 ms", "262 ms (Element's stack)",
             "0.24×", "", ""),
            ("First message, 500 members, sessions made ahead (median)", "192 ms",
             "2419 ms (Element's stack, first message)", "0.08×", "≤ 1.0×", "yes"),
            ("!ping while announcing to 1000", "276 ms", "82 ms (quiet, median)", "3.37×", "",
             ""),
            ("Sessions made ahead with 1001 devices", "11.2 s", "", "", "", ""),
            ("The announcement through the bot (1000 members, sessions made ahead)", "627 ms",
             "", "", "", ""),
            ("Bot's resident memory, every device known", "199 MB",
             "96 MB before the announcement", "", "< 150 MB", "NO"),
        ],
    ),
    (
        "scheduler",
        V | {"jobs": 10000, "window_s": 900.0, "start_ms": 41.8, "start_floor_ms": 0.9,
             "late_median_ms": 1.7, "late_floor_median_ms": 0.9, "late_p99_ms": 3.2,
             "late_floor_p99_ms": 2.2, "idle_s": 60.0, "idle_cpu_ms": 0.61,
             "idle_floor_cpu_ms": 0.26, "fired": 10000, "late_max_ms": 5.5,
             "firing_cpu_ms_per_job": 0.123, "add_ms_per_job": 0.05, "idle_loop_passes": 3},
        ("Figure", "Scheduler", "Floor", "Ratio", "Target", "Met"),
        [
            ("Start: connect, start(), next_due()", "41.800 ms", "0.900 ms", "46.44×", "< 1 s",
             "yes"),
            ("Firing lateness, median", "1.700 ms", "0.900 ms", "1.89×", "", ""),
            ("Firing lateness, p99", "3.200 ms", "2.200 ms", "1.45×", "p99 < 1 s", "yes"),
            ("CPU over 60 s idle", "0.610 ms", "0.260 ms", "2.35×", "≤ 2× floor", "NO"),
        ],
    ),
    (
        "trust",
        V | {"members": 200, "share_hearth_median_ms": 1401.0, "share_floor_median_ms": 1361.0,
             "bundle_sessions": 50, "messages": 5000, "bundle_median_ms": 29.0,
             "upload_floor_median_ms": 9.3, "bundle_bytes": 26479, "bundle_withheld": 0,
             "bundle_devices": 1},
        ("Figure", "Hearth", "Floor", "Ratio"),
        [
            ("First message, 200 members, median (floor: nio, every device)", "1401 ms",
             "1361 ms", "1.03× (+40 ms)"),
            ("History bundle, 50 sessions (5000 messages), median (floor: the upload alone)",
             "29 ms", "9 ms", "3.12× (+20 ms)"),
        ],
    ),
    (
        "adversarial",
        V | {"attacked_median_ms": 125.117, "quiet_median_ms": 106.618, "attacked_n": 23,
             "attacked_p90_ms": 205.829, "quiet_p90_ms": 121.953, "attacked_max_ms": 239.273,
             "floor_attacked_median_ms": 123.964, "quiet_n": 60, "floor_median_ms": 95.701,
             "floor_p90_ms": 116.829, "ping_every_s": 0.25, "attack_s": 11.359,
             "every_s": 0.5, "attacker_answered": 10, "attacker_commands": 10,
             "attacker_refused_sends": 0, "attacker_membership": "join",
             "cpu_share_bot": 0.055},
        ("Figure", "Bot", "Beside", "Ratio", "Target", "Met"),
        [
            ("!ping under attack, median (n=23)", "125.1 ms", "106.6 ms (quiet)", "1.17×",
             "≤ 1.5× quiet", "yes"),
            ("!ping under attack, p90", "205.8 ms", "122.0 ms (quiet)", "1.69×", "", ""),
            ("!ping under attack, slowest", "239.3 ms", "", "", "", ""),
            ("!ping under attack vs floor under attack, median", "125.1 ms",
             "124.0 ms (client floor)", "1.01×", "", ""),
            ("!ping, quiet, median (n=60)", "106.6 ms", "95.7 ms (client floor)", "1.11×", "",
             ""),
            ("!ping, quiet, p90 (n=60)", "122.0 ms", "116.8 ms (client floor)", "1.04×", "",
             ""),
        ],
    ),
    (
        "first_hour",
        V | {"rounds": 3, "element_s": [5.7, 6.9, 7.1], "js_s": [2.0, 2.2, 2.5],
             "element_median_s": 6.9, "js_median_s": 2.2},
        ("Figure", "Element Web", "js-sdk (floor)", "Ratio"),
        [("Registration complete → the welcome readable (median)", "6.9 s", "2.2 s", "3.14×")],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bench", "results", "columns", "expected"),
    CASES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)],
)
def test_each_bench_prints_its_figures(
    capsys: pytest.CaptureFixture[str],
    bench: str,
    results: dict[str, Any],
    columns: tuple[str, ...],
    expected: list[tuple[str, ...]],
) -> None:
    importlib.import_module(f"bench.{bench}_figures").report(results)
    out = capsys.readouterr().out
    assert header(out) == columns
    assert rows(out) == expected


def test_every_bench_that_prints_a_report_is_checked() -> None:
    benches = Path(__file__).resolve().parents[2] / "bench"
    using = {
        path.stem.removesuffix("_figures")
        for path in benches.glob("*_figures.py")
        if "from bench.report import" in path.read_text(encoding="utf-8")
    }
    assert len(using) == 13
    assert {case[0] for case in CASES} == using
