"""One cached VoiceTrends call: hit, miss (coalesced in the process and across the fleet), stale, refresh.

The order of a call, and why:

1. **Hit.**  One store read; a fresh entry is parsed and returned (no governor, no network).  Counting
   the hit is an addition in memory (:mod:`plumasync.cachestats`), so the hit stays as cheap as before.
2. **Miss.**  Identical concurrent calls in this process share one attempt
   (:class:`~plumasync.singleflight.SingleFlight`); that attempt shares one request with the rest of the
   fleet (:class:`~plumasync.fleetcache.FleetCache`: lease, or wait for the holder's entry).
3. **Stale rather than late.**  When the attempt fails because the budget cannot admit it within
   ``max_wait``, or because the upstream still fails after the retry policy, a :class:`StalePolicy`
   answers with the last cached result (kept ``CachePolicy.keep_stale`` seconds past its freshness),
   marked ``stale=True`` with its ``fetched_at``.  With none, the error is raised as before.
4. **Refresh-ahead** (``CachePolicy.refresh_ahead``): a hit on an entry about to expire starts one
   background renewal in the interactive lane (one per entry in the process, one in the fleet through
   the lease), so readers keep hitting.  The tasks are the client's, cancelled when it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime, timezone
from typing import TypeVar

import attrs

from .cachestats import FleetCounters
from .config import CachePolicy, Format, StalePolicy
from .errors import ConfigurationError, RateLimitExceeded, ResponseParseError, ServerError, TransportError
from .fleetcache import Entry, FleetCache
from .governor import Lane
from .governor.clock import Clock
from .governor.stores.base import Store
from .singleflight import SingleFlight

__all__ = ["Call", "ReportCache", "check_stale"]

log = logging.getLogger("plumasync")

R = TypeVar("R")
Parse = Callable[[bytes, Format], R]
#: Send the governed request in ``lane`` within ``max_wait``; return the successful response's body.
Upstream = Callable[[Lane, float | None], Awaitable[bytes]]

#: Failures after which ``StalePolicy.on_error`` serves the last result (the upstream, not the caller).
_UPSTREAM_FAILURES = (ServerError, TransportError, ResponseParseError)


def check_stale(stale: StalePolicy | None, cache: CachePolicy) -> StalePolicy | None:
    """A client's default stale policy, refused (:class:`ConfigurationError`) if the cache cannot serve it."""
    if stale is not None and not cache.enabled:
        raise ConfigurationError("stale= needs the cache: CachePolicy(enabled=False) keeps nothing to serve")
    if stale is not None and cache.keep_stale <= 0:
        raise ConfigurationError("stale= needs CachePolicy(keep_stale > 0): nothing is kept past freshness")
    return stale


@attrs.frozen
class Call:
    """One VoiceTrends call as the cache sees it.

    ``name``: the entry's store name; ``ttl``: its freshness (0: not cacheable); ``read``: the caller's
    ``cache=`` (False skips the read, not the write); ``stale``: the ``stale=`` argument as given.
    """

    name: str
    fmt: Format
    lane: Lane
    max_wait: float | None
    ttl: float
    read: bool
    stale: StalePolicy | bool | None


def _mark(report: R, fetched_at: float, stale: bool) -> R:
    # The report was built just now for this answer and nobody holds it yet: setting its two fields in
    # place costs nothing, where attrs.evolve would run every converter of the report again.
    object.__setattr__(report, "fetched_at", datetime.fromtimestamp(fetched_at, timezone.utc))
    object.__setattr__(report, "stale", stale)
    return report


