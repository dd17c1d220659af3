"""VoiceTrends cache accounting, per process and summed over every worker sharing the store.

A cache hit must stay cheap (a dashboard serves most requests from the cache), so counting one is an
addition in memory.  The counts are added to the store's fleet counters in batches: when a few hundred
have accumulated, when a few seconds have passed, on :meth:`FleetCounters.flush` (before the fleet
totals are read) and when the client closes.  So the fleet totals lag each worker by at most one batch.
"""

from __future__ import annotations

import logging

import attrs

from .governor.clock import Clock
from .governor.stores.base import Store

__all__ = ["CacheStats", "FleetCounters"]

log = logging.getLogger("plumasync")

_FIELDS = ("hits", "misses", "coalesced", "stale", "upstream")


@attrs.define
class CacheStats:
    """VoiceTrends request accounting.

    ``hits``: served from the cache; ``misses``: not in the cache (fresh) when asked; ``coalesced``:
    misses served by another caller's request (in this process or, on a shared store, another worker's);
    ``stale``: last cached results served because a fresh one could not be had (:class:`StalePolicy`);
    ``upstream``: data requests sent to Plum (the budget spent; each may include its retries).
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stale: int = 0
    upstream: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON-friendly dict."""
        return attrs.asdict(self)


class FleetCounters:
    """This process's :class:`CacheStats`, and the batches it adds to the store's counters ``name``."""

    #: Counts that trigger a flush, and clock seconds after which pending counts are flushed.
    batch: int = 256
    every: float = 5.0

    def __init__(self, store: Store, clock: Clock, name: str) -> None:
        self._store = store
        self._clock = clock
        self._name = name
        self.local = CacheStats()
        self._pending: dict[str, int] = dict.fromkeys(_FIELDS, 0)
        self._last = clock.now()

    def add(self, field: str, n: int = 1) -> None:
        """Count ``n`` events of ``field`` (one of the :class:`CacheStats` fields); no I/O."""
        if n:
            setattr(self.local, field, getattr(self.local, field) + n)
            self._pending[field] += n

    async def maybe_flush(self) -> None:
        """Flush when a batch is full or the last flush is old (cheap when neither)."""
        count = sum(self._pending.values())
        if count >= self.batch or (count and self._clock.now() - self._last >= self.every):
            await self.flush()

    async def flush(self) -> None:
        """Add the pending counts to the store's fleet counters (kept for the next flush on a store error)."""
        if not any(self._pending.values()):
            return
        pending, self._pending = self._pending, dict.fromkeys(_FIELDS, 0)
        self._last = self._clock.now()
        try:
            await self._store.add_counts(self._name, pending)
        except BaseException as exc:  # kept for the next flush (a cancelled call included)
            for field, n in pending.items():
                self._pending[field] += n
            if not isinstance(exc, Exception):
                raise
            log.debug("cache statistics not flushed (%s); keeping them", type(exc).__name__)  # never fails a call

    async def fleet(self) -> CacheStats:
        """The totals of every worker sharing the store (this one's flushed first).  Costs no request."""
        await self.flush()
        counts = await self._store.get_counts(self._name)
        return CacheStats(**{field: int(counts.get(field, 0)) for field in _FIELDS})
