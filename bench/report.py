"""The one report table every bench prints: each figure beside its floor
from the same run, their ratio, the target and whether it was met.

Only ``console`` and ``print_report`` touch the terminal: a bench builds its
rows from its results, so the text a reader sees can be checked with canned
figures. The final JSON line stays ``harness.run_bench``'s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Row:
    """One figure. Cells are text: each bench keeps its own units and
    precision (0.035 ms and 1842 ms do not share a format)."""

    figure: str
    value: str
    floor: str = ""
    ratio: str = ""
    target: str = ""
    # None when there is no target, or one only a reader can judge ("flat as
    # it grows"): a mark is printed only for a threshold the row's own
    # figures decide.
    met: bool | None = None


def ratio(ours: float, floor: float | None) -> str:
    """*ours* ÷ *floor*, as printed; "n/a" rather than a division by zero
    when a series produced no floor."""
    return f"{ours / floor:.2f}×" if floor else "n/a"


def mark(met: bool | None) -> str:
    # "NO" in capitals: the one cell a reader must not miss.
    return "" if met is None else "yes" if met else "NO"


def table(title: str, rows: Iterable[Row], value: str = "Hearth", floor: str = "Floor") -> Table:
    """Figure | *value* | *floor* | Ratio | Target | Met, leaving out the
    columns no row fills (a bench with no targets prints no empty ones)."""
    cells = [(r.figure, r.value, r.floor, r.ratio, r.target, mark(r.met)) for r in rows]
    names = ("Figure", value, floor, "Ratio", "Target", "Met")
    keep = [i for i in range(len(names)) if i < 2 or any(c[i] for c in cells)]
    out = Table(title=title)
    for i in keep:
        out.add_column(names[i], justify="left" if i == 0 else "right")
    for c in cells:
        # Text, not markup: a figure's name is data ("[1]" must print as is).
        out.add_row(*(Text(c[i]) for i in keep))
    return out


def console() -> Console:
    """Standard output, at least 110 columns even when piped (a log file or
    CI reports 80), so that each row stays on one line."""
    return Console(width=max(Console().width, 110))


def print_report(
    title: str,
    rows: Iterable[Row],
    notes: Iterable[str] = (),
    *,
    value: str = "Hearth",
    floor: str = "Floor",
) -> None:
    """The table, then each note indented beneath it: how the floors were
    made, counts that are not figures."""
    out = console()
    out.print(table(title, rows, value, floor))
    for note in notes:
        out.print(Text("  " + note))