class ReportCache:
    """Cached, coalesced, stale-capable VoiceTrends calls for one account's ``data`` group."""

    def __init__(self, store: Store, clock: Clock, policy: CachePolicy, stale: StalePolicy | None,
                 scope: str) -> None:
        self.policy = policy
        self.stale = check_stale(stale, policy)
        self._clock = clock
        self.counters = FleetCounters(store, clock, f"vt-stats|{scope}")
        self.fleet = FleetCache(store, clock, self.counters)
        self._flights: SingleFlight[object] = SingleFlight()
        self._shared_seen = 0
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    def resolve(self, call: Call) -> StalePolicy | None:
        """The stale policy of ``call``; a ``stale=`` the call cannot honour is a ConfigurationError."""
        explicit = StalePolicy.resolve(call.stale)
        if call.stale is None:
            return self.stale if call.read and call.ttl > 0 else None
        if explicit is not None:
            where = (None if call.read and call.ttl > 0 else
                     "cache=False" if not call.read else "a call the cache does not keep")
            if where is not None:
                raise ConfigurationError(f"stale= was given for {where}: there is no cached result to serve "
                                         "(drop stale=, or let the call use the cache)")
            check_stale(explicit, self.policy)
        return explicit

    async def get(self, call: Call, parse: Parse[R], upstream: Upstream) -> R:
        """The report for ``call``: fresh from the cache, from upstream once per fleet, or stale."""
        stale = self.resolve(call)  # before any request
        if self.policy.enabled and call.read:
            entry = await self.fleet.read(call.name)
            now = self._clock.now()
            if entry is not None and entry.fresh_until > now:
                self.counters.add("hits")
                await self.counters.maybe_flush()
                if 0 < entry.fresh_until - now <= self.policy.refresh_ahead:
                    self._refresh_soon(call, parse, upstream, entry)
                return _mark(parse(entry.body, call.fmt), entry.fetched_at, False)
        self.counters.add("misses")
        try:
            return await self._miss(call, parse, upstream)
        except (RateLimitExceeded, *_UPSTREAM_FAILURES) as exc:
            served = await self._serve_stale(call, stale, exc, parse)
            if served is None:
                raise
            return served
        finally:
            await self.counters.maybe_flush()

    def _fetcher(self, call: Call, parse: Parse[R], upstream: Upstream,
                 lane: Lane) -> Callable[[float | None], Awaitable[R]]:
        """The upstream fetch of ``call``: one governed request, parsed, then stored."""
        cacheable = self.policy.enabled and call.ttl > 0

        async def fetch(max_wait: float | None) -> R:
            sent = True
            try:
                body = await upstream(lane, max_wait)
            except RateLimitExceeded as exc:
                sent = exc.status is not None  # refused by the governor: nothing was sent
                raise
            finally:
                if sent:
                    self.counters.add("upstream")
            report = parse(body, call.fmt)  # parsed first: a bad body is never cached
            now = self._clock.now()
            if cacheable:
                await self.fleet.write(call.name, body, now, call.ttl, self.policy.keep_stale)
            return _mark(report, now, False)

        return fetch

    async def _miss(self, call: Call, parse: Parse[R], upstream: Upstream) -> R:
        fetch = self._fetcher(call, parse, upstream, call.lane)
        fleet = self.policy.enabled and self.policy.coalesce and call.ttl > 0 and call.read

        async def once() -> R:
            if not fleet:
                return await fetch(call.max_wait)
            since = self._clock.now()
            got = await self.fleet.fill(call.name, fetch, max_wait=call.max_wait,
                                        accept=lambda e, now: e.fetched_at >= since or e.fresh_until > now)
            assert got is not None  # only a refresh (wait=False) can come back empty-handed
            return _mark(parse(got.body, call.fmt), got.fetched_at, False) if isinstance(got, Entry) else got

        if not self.policy.coalesce:
            return await once()
        key: Hashable = (call.name, call.lane, call.max_wait)
        try:
            return await self._flights.do(key, once)  # type: ignore[return-value]
        finally:
            shared, self._shared_seen = self._flights.shared - self._shared_seen, self._flights.shared
            self.counters.add("coalesced", shared)

    async def _serve_stale(self, call: Call, stale: StalePolicy | None, exc: Exception,
                           parse: Parse[R]) -> R | None:
        """The last cached result if ``stale`` covers ``exc`` and one is kept (young enough), else None."""
        if stale is None or not (stale.on_rate_limit if isinstance(exc, RateLimitExceeded) else stale.on_error):
            return None
        try:
            entry = await self.fleet.read(call.name)
        except Exception:  # the store failing too: the caller gets the original error
            return None
        now = self._clock.now()
        if entry is None or (stale.max_age is not None and now - entry.fetched_at > stale.max_age):
            return None
        fresh = entry.fresh_until > now  # another worker's request succeeded meanwhile
        self.counters.add("hits" if fresh else "stale")
        if not fresh:
            log.info("serving a stale VoiceTrends result (%.0f s old) after %s", now - entry.fetched_at,
                     type(exc).__name__)
        return _mark(parse(entry.body, call.fmt), entry.fetched_at, not fresh)

    def _refresh_soon(self, call: Call, parse: Parse[R], upstream: Upstream, entry: Entry) -> None:
        """Start one background renewal of ``call``'s entry (asyncio only: trio has no detached tasks)."""
        if call.name in self._refreshing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._refresh(call, parse, upstream, entry))
        self._refreshing[call.name] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(call.name, None))

    async def _refresh(self, call: Call, parse: Parse[R], upstream: Upstream, entry: Entry) -> None:
        since, ahead = self._clock.now(), self.policy.refresh_ahead
        fetch = self._fetcher(call, parse, upstream, Lane.INTERACTIVE)
        try:  # within the entry's remaining freshness: later, a reader's own miss does the job
            await self.fleet.fill(call.name, fetch, max_wait=max(0.0, entry.fresh_until - since), wait=False,
                                  accept=lambda e, now: e.fetched_at >= since or e.fresh_until - now > ahead)
        except Exception as exc:  # a failed renewal changes nothing: the entry stays until it expires
            log.debug("refresh-ahead of a VoiceTrends result failed (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        """Stop background renewals and flush this process's statistics to the store."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.counters.flush()
