"""What the Redis store does while Redis is unreachable: a bounded in-process share of each budget.

A connection error or timeout never crashes the caller and never loops on Redis:

1. The store logs **one WARNING** (per outage) on the ``plumasync`` logger and falls back to an
   in-process budget (a :class:`~plumasync.governor.stores.base.MemoryStore`) of ``limit // expected_workers``
   requests per window for each group, starting from the last state it read from Redis: the share of
   what that window had left (or, without headers, the admissions already logged) is all it may spend
   until the server's reset (``expected_workers`` defaults to 4; set it in the URL,
   ``redis://host:6379/0?expected_workers=8``, or the constructor).  The fallback ignores the
   server's ``Remaining`` (every worker would believe it may spend all of it) and holds each group to
   a sliding log of that share: with at most ``expected_workers`` processes, the account never sees
   more than ``limit`` requests in any window.  A 429 still pauses the group for a window.
2. Redis is retried at most every ``fallback_retry`` clock seconds (default 5; URL
   ``?fallback_retry=5``), by one task at a time; everybody else keeps using the fallback meanwhile.
3. When Redis answers again the store switches back (logged at WARNING) and first tells Redis about the
   requests admitted during the outage (they are subtracted from the window's ``Remaining``, or added
   to the sliding log), so the shared budget does not admit them twice.

Permits granted by the fallback are observed and cancelled in the fallback; their response headers
are passed on to Redis too when it is back.  Shared values and leases fall back to the process as well
(each process then authenticates for itself, within the auth group's share).

Where the fallback starts: from the last state this process read from Redis, not from an empty budget.
If that window had ``r`` requests left, this process may spend ``r // expected_workers`` of them until
the server's reset (the places already spent sit in the sliding log and leave it exactly at the reset);
a headerless group keeps the admissions already logged.
"""

from __future__ import annotations

import math

from ..clock import Clock
from ..core.model import GroupKey, Mode, Policy
from ..core.state import GroupState
from .base import MemoryStore

__all__ = ["FallbackBudget", "RedisDown", "fallback_policy", "seed_from"]


class RedisDown(Exception):
    """Internal to the Redis store: Redis is unreachable (or not retried yet); use the fallback."""


def fallback_policy(policy: Policy, workers: int) -> Policy:
    """The share of ``policy`` one of ``workers`` processes may use while Redis is unreachable."""
    limit = max(1, policy.limit // workers)
    reserve = min(max(0, limit - 1), math.ceil(policy.reserve / workers))
    return Policy(limit=limit, window=policy.window, reserve=reserve, margin=policy.margin)


def seed_from(last: GroupState, fb: Policy, *, now: float, workers: int, margin: float) -> GroupState:
    """The fallback's starting state: a sliding log of ``fb.limit`` already holding what is spent."""
    seed = GroupState.new(fb)
    seed.mode = Mode.HEADERLESS.value
    seed.window = last.window if last.learned else fb.window
    if last.mode == Mode.HEADERS.value and last.remaining is not None and last.reset_local is not None \
            and last.reset_local + margin > now:
        left = max(0, last.remaining - len(last.permits)) // workers
        # Spent places leave the sliding log exactly at the server's reset.
        seed.admission_times = [last.reset_local - seed.window] * max(0, fb.limit - left)
    elif last.mode == Mode.HEADERLESS.value:
        seed.admission_times = sorted(t for t in last.admission_times if t > now - last.window)[-fb.limit:]
    return seed


class FallbackBudget:
    """This process's share of every group while Redis is unreachable: a :class:`MemoryStore` seeded once
    per outage from the last state read from Redis, and what it admitted that Redis has not heard of."""

    def __init__(self, clock: Clock, workers: int) -> None:
        self.clock = clock
        self.workers = workers
        self.store = MemoryStore(clock)
        #: Permits this fallback granted: their outcome is recorded here too.
        self.permits: set[str] = set()
        self._policies: dict[GroupKey, Policy] = {}
        self._absorbed: dict[GroupKey, float] = {}
        self._seeded: set[GroupKey] = set()

    def new_outage(self) -> None:
        """Each outage starts from the last state read before it."""
        self._seeded.clear()

    def policy(self, key: GroupKey, policy: Policy, last: GroupState | None) -> Policy:
        """The fallback's policy for ``key``, its state seeded (once per outage) from ``last``."""
        fb = self._policies.get(key)
        if fb is None:
            fb = self._policies[key] = fallback_policy(policy, self.workers)
        if key in self._seeded:
            return fb
        self._seeded.add(key)
        if last is None or self.store.state(key) is not None:
            return fb
        seed = seed_from(last, fb, now=self.clock.now(), workers=self.workers, margin=policy.margin)
        self.store.put(key, seed)
        self._absorbed[key] = max([*seed.admission_times, self._absorbed.get(key, -math.inf)])  # not Redis' news
        return fb

    def unabsorbed(self) -> list[tuple[GroupKey, Policy, list[float]]]:
        """Per group, the admissions made here that Redis has not been told of yet."""
        out = []
        for key, policy in list(self._policies.items()):
            state = self.store.state(key)
            if state is None:
                continue
            done = self._absorbed.get(key, -math.inf)
            now = self.clock.now()
            times = [t for t in state.admission_times if t > max(done, now - policy.window - policy.margin)]
            if times:
                out.append((key, policy, times))
        return out

    def absorbed(self, key: GroupKey, times: list[float]) -> None:
        """Redis now counts ``times``."""
        self._absorbed[key] = max(times)
