"""Formatting for people: durations, clock times, and tables that never cut a value."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["fmt_duration", "fmt_local", "print_table"]


def fmt_duration(seconds: float | None) -> str:
    """``0.8 s``, ``12 s``, ``4 min 05 s``, ``2 h 13 min``; ``—`` for unknown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def fmt_local(ts: float | None, now: float) -> str:
    """A Unix time as local clock time plus the time to go: ``14:45:01 (in 6 min 40 s)``."""
    if ts is None:
        return "—"
    when = datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S")
    delta = ts - now
    return f"{when} (in {fmt_duration(delta)})" if delta >= 0 else f"{when} ({fmt_duration(-delta)} ago)"


def _longest_word(cell: object) -> int:
    plain = cell.plain if isinstance(cell, Text) else str(cell)
    return max((len(word) for line in plain.splitlines() for word in line.split()), default=0)


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` so that no word is cut: dates stay whole and headers wrap only between words.

    Rich fits a table to the console by wrapping cells and, when that is not enough, by folding words or
    eliding them (``2026-11-…``).  Here every column is at least as wide as its longest word (so rich only
    wraps at spaces), and a table that still cannot fit is printed wider than the console (a terminal
    wraps the long lines; a pipe or a file keeps them intact) rather than cut.
    """
    for column in table.columns:
        words = [_longest_word(column.header), *(_longest_word(cell) for cell in column.cells)]
        column.min_width = max(column.min_width or 0, *words)
        column.overflow = "fold"  # never "…": a value too long for the width is wrapped, not lost
    need = Measurement.get(console, console.options, table).minimum
    console.print(table, width=max(console.width, need), crop=False)
