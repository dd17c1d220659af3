"""Shared helpers for the benchmarks: timing, peak memory, table printing."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Wall seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pasted as is into benchmarks/README.md)."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
