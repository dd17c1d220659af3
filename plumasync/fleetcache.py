"""Cached VoiceTrends results shared by a fleet of workers: one upstream request per entry, fleet-wide.

Each entry is one shared value in the client's store (memory, SQLite or Redis): the response body with
the time it was fetched and the time it stops being fresh.  It is kept past its freshness (for
``CachePolicy.keep_stale`` seconds), so that a :class:`~plumasync.StalePolicy` can answer with it when
a fresh result cannot be had in time.

**Single-flight across processes and hosts.**  In-process coalescing
(:class:`~plumasync.singleflight.SingleFlight`) stays in front, so one process makes one attempt per
entry.  That attempt first takes a short lease on the entry in the store (:meth:`Store.claim`, atomic on
every store).  The worker that gets it fetches, renewing the lease while its request runs (waiting for
the budget included); the others poll the store for the entry, backing off from 10 ms to 200 ms, instead
of asking upstream.  A holder that dies stops renewing: its lease expires within :data:`LEASE_TTL`
seconds and exactly one waiter (the next to claim it) fetches instead.  A waiter whose ``max_wait`` runs
out first sends its own request, admitted only if the budget allows it at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

import anyio

from .cachestats import FleetCounters
from .governor.clock import Clock
from .governor.stores.base import Store

__all__ = ["LEASE_TTL", "Entry", "FleetCache"]

log = logging.getLogger("plumasync")

R = TypeVar("R")

#: Clock seconds a fetching worker's lease lasts unless renewed: how soon a dead holder is replaced.
LEASE_TTL = 5.0
#: The holder renews its lease this often while its request runs.
RENEW_EVERY = LEASE_TTL / 4
#: A waiter's first and longest pause (clock seconds) between two looks at the store.
POLL = (0.01, 0.2)


class Entry(NamedTuple):
    """One cached result: the body as received, when it was fetched and until when it is fresh."""

    body: bytes
    fetched_at: float
    fresh_until: float

    def encode(self) -> bytes:
        """The stored form: a header line with both times, then the body as received."""
        return f"{self.fetched_at!r} {self.fresh_until!r}\n".encode() + self.body

    @classmethod
    def decode(cls, raw: bytes | None) -> Entry | None:
        """The entry stored as ``raw``, or None (absent, or not an entry: treated as a miss)."""
        if raw is None:
            return None
        head, _, body = raw.partition(b"\n")
        try:
            fetched, fresh = head.split(b" ")
            return cls(body, float(fetched), float(fresh))
        except ValueError:
            log.debug("ignoring an unreadable cache entry")
            return None


#: Does an entry found while waiting answer the call?  (entry, now) -> bool.
Accept = Callable[[Entry, float], bool]
#: The upstream fetch, given the ``max_wait`` left; it stores the entry itself.
Fetch = Callable[[float | None], Awaitable[R]]


class FleetCache:
    """Entries and fill leases in ``store``; ``counters`` counts results served by another worker."""

    def __init__(self, store: Store, clock: Clock, counters: FleetCounters) -> None:
        self.store = store
        self.clock = clock
        self.counters = counters

    async def read(self, name: str) -> Entry | None:
        """The entry ``name``, fresh or kept stale, or None.  One store read; costs no request."""
        return Entry.decode(await self.store.get_value(name))

    async def write(self, name: str, body: bytes, fetched_at: float, fresh: float, keep: float) -> Entry:
        """Store ``body`` fresh for ``fresh`` seconds, then kept ``keep`` more seconds for stale answers."""
        entry = Entry(body, fetched_at, fetched_at + fresh)
        await self.store.set_value(name, entry.encode(), fresh + keep)
        return entry

    async def fill(self, name: str, fetch: Fetch[R], *, max_wait: float | None, accept: Accept,
                   wait: bool = True) -> R | Entry | None:
        """Fetch ``name`` once across the fleet: the lease holder calls ``fetch``, the others wait.

        Returns ``fetch``'s result, or an accepted entry another worker stored (counted as coalesced).
        With ``wait=False`` (a background refresh) it returns None when another worker holds the lease.
        """
        owner = uuid.uuid4().hex
        lease = f"fill|{name}"
        start = self.clock.now()
        delay = POLL[0]
        while True:
            if await self.store.claim(lease, owner, LEASE_TTL):
                return await self._hold(name, lease, owner, fetch, accept, self._left(max_wait, start))
            if not wait:
                return None
            left = self._left(max_wait, start)
            if left is not None and left <= 0:
                # Our patience ran out before the holder's request: ask ourselves, only if admitted now.
                return await fetch(0.0)
            await self.clock.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, POLL[1])
            entry = await self.read(name)
            if entry is not None and accept(entry, self.clock.now()):
                self.counters.add("coalesced")
                return entry

    def _left(self, max_wait: float | None, start: float) -> float | None:
        return None if max_wait is None else max(0.0, max_wait - (self.clock.now() - start))

    async def _hold(self, name: str, lease: str, owner: str, fetch: Fetch[R], accept: Accept,
                    max_wait: float | None) -> R | Entry:
        """Holding the lease: use an entry stored meanwhile, or fetch while renewing the lease."""
        try:
            entry = await self.read(name)
            if entry is not None and accept(entry, self.clock.now()):
                self.counters.add("coalesced")  # another worker filled it between our miss and our claim
                return entry
            result: list[R] = []
            error: list[Exception] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._renew, lease, owner)
                try:
                    result.append(await fetch(max_wait))
                except Exception as exc:  # re-raised below, unwrapped by the task group
                    error.append(exc)
                finally:
                    tg.cancel_scope.cancel()
            if error:
                raise error[0]
            return result[0]
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.release(lease, owner)

    async def _renew(self, lease: str, owner: str) -> None:
        """Keep the lease while the request runs (the budget may make it wait longer than the lease)."""
        while True:
            await self.clock.sleep(RENEW_EVERY)
            try:
                await self.store.claim(lease, owner, LEASE_TTL)
            except Exception as exc:  # a store hiccup must not fail the request; the lease may lapse
                log.debug("fill lease not renewed (%s)", type(exc).__name__)
