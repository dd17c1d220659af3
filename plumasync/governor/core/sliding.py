"""The sliding log of admissions, sans-I/O: never more than ``allowed`` admissions in any window-long
interval, whatever the alignment of the server's own windows.

A headerless group (and a cold group's probe) keeps the times of its admissions in a sorted list;
these functions are the only ones that read or change it.
"""

from __future__ import annotations

import bisect
import itertools

__all__ = ["merge", "next_opening", "record", "sorted_times"]


def sorted_times(times: list[float]) -> list[float]:
    """``times`` sorted (a log read back from a store included): the other functions rely on it."""
    return times if all(a <= b for a, b in itertools.pairwise(times)) else sorted(times)


def record(times: list[float], now: float, keep: int) -> None:
    """Add an admission at ``now`` and keep only the latest ``keep`` (older ones can no longer block)."""
    if times and now < times[-1]:
        bisect.insort(times, now)  # the clock stepped back: keep the log sorted
    else:
        times.append(now)
    if len(times) > keep:
        del times[: len(times) - keep]


def next_opening(times: list[float], now: float, window: float, margin: float, allowed: int) -> float | None:
    """None when one more admission fits now; else when it will (the blocking admission leaves the interval).

    Admissions older than the interval are trimmed first (by bisection: the log is sorted).
    """
    expired = bisect.bisect_right(times, now - window - margin)
    if expired:
        del times[:expired]
    if len(times) < allowed:
        return None
    return times[len(times) - allowed] + window + margin


def merge(times: list[float], more: list[float], keep: int) -> list[float]:
    """Both logs in one, sorted, the latest ``keep``."""
    return sorted([*times, *more])[-keep:]
