"""Weighing the server's word, sans-I/O: which rate-limit facts of one response a group may believe.

:class:`~plumasync.governor.core.state.GroupState` believes the server over its own model (a window it
rolled by itself, a window length it was configured with), but not blindly: one response whose
``Reset`` lies a day ahead or in the past, or whose ``Date`` is an hour off, must not pause a group
for a day nor let it burst past its budget.  The rules, one function each:

* :func:`reset_kind` — is a ``Reset`` usable (``OK``), beyond one window (``FAR``: believed only once a
  second response agrees) or not after its own ``Date`` (``PAST``: unusable)?
* :func:`date_contradicts` — does a ``Date`` contradict the clock-offset estimate by more than
  :data:`DATE_TOLERANCE`?  (The estimate's bounds are exact, so latency never contradicts it.)
* :func:`fold_date` — the offset estimate after one more ``Date``: a lone contradicting one is doubted,
  a second one agreeing with it restarts the estimate.
* :func:`learn_window` — the server's window length, from two successive distinct ``Reset`` values.
* :func:`pause_after_429` — how long a 429 pauses its group: its ``Retry-After``, else its own ``Reset``
  through its own ``Date``, else one window; never blind for longer than the horizon.
"""

from __future__ import annotations

import enum
import logging

__all__ = [
    "DATE_TOLERANCE",
    "ResetKind",
    "date_contradicts",
    "far_threshold",
    "fold_date",
    "horizon",
    "learn_window",
    "pause_after_429",
    "reset_kind",
]

log = logging.getLogger("plumasync")

#: Seconds by which a ``Date`` may contradict the offset estimate before it is doubted.
DATE_TOLERANCE = 2.0


class ResetKind(str, enum.Enum):
    """How a response's ``Reset`` relates to its own ``Date`` (server time)."""

    OK = "ok"
    FAR = "far"
    PAST = "past"


def horizon(configured: float, window: float) -> float:
    """The longest blind sleep: about twice the larger of the configured and the learned window."""
    return 2.0 * max(configured, window)


def far_threshold(window: float) -> float:
    """A fixed-window server's ``Reset`` is at most one window after its ``Date``; allow rounding."""
    return window * 1.05 + 2.0


def reset_kind(reset: float, server_now: float, window: float) -> ResetKind:
    """Classify ``reset`` against ``server_now`` (the response's ``Date`` or our estimate of it)."""
    if reset <= server_now:
        return ResetKind.PAST  # the window it names ended before the answer was written
    if reset - server_now > far_threshold(window):
        return ResetKind.FAR
    return ResetKind.OK


def date_contradicts(offset: float, admitted_at: float, received_at: float, date: float) -> bool:
    """True when ``date`` says the server's clock moved by more than :data:`DATE_TOLERANCE`.

    ``date - received_at`` is a lower bound of the offset and ``date + 1 - admitted_at`` an upper bound
    (``Date`` is floored and written between sending and receiving), so an honest server never falls
    outside ``offset`` ± tolerance, whatever the latency.
    """
    low, high = date - received_at, date + 1.0 - admitted_at
    return low > offset + DATE_TOLERANCE or high < offset - DATE_TOLERANCE


def fold_date(offset: float | None, suspect: float | None, admitted_at: float, received_at: float,
              date: float | None) -> tuple[float | None, float | None, bool]:
    """Fold one response's ``Date`` into the offset estimate ``server - local``.

    Returns the new estimate, the offset a doubted ``Date`` implied (kept until a second one agrees or
    not), and whether ``date`` was believed.  Without a ``Date`` the local clock is trusted.
    """
    if date is None:
        return (0.0 if offset is None else offset), suspect, False
    low = date - received_at  # Date was floored and generated before we received it
    if offset is not None and date_contradicts(offset, admitted_at, received_at, date):
        if suspect is None or (suspect > offset) != (low > offset):
            log.debug("doubting a Date %+.0f s off the server clock as estimated", low - offset)
            return offset, low, False
        offset = None  # a second Date agrees: the server's clock really moved
    high = date + 1.0 - admitted_at  # ... and after we sent the request
    if offset is None or high < offset:
        return low, None, True  # first observation, or the server's clock moved: start again
    return max(offset, low), None, True


def learn_window(previous: float | None, reset: float, window: float, learned: bool,
                 server_now: float) -> float | None:
    """The window length two distinct believed Resets show, or None when they teach nothing new.

    Resets of a fixed-window server differ by whole windows: a difference of about one window (or less
    than the one we hold) is the window; a whole multiple of it (idle windows in between) confirms it;
    anything else means the server changed its window.  A Reset further from its Date than from the
    previous Reset is not a fixed window's (a server answering "now + window" moves it every second).
    """
    if previous is None:
        return None
    diff = abs(reset - previous)
    if diff < 1.0 or reset - server_now > diff + 1.0:
        return None  # the same Reset (Reset is a whole second), or not a fixed window's
    if not learned or diff < window * 1.5:
        return diff if abs(diff - window) >= 0.5 or not learned else None
    multiple = round(diff / window)
    return None if abs(diff - multiple * window) <= 1.0 else diff


def pause_after_429(*, now: float, window: float, cap: float, margin: float, retry_after: float | None,
                    retry_at: float | None, reset: float | None, date: float | None, server_now: float,
                    believed: bool) -> float:
    """Local time until which a 429 pauses its group.

    ``Retry-After`` first (seconds, or an HTTP-date read through the response's ``Date``), then the
    response's own ``Reset`` read through its own ``Date`` (``server_now`` when it had none); without
    either, one ``window`` (learned, else configured).  A wait longer than one window is taken only from a
    ``Reset`` the group believes (``believed``: agreed with by an earlier response); any other value is
    cut to one window, and a ``Retry-After`` to ``cap`` (after which one probe checks).
    """
    if retry_after is not None:
        return now + min(max(0.0, retry_after), cap)
    if retry_at is not None:
        return now + min(max(0.0, retry_at - (date if date is not None else server_now)), cap)
    if reset is not None:
        until = reset - (date if date is not None else server_now)
        if until > 0:
            return now + (until if believed or until <= far_threshold(window) else window) + margin
    return now + window
