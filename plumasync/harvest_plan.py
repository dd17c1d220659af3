"""The forecast of a harvest: what it will cost, when it will finish, and what retention takes first.

A pure core: given the ascending start times of the calls still to fetch, the clock, the retention and
the governor's window arithmetic (``eta(k)``: the least clock seconds until the k-th next request may be
sent, from :func:`plumasync.governor.core.arithmetic.minimum_duration` and the budget's current state), it
walks the calls in the order the harvest fetches them.  A call whose log is gone by its turn costs
nothing (the harvest skips it) and is counted as expiring; the others each cost one calls/log request.
No request is spent here; :meth:`plumasync.harvest.Harvest.plan` spends only the listing pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import attrs

from .governor.core.model import GroupSnapshot, Policy, bulk_reserve

__all__ = ["HarvestPlan", "budget_now", "forecast", "plan_of"]


@attrs.frozen
class HarvestPlan:
    """A harvest's forecast (:meth:`Harvest.plan`, ``plumasync harvest --plan``).

    ``listed``: calls the server lists for the period; ``stored``: already in the sink (no request);
    ``pages``: listing requests spent to learn this; ``requests``: calls/log requests still needed;
    ``expiring``: logs retention deletes before their turn at this budget, ``expiring_from`` the moment
    the first goes (None: none); ``finish``: when the last request can be sent, from the window
    arithmetic (``finish_in`` seconds from ``now``); ``remaining``/``per_window``/``window``: the budget
    the forecast started from.
    """

    listed: int
    stored: int
    pages: int
    requests: int
    expiring: int
    expiring_from: float | None
    finish: float
    finish_in: float
    now: float
    remaining: int
    per_window: int
    window: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, times as ISO 8601 UTC."""
        data = attrs.asdict(self)
        for key in ("finish", "expiring_from", "now"):
            data[key] = None if data[key] is None else iso(data[key])
        return data

    def describe(self) -> str:
        """One or two lines for people."""
        text = (f"Plan: {self.listed} calls listed ({self.pages} listing request(s) spent), {self.stored} "
                f"already stored, {self.requests} detail request(s) needed; budget {self.remaining} left "
                f"now, {self.per_window} per {self.window:g} s window; finishes at {iso(self.finish)} "
                f"(in {self.finish_in:.0f} s).")
        if self.expiring:
            assert self.expiring_from is not None
            text += (f"\n{self.expiring} log(s) will expire before they can be fetched at this budget, "
                     f"from {iso(self.expiring_from)}.")
        return text


def iso(moment: float) -> str:
    """Unix seconds as ISO 8601 UTC (``...Z``)."""
    text = datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def forecast(starts: Iterable[int], *, now: float, retention: float, eta: Callable[[int], float]
             ) -> tuple[int, int, float | None, float]:
    """``(requests, expiring, expiring_from, finish_in)`` for calls fetched in the order of ``starts``.

    Streams ``starts`` (O(1) memory).  The k-th request is sent ``eta(k)`` seconds from ``now`` at the
    earliest; a call whose ``start + retention`` comes before its request is skipped and costs nothing.
    """
    requests, expiring, first_expiry, finish_in = 0, 0, None, 0.0
    for start in starts:
        wait = eta(requests + 1)
        if start + retention <= now + wait:
            expiring += 1
            if first_expiry is None:
                first_expiry = max(now, float(start + retention))
            continue
        requests += 1
        finish_in = wait
    return requests, expiring, first_expiry, finish_in


def budget_now(policy: Policy, snap: GroupSnapshot | None) -> tuple[int, int, float]:
    """``(remaining now, per window, window seconds)`` of a group for the bulk lane, from its policy and
    the state the governor knows without I/O (``snap`` None, a fresh group: a whole window's worth)."""
    limit = snap.limit if snap else policy.limit
    per_window = max(1, limit - bulk_reserve(policy, limit))
    if snap is None or snap.available is None:
        return per_window, per_window, policy.window
    return max(0, snap.available - (limit - per_window)), per_window, snap.window


def plan_of(starts: Iterable[int], *, listed: int, stored: int, pages: int, now: float,
            budget: tuple[int, int, float], eta: Callable[[int], float], retention: float) -> HarvestPlan:
    """The :class:`HarvestPlan` of the calls still to fetch (``starts`` ascending, as they are fetched).

    ``budget``: :func:`budget_now`'s answer; ``eta(k)``: the bulk lane's window arithmetic."""
    remaining, per_window, window = budget
    requests, expiring, expiring_from, finish_in = forecast(starts, now=now, retention=retention, eta=eta)
    return HarvestPlan(listed=listed, stored=stored, pages=pages, requests=requests, expiring=expiring,
                       expiring_from=expiring_from, finish=now + finish_in, finish_in=finish_in, now=now,
                       remaining=remaining, per_window=per_window, window=window)
