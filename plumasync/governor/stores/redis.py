"""Budget state in Redis: one budget across processes *and hosts*.

``store="redis://host:6379/0"`` (also ``rediss://`` and ``unix://``).  Needs the ``redis`` package
(``pip install plumasync[redis]``) and runs on asyncio (``redis.asyncio``; not on trio).

How it works
------------
* **One rule set.**  Admission (:meth:`RedisStore.acquire`), header observation, cancel and snapshot
  each load the group's JSON document (``GroupState.to_json()``, as the SQLite store keeps it), apply
  the pure :class:`~plumasync.governor.core.state.GroupState` transition in Python and write it back under
  optimistic ``WATCH``/``MULTI``: a write by another process in between aborts the ``EXEC`` and the
  transition runs again on the new state.  Memory, SQLite and Redis therefore decide identically (a
  randomized replay test checks it).  Only shared values and leases use a tiny Lua script.
* **Combined per process.**  The operations one process issues on a group at the same time run in one
  transaction, in order (:mod:`plumasync.governor.stores.redis_batch`): about one transaction per round per
  process, so processes on a hot group abort each other far less.
* **Redis' time.**  Each transition reads ``TIME`` on the Redis server, so hosts whose clocks disagree still
  agree on the budget (every answer carries Redis' ``now``; the governor turns ``retry_at`` into a
  duration on its own clock).  Exception: a store built with a clock that is not a
  :class:`~plumasync.governor.clock.SystemClock` (a ``ScaledClock`` compressing 15-minute windows into
  seconds, a ``FakeClock``) uses that clock's ``now`` instead.
* **Garbage.**  A state key that does not hold a group document is reset (one WARNING), never an
  exception for the caller.
* **Keys.**  One key per budget group, ``plumasync:{<host|account|group>}:state``, hash-tagged so that a
  Redis Cluster keeps it in one slot (pass a ``RedisCluster`` client); its TTL (two windows and a
  minute, refreshed on every write) outlives any reset it records.  Shared values live in
  ``plumasync:value:<name>``, leases in ``plumasync:lease:<name>`` (claim and release are owner-checked Lua
  scripts, :mod:`plumasync.governor.stores.redis_values`).  Values and leases expire by the store's clock
  (checked in the script) and by Redis' TTL.
* **Crashed holders.**  As in ``GroupState``: a permit older than one window is dropped, so a process
  killed while holding permits holds the budget for at most one window.

When Redis is unreachable
-------------------------
The store falls back to an in-process budget seeded from the last state it read; see
:mod:`plumasync.governor.stores.redis_fallback`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from ...errors import ConfigurationError
from ...storeurl import parse_store_url, redact_store_url
from ..clock import Clock, SystemClock
from ..core.model import Decision, GroupKey, GroupSnapshot, Lane, Policy, RateHeaders
from ..core.shares import Consumer
from ..core.state import GroupState
from .base import StateStore, TimedDecision, dump_state, load_state, observe_step
from .redis_batch import Combiner
from .redis_fallback import FallbackBudget, fallback_policy
from .redis_fallback import RedisDown as _Down
from .redis_lua import SCRIPT
from .redis_txn import Change, RedisTime
from .redis_values import RedisValues

try:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis store needs the redis package: pip install 'plumasync[redis]'") from exc

__all__ = ["RedisStore"]

log = logging.getLogger("plumasync")
T = TypeVar("T")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class RedisStore(RedisValues, StateStore):
    """Budget state, shared values and leases in Redis, shared by every process on every host.

    ``client`` is a ``redis.asyncio.Redis``; :meth:`from_url` builds one with short timeouts and no
    client-side retry loop.  ``clock``: see the module docs (a :class:`SystemClock`, the default, means
    Redis' ``TIME``).  ``expected_workers`` and ``fallback_retry`` set the unreachable-Redis policy;
    ``prefix`` namespaces the keys.
    """

    shared = True
    combines = True
    #: Seconds between two reads of Redis' ``TIME`` (the local monotonic clock carries it in between).
    time_refresh: float = 5.0

    def __init__(self, client: aioredis.Redis | RedisCluster, *, clock: Clock | None = None, expected_workers: int = 4,
                 fallback_retry: float = 5.0, prefix: str = "plumasync", name: str = "redis") -> None:
        if type(expected_workers) is not int or expected_workers < 1:
            raise ConfigurationError(f"expected_workers must be a positive integer, got {expected_workers!r}")
        if not fallback_retry > 0:
            raise ConfigurationError(f"fallback_retry must be positive, got {fallback_retry!r}")
        self.redis = client
        self.clock: Clock = clock or SystemClock()
        self.expected_workers = expected_workers
        self.fallback_retry = float(fallback_retry)
        self.prefix = prefix
        self._name = name  # for logs and repr: host, port and db only, never a password
        # Redis' TIME unless the caller injected a clock of its own (compressed or fake time).
        self._server_time = isinstance(self.clock, SystemClock)
        self._script = client.register_script(SCRIPT)
        self._budget = FallbackBudget(self.clock, expected_workers)
        self._fallback, self._fallback_permits = self._budget.store, self._budget.permits
        self._down = False
        self._next_probe = 0.0
        self._probing = False
        self._last: dict[GroupKey, GroupState] = {}  # the last state read from Redis per group
        self._time = RedisTime(client, self.time_refresh)
        # One round of transactions per group at a time from this process, every queued operation in it.
        self._combiner = Combiner(client, now=self._redis_now, change=self._change)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None, **options: Any) -> RedisStore:
        """``redis://[user:password@]host:port/db?expected_workers=4&fallback_retry=5``.

        Other query options go to redis-py (``socket_timeout``, ``socket_connect_timeout``...; defaults
        2 s and 1 s here).
        """
        spec = parse_store_url(url)
        if spec.kind != "redis":
            raise ConfigurationError(f"not a Redis store URL: {redact_store_url(url)!r}")
        ours = {**spec.options, **options}
        parts = urlsplit(spec.url)
        client = aioredis.Redis.from_url(spec.url, socket_timeout=2.0, socket_connect_timeout=1.0,
                                         retry=Retry(NoBackoff(), 1), health_check_interval=0)
        host = parts.hostname or parts.path or "localhost"
        name = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "") + \
            (parts.path if parts.scheme != "unix" else "")
        return cls(client, clock=clock, name=name, **ours)

    # -- keys and arguments ----------------------------------------------------------------------------

    def state_key(self, key: GroupKey) -> str:
        """The Redis key of a group's state (hash-tagged: one Cluster slot per group)."""
        return f"{self.prefix}:{{{key}}}:state"

    def _now_arg(self) -> str:
        return "" if self._server_time else repr(float(self.clock.now()))

    def _ttl_ms(self, seconds: float) -> int:
        """Redis' backstop TTL for ``seconds`` of the store's clock, in real milliseconds."""
        real = getattr(self.clock, "real_seconds", None)
        if callable(real) and not self._server_time:
            seconds = max(float(real(seconds)), 0.001)
        return max(1, math.ceil(seconds * 1000))

    def _ttl_for(self, policy: Policy, state: GroupState) -> int:
        """Backstop TTL of a group key: two windows (the longer of configured and learned) and a minute."""
        return self._ttl_ms(2 * max(policy.window, state.window) + 60.0)

    async def _redis_now(self, skey: str) -> float:
        """The store's time: Redis' (see :class:`RedisTime`), or the injected clock's."""
        return await self._time.now(skey) if self._server_time else float(self.clock.now())

    async def _transact_once(self, key: GroupKey, policy: Policy,
                             fn: Callable[[GroupState, float], object]) -> tuple[object, float]:
        """Load, apply ``fn``, save under WATCH/MULTI, combined with this process's other operations on
        the group queued at the same time (see :mod:`plumasync.governor.stores.redis_batch`)."""
        result, now, state = await self._combiner.run(key, self.state_key(key), policy, fn)
        self._last[key] = state
        return result, now

    def _change(self, key: GroupKey, policy: Policy, fn: Callable[[GroupState], object]) -> Change:
        """``fn`` applied to the stored document of ``key``: what the transaction writes back."""
        def change(raw: bytes | str | None) -> tuple[GroupState, object, str | None, int]:
            state = load_state(raw, policy, key)
            result = fn(state)
            doc = dump_state(state)
            unchanged = raw in (doc, doc.encode())  # a refusal writes nothing and aborts nobody
            return state, result, None if unchanged else doc, self._ttl_for(policy, state)

        return change

    async def _transact(self, key: GroupKey, policy: Policy,
                        fn: Callable[[GroupState, float], object]) -> tuple[object, float]:
        return await self._call(lambda: self._transact_once(key, policy, fn))

    # -- Redis or the fallback ------------------------------------------------------------------------

    def _check_backend(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError("the Redis store runs on asyncio only (redis.asyncio); "
                                     "use the SQLite store or the memory store under trio") from None

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` against Redis, or raise :class:`_Down` (Redis unreachable or not retried yet)."""
        self._check_backend()
        if self._down:
            await self._probe()
        try:
            # Shielded: a cancelled caller must not leave a script's result (a granted permit) unread.
            with anyio.CancelScope(shield=True):
                result = await fn()
        except _UNREACHABLE as exc:
            self._went_down(exc)
            raise _Down from None
        return result

    def _went_down(self, exc: BaseException) -> None:
        self._next_probe = self.clock.now() + self.fallback_retry
        if not self._down:
            self._down = True
            self._budget.new_outage()
            log.warning("Redis store %s is unreachable (%s): falling back to an in-process budget of "
                        "limit // %d per group; retrying Redis every %g s", self._name, type(exc).__name__,
                        self.expected_workers, self.fallback_retry)

    async def _probe(self) -> None:
        """While Redis is down: at most every ``fallback_retry`` s (one task at a time), ping it."""
        if self._probing or self.clock.now() < self._next_probe:
            raise _Down
        self._probing = True
        try:
            with anyio.CancelScope(shield=True):
                await self.redis.ping()
                await self._absorb_fallback()
        except _UNREACHABLE as exc:
            self._went_down(exc)
            raise _Down from None
        finally:
            self._probing = False
        self._down = False
        log.info("Redis store %s is reachable again: back to the shared budget", self._name)

    async def _absorb_fallback(self) -> None:
        """Tell Redis about the requests the fallback admitted during the outage (each one once)."""
        for key, policy, times in self._budget.unabsorbed():
            await self._transact_once(key, policy, _absorber(times))
            self._budget.absorbed(key, times)

    def _seed_fallback(self, key: GroupKey, policy: Policy) -> Policy:
        """The fallback's policy for ``key`` (seeded, once per outage, from the last Redis read)."""
        return self._budget.policy(key, policy, self._last.get(key))

    def fallback_policy(self, policy: Policy) -> Policy:
        """The share of ``policy`` one process may use while Redis is unreachable."""
        return fallback_policy(policy, self.expected_workers)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the in-process fallback budget is in use."""
        return self._down

    # -- the governor's transitions --------------------------------------------------------------------

    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str,
                      consumer: Consumer | None = None) -> TimedDecision:
        """One WATCH/MULTI transaction: grant ``permit`` or say when to ask again."""
        try:
            decision, now = await self._transact(key, policy,
                                                 lambda s, now: s.acquire(now, policy, lane, permit, consumer))
        except _Down:
            timed = await self._fallback.acquire(key, self._seed_fallback(key, policy), lane, permit, consumer)
            if timed.decision.granted:
                self._fallback_permits.add(permit)
            return timed
        assert isinstance(decision, Decision)
        return TimedDecision(decision, now)

    async def observe(self, key: GroupKey, policy: Policy, permit: str, status: int | None,
                      headers: RateHeaders) -> float | None:
        """Record the permit's outcome and the response's rate-limit headers; return the group's pause."""
        paused_until = None
        if permit in self._fallback_permits:
            self._fallback_permits.discard(permit)
            # The fallback holds each process to its share: it does not trust the server's Remaining.
            fb_headers = RateHeaders(retry_after=headers.retry_after, retry_at=headers.retry_at, date=headers.date)
            paused_until = await self._fallback.observe(key, self._seed_fallback(key, policy), permit, status,
                                                        fb_headers)
            if self._down:
                return paused_until
        try:
            result, _ = await self._transact(key, policy, observe_step(policy, permit, status, headers))
        except _Down:
            return paused_until  # Redis drops the permit after one window
        return float(result) if isinstance(result, (int, float)) else paused_until

    async def cancel(self, key: GroupKey, policy: Policy, permit: str) -> None:
        """Give back a permit that was never used."""
        if permit in self._fallback_permits:
            self._fallback_permits.discard(permit)
            await self._fallback.cancel(key, self._seed_fallback(key, policy), permit)
            return
        try:
            await self._transact(key, policy, lambda s, now: s.cancel(permit))
        except _Down:
            return

    async def snapshot(self, key: GroupKey, policy: Policy, waiters: int = 0) -> GroupSnapshot:
        """The group as Redis (or, while it is unreachable, the fallback) sees it now."""
        group = key.group
        try:
            snap, _ = await self._transact(key, policy, lambda s, now: s.snapshot(now, policy, group, waiters))
        except _Down:
            return await self._fallback.snapshot(key, self._seed_fallback(key, policy), waiters)
        assert isinstance(snap, GroupSnapshot)
        return snap

    async def state(self, key: GroupKey) -> GroupState | None:
        """The raw state of one group as Redis holds it (for tests and diagnosis), or None."""
        try:
            raw = await self._call(lambda: self.redis.get(self.state_key(key)))
        except _Down:
            return None
        return None if raw is None else GroupState.from_json(json.loads(raw))

    async def keys(self) -> list[GroupKey]:
        """Every group key in Redis under this prefix (the fallback's while Redis is unreachable)."""
        head, tail = f"{self.prefix}:{{", "}:state"

        async def scan() -> list[GroupKey]:
            found: set[str] = set()
            async for raw in self.redis.scan_iter(match=f"{self.prefix}:{{*}}:state", count=500):
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                if name.startswith(head) and name.endswith(tail):
                    found.add(name[len(head):-len(tail)])
            return [GroupKey.parse(text) for text in sorted(found)]

        try:
            return await self._call(scan)
        except _Down:
            return await self._fallback.keys()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    def __repr__(self) -> str:
        return f"RedisStore({self._name!r}, expected_workers={self.expected_workers})"


def _absorber(times: list[float]) -> Callable[[GroupState, float], object]:
    return lambda state, _now: state.absorb(times)
