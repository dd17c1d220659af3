"""The fixed-window arithmetic: the least time a job can take under a budget (T_min)."""

from __future__ import annotations

import math

__all__ = ["minimum_duration", "until_reset", "windows_needed"]


def windows_needed(requests: int, *, remaining_now: int, per_window: int) -> int:
    """How many window resets ``requests`` requests must wait for (0 when they fit now)."""
    if per_window <= 0:
        raise ValueError("per_window must be positive")
    left = requests - max(0, remaining_now)
    return 0 if left <= 0 else math.ceil(left / per_window)


def minimum_duration(requests: int, *, remaining_now: int, per_window: int, window: float,
                     until_reset: float) -> float:
    """T_min: seconds the window arithmetic forces on a job of ``requests`` requests.

    ``remaining_now`` requests fit in the current window, which resets in ``until_reset`` seconds; each
    later window admits ``per_window``.  A job that fits now needs no wait at all; otherwise it ends when
    the last window it needs opens (its requests then take no time in this model).
    """
    resets = windows_needed(requests, remaining_now=remaining_now, per_window=per_window)
    return 0.0 if resets == 0 else max(0.0, until_reset) + (resets - 1) * window


def until_reset(now: float, window: float) -> float:
    """Seconds from ``now`` (server time) to the end of its fixed, clock-aligned window."""
    return (math.floor(now / window) + 1) * window - now
