"""Benchmark-only baseline: the Redis store as it was before it ran the pure ``GroupState`` transitions.

Each transition was one Lua script, a hand port of the Python rules (which drifted from them, and
knows none of the rules added since).  It is kept here only so that ``bench_stores`` can measure the
WATCH/MULTI store against it side by side in one run; plumasync never imports it.
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio

from plumasync.errors import ConfigurationError
from plumasync.governor.clock import Clock, SystemClock
from plumasync.governor.core.model import Decision, GroupKey, GroupSnapshot, Lane, Policy, RateHeaders
from plumasync.governor.core.state import GroupState
from plumasync.governor.stores.base import MemoryStore, Store, TimedDecision

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis store needs the redis package: pip install 'plumasync[redis]'") from exc

__all__ = ["LuaRedisStore"]

log = logging.getLogger("plumasync")
T = TypeVar("T")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
_OUR_OPTIONS = ("expected_workers", "fallback_retry", "prefix")


class _Down(Exception):
    """Internal: Redis is unreachable (or not retried yet); use the fallback."""


def _opt(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _float(raw: Any) -> float:
    return float(raw.decode() if isinstance(raw, bytes) else raw)


class LuaRedisStore(Store):
    """Budget state, shared values and leases in Redis, shared by every process on every host.

    ``client`` is a ``redis.asyncio.Redis``; :meth:`from_url` builds one with short timeouts and no
    client-side retry loop.  ``clock``: see the module docs (a :class:`SystemClock`, the default, means
    Redis' ``TIME``).  ``expected_workers`` and ``fallback_retry`` set the unreachable-Redis policy;
    ``prefix`` namespaces the keys.
    """

    shared = True

    def __init__(self, client: aioredis.Redis, *, clock: Clock | None = None, expected_workers: int = 4,
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
        self._fallback = MemoryStore(self.clock)
        self._fallback_permits: set[str] = set()
        self._fallback_policies: dict[GroupKey, Policy] = {}
        self._down = False
        self._next_probe = 0.0
        self._probing = False
        self._absorbed: dict[GroupKey, float] = {}

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None, **options: Any) -> LuaRedisStore:
        """``redis://[user:password@]host:port/db?expected_workers=4&fallback_retry=5``.

        Other query options go to redis-py (``socket_timeout``, ``socket_connect_timeout``...; defaults
        2 s and 1 s here).
        """
        parts = urlsplit(url)
        ours: dict[str, Any] = {}
        rest: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _OUR_OPTIONS:
                ours[key] = value
            else:
                rest.append((key, value))
        try:
            if "expected_workers" in ours:
                ours["expected_workers"] = int(ours["expected_workers"])
            if "fallback_retry" in ours:
                ours["fallback_retry"] = float(ours["fallback_retry"])
        except ValueError:
            raise ConfigurationError("expected_workers must be an integer and fallback_retry a number "
                                     "in the Redis store URL") from None
        ours.update(options)
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
        client = aioredis.Redis.from_url(clean, socket_timeout=2.0, socket_connect_timeout=1.0,
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

    def _group_args(self, op: str, policy: Policy) -> list[str]:
        ttl = self._ttl_ms(2 * policy.window + 60.0)
        return [op, self._now_arg(), str(policy.limit), repr(float(policy.window)), str(policy.reserve),
                repr(float(policy.margin)), str(ttl)]

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
        for key, policy in list(self._fallback_policies.items()):
            state = self._fallback._states.get(key)
            if state is None:
                continue
            done = self._absorbed.get(key, -math.inf)
            now = self.clock.now()
            times = [t for t in state.log if t > max(done, now - policy.window - policy.margin)]
            if not times:
                continue
            args = [*self._group_args("absorb", policy), *(repr(t) for t in times)]
            await self._script(keys=[self.state_key(key)], args=args)
            self._absorbed[key] = max(times)

    def fallback_policy(self, policy: Policy) -> Policy:
        """The share of ``policy`` one process may use while Redis is unreachable."""
        limit = max(1, policy.limit // self.expected_workers)
        reserve = min(max(0, limit - 1), math.ceil(policy.reserve / self.expected_workers))
        return Policy(limit=limit, window=policy.window, reserve=reserve, margin=policy.margin)

    def _fb_policy(self, key: GroupKey, policy: Policy) -> Policy:
        fb = self._fallback_policies.get(key)
        if fb is None:
            fb = self._fallback_policies[key] = self.fallback_policy(policy)
        return fb

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the in-process fallback budget is in use."""
        return self._down

    # -- the governor's transitions --------------------------------------------------------------------

    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str) -> TimedDecision:
        """One Lua script: grant ``permit`` or say when to ask again."""
        args = [*self._group_args("acquire", policy), Lane(lane).value, permit]
        try:
            raw = await self._call(lambda: self._script(keys=[self.state_key(key)], args=args))
        except _Down:
            timed = await self._fallback.acquire(key, self._fb_policy(key, policy), lane, permit)
            if timed.decision.granted:
                self._fallback_permits.add(permit)
            return timed
        granted, retry_at, now = raw
        retry = None if retry_at in (b"", "") else _float(retry_at)
        return TimedDecision(Decision(bool(int(granted)), retry), _float(now))

    async def observe(self, key: GroupKey, policy: Policy, permit: str, status: int | None,
                      headers: RateHeaders) -> None:
        """One Lua script: record the permit's outcome and the response's rate-limit headers."""
        if permit in self._fallback_permits:
            self._fallback_permits.discard(permit)
            # The fallback holds each process to its share: it does not trust the server's Remaining.
            await self._fallback.observe(key, self._fb_policy(key, policy), permit, status, RateHeaders())
            if self._down:
                return
        args = [*self._group_args("observe", policy), permit, "" if status is None else str(int(status)),
                "" if headers.limit is None else str(int(headers.limit)),
                "" if headers.remaining is None else str(int(headers.remaining)),
                _opt(headers.reset), _opt(headers.date)]
        try:
            await self._call(lambda: self._script(keys=[self.state_key(key)], args=args))
        except _Down:
            return  # Redis drops the permit after one window

    async def cancel(self, key: GroupKey, policy: Policy, permit: str) -> None:
        """Give back a permit that was never used."""
        if permit in self._fallback_permits:
            self._fallback_permits.discard(permit)
            await self._fallback.cancel(key, self._fb_policy(key, policy), permit)
            return
        args = [*self._group_args("cancel", policy), permit]
        try:
            await self._call(lambda: self._script(keys=[self.state_key(key)], args=args))
        except _Down:
            return

    async def snapshot(self, key: GroupKey, policy: Policy, waiters: int = 0) -> GroupSnapshot:
        """The group as Redis (or, while it is unreachable, the fallback) sees it now."""
        group = key.group
        args = self._group_args("snapshot", policy)
        try:
            raw = await self._call(lambda: self._script(keys=[self.state_key(key)], args=args))
        except _Down:
            return await self._fallback.snapshot(key, self._fb_policy(key, policy), waiters)
        doc = json.loads(raw[0])
        return GroupSnapshot(
            group=group, mode=doc["mode"], limit=int(doc["limit"]), window=float(doc["window"]),
            remaining=None if doc["remaining"] is None else int(doc["remaining"]),
            available=None if doc["available"] is None else int(doc["available"]),
            in_flight=int(doc["in_flight"]),
            reset_at=None if doc["reset_at"] is None else float(doc["reset_at"]),
            paused_until=None if doc["paused_until"] is None else float(doc["paused_until"]),
            contended=bool(doc["contended"]), admitted=int(doc["admitted"]), throttled=int(doc["throttled"]),
            waiters=waiters,
        )

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

    # -- shared values and leases ------------------------------------------------------------------------

    def _value_key(self, name: str) -> str:
        return f"{self.prefix}:value:{name}"

    def _lease_key(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    async def get_value(self, name: str) -> bytes | None:
        """The value, or None when absent or expired."""
        try:
            raw = await self._call(lambda: self._script(keys=[self._value_key(name)],
                                                        args=["value_get", self._now_arg()]))
        except _Down:
            return await self._fallback.get_value(name)
        return None if raw is None else bytes(raw)

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds of the store's clock."""
        args: list[str | bytes] = ["value_set", self._now_arg(), value, repr(float(ttl)),
                                   str(self._ttl_ms(ttl))]
        try:
            await self._call(lambda: self._script(keys=[self._value_key(name)], args=args))
        except _Down:
            await self._fallback.set_value(name, value, ttl)

    async def delete_value(self, name: str) -> None:
        """Forget a value."""
        try:
            await self._call(lambda: self.redis.delete(self._value_key(name)))
        except _Down:
            await self._fallback.delete_value(name)

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the lease unless another owner holds an unexpired one (atomic, in Lua)."""
        args = ["claim", self._now_arg(), owner, repr(float(ttl)), str(self._ttl_ms(ttl))]
        try:
            return bool(await self._call(lambda: self._script(keys=[self._lease_key(name)], args=args)))
        except _Down:
            return await self._fallback.claim(name, owner, ttl)

    async def release(self, name: str, owner: str) -> None:
        """Drop the lease if ``owner`` holds it."""
        try:
            await self._call(lambda: self._script(keys=[self._lease_key(name)], args=["release", owner]))
        except _Down:
            await self._fallback.release(name, owner)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    def __repr__(self) -> str:
        return f"LuaRedisStore({self._name!r}, expected_workers={self.expected_workers})"


SCRIPT = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end

local op = ARGV[1]

local function clock_now(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function num(x) return string.format('%.17g', x) end
local function opt(v) if v == nil or v == '' then return nil end return tonumber(v) end
local function nn(v) if v == cjson.null then return nil end return v end
local function jn(x) if x == nil then return 'null' end return num(x) end
local function jb(b) if b then return 'true' end return 'false' end

-- values and leases: a hash {v|o: value or owner, e: expiry in the store's clock} --------------------

if op == 'value_get' then
  local now = clock_now(ARGV[2])
  local item = redis.call('HMGET', KEYS[1], 'v', 'e')
  if not item[1] or tonumber(item[2]) <= now then return false end
  return item[1]
elseif op == 'value_set' then
  local now = clock_now(ARGV[2])
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'e', num(now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
elseif op == 'claim' then
  local now = clock_now(ARGV[2])
  local held = redis.call('HMGET', KEYS[1], 'o', 'e')
  if held[1] and held[1] ~= ARGV[3] and tonumber(held[2]) > now then return 0 end
  redis.call('HSET', KEYS[1], 'o', ARGV[3], 'e', num(now + tonumber(ARGV[4])))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
elseif op == 'release' then
  if redis.call('HGET', KEYS[1], 'o') == ARGV[2] then redis.call('DEL', KEYS[1]) end
  return 1
end

-- group state: ARGV = op, now, limit, window, reserve, margin, ttl_ms, op arguments... -----------------

local now = clock_now(ARGV[2])
local P = {limit = tonumber(ARGV[3]), window = tonumber(ARGV[4]), reserve = tonumber(ARGV[5]),
           margin = tonumber(ARGV[6])}
local ttl_ms = ARGV[7]

local function load()
  local raw = redis.call('GET', KEYS[1])
  if not raw then
    return {limit = P.limit, window = P.window, mode = 'cold', permits = {}, log = {}, used = 0,
            contended = false, admitted = 0, throttled = 0}
  end
  local d = cjson.decode(raw)
  local permits = {}
  for p, t in pairs(d.permits) do permits[p] = t end
  local log = {}
  -- a document the WATCH/MULTI store wrote names the log and the count as GroupState does today
  for i, t in ipairs(d.log or d.admission_times or {}) do log[i] = t end
  return {limit = d.limit, window = d.window, mode = d.mode, remaining = nn(d.remaining),
          reset = nn(d.reset), reset_local = nn(d.reset_local), offset = nn(d.offset),
          paused_until = nn(d.paused_until), permits = permits, log = log, used = d.used or d.answers_in_window or 0,
          contended = d.contended, admitted = d.admitted, throttled = d.throttled}
end

local function save(s)
  local permits = {}
  for p, t in pairs(s.permits) do permits[#permits + 1] = cjson.encode(p) .. ':' .. num(t) end
  local log = {}
  for i, t in ipairs(s.log) do log[i] = num(t) end
  local doc = '{"limit":' .. num(s.limit) .. ',"window":' .. num(s.window) ..
    ',"mode":' .. cjson.encode(s.mode) .. ',"remaining":' .. jn(s.remaining) ..
    ',"reset":' .. jn(s.reset) .. ',"reset_local":' .. jn(s.reset_local) ..
    ',"offset":' .. jn(s.offset) .. ',"paused_until":' .. jn(s.paused_until) ..
    ',"permits":{' .. table.concat(permits, ',') .. '},"log":[' .. table.concat(log, ',') ..
    '],"used":' .. num(s.used) .. ',"contended":' .. jb(s.contended) ..
    ',"admitted":' .. num(s.admitted) .. ',"throttled":' .. num(s.throttled) .. '}'
  redis.call('SET', KEYS[1], doc, 'PX', ttl_ms)
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function expire(s)
  local cutoff = now - s.window
  for p, t in pairs(s.permits) do
    if t <= cutoff then s.permits[p] = nil end
  end
end

local function roll(s)
  if s.mode ~= 'headers' or s.reset_local == nil then return end
  if now < s.reset_local + P.margin then return end
  local windows = math.max(1, math.floor((now - s.reset_local - P.margin) / s.window) + 1)
  s.reset = s.reset + windows * s.window
  s.reset_local = s.reset_local + windows * s.window
  s.used = 0
  if s.contended then s.remaining = nil else s.remaining = s.limit end
end

local function reserve(s, lane)
  if lane == 'interactive' then return 0 end
  if s.limit ~= P.limit and P.limit > 0 then
    return math.min(s.limit - 1, math.ceil(P.reserve * s.limit / P.limit))
  end
  return math.min(P.reserve, math.max(0, s.limit - 1))
end

local function grant(s, permit)
  s.permits[permit] = now
  s.admitted = s.admitted + 1
  if s.mode ~= 'headers' then  -- the sliding log serves only headerless groups (and the probe)
    s.log[#s.log + 1] = now
    if #s.log > s.limit then
      local keep = {}
      for i = #s.log - s.limit + 1, #s.log do keep[#keep + 1] = s.log[i] end
      s.log = keep
    end
  end
  return {1, '', num(now)}
end

local function deny(retry_at)
  if retry_at == nil then return {0, '', num(now)} end
  return {0, num(retry_at), num(now)}
end

local function probing(s)
  if s.mode == 'cold' or s.reset_local == nil then return next(s.permits) ~= nil end
  local window_start = s.reset_local - s.window
  for _, t in pairs(s.permits) do
    if t >= window_start then return true end
  end
  return false
end

local function acquire_sliding(s, res, permit)
  local horizon = now - s.window - P.margin
  local recent = {}
  for _, t in ipairs(s.log) do
    if t > horizon then recent[#recent + 1] = t end
  end
  s.log = recent
  local allowed = s.limit - res
  if #recent < allowed then return grant(s, permit) end
  local oldest_blocking = recent[#recent - allowed + 1]
  return deny(oldest_blocking + s.window + P.margin)
end

local function acquire(s, lane, permit)
  expire(s)
  if s.paused_until ~= nil then
    if now < s.paused_until then return deny(s.paused_until) end
    s.paused_until = nil
  end
  roll(s)
  local res = reserve(s, lane)
  if s.mode == 'headerless' then return acquire_sliding(s, res, permit) end
  if s.mode == 'cold' or s.remaining == nil then
    if probing(s) then return deny(nil) end
    return grant(s, permit)
  end
  local available = s.remaining - count(s.permits) - res
  if available > 0 then return grant(s, permit) end
  if s.reset_local == nil then return deny(nil) end
  return deny(s.reset_local + P.margin)
end

local function update_offset(s, admitted_at, received_at, date)
  if date == nil then
    if s.offset == nil then s.offset = 0.0 end
    return
  end
  local low = date - received_at
  local high = date + 1.0 - admitted_at
  if s.offset == nil or high < s.offset then
    s.offset = low
  else
    s.offset = math.max(s.offset, low)
  end
end

local function observe_headers(s, admitted_at, status, h)
  update_offset(s, admitted_at, now, h.date)
  if s.mode ~= 'headers' then
    s.mode = 'headers'
    s.reset = nil
    s.log = {}
  end
  s.limit = math.max(1, h.limit)
  local remaining = math.max(0, h.remaining)
  if s.reset == nil or h.reset > s.reset + 0.5 then
    s.reset = h.reset
    s.remaining = remaining
    s.used = 1
    s.contended = remaining < s.limit - 1 - count(s.permits)
  elseif h.reset > s.reset - 0.5 then
    s.used = s.used + 1
    if s.remaining == nil then s.remaining = remaining else s.remaining = math.min(s.remaining, remaining) end
    if remaining < s.limit - s.used - count(s.permits) then
      s.contended = true
    elseif s.used == 1 and remaining >= s.limit - 1 then
      s.contended = false
    end
  end
  s.reset_local = s.reset - s.offset
  if status == 429 then
    s.throttled = s.throttled + 1
    s.remaining = 0
    s.contended = true
    s.paused_until = s.reset_local + P.margin
  end
end

local function observe_headerless(s, admitted_at, status)
  if s.mode == 'cold' and status ~= nil then s.mode = 'headerless' end
  if s.mode == 'headers' and s.remaining ~= nil then
    local window_start = (s.reset_local or now) - s.window
    if admitted_at >= window_start then s.remaining = math.max(0, s.remaining - 1) end
  end
  if status == 429 then
    s.throttled = s.throttled + 1
    s.paused_until = now + s.window
    if s.mode == 'headers' then s.remaining = 0 end
  end
end

local function snapshot(s)
  expire(s)
  roll(s)
  local remaining, reset_at, available
  if s.mode == 'headerless' then
    local n = 0
    for _, t in ipairs(s.log) do
      if t > now - s.window then n = n + 1 end
    end
    remaining = math.max(0, s.limit - n)
    if remaining == 0 and #s.log > 0 then reset_at = s.log[1] + s.window + P.margin end
    available = remaining
  else
    remaining = s.remaining
    if s.reset_local ~= nil then reset_at = s.reset_local + P.margin end
    if remaining ~= nil then available = math.max(0, remaining - count(s.permits)) end
  end
  local paused = nil
  if s.paused_until ~= nil and s.paused_until > now then paused = s.paused_until end
  return '{"mode":' .. cjson.encode(s.mode) .. ',"limit":' .. num(s.limit) .. ',"window":' .. num(s.window) ..
    ',"remaining":' .. jn(remaining) .. ',"available":' .. jn(available) ..
    ',"in_flight":' .. num(count(s.permits)) .. ',"reset_at":' .. jn(reset_at) ..
    ',"paused_until":' .. jn(paused) .. ',"contended":' .. jb(s.contended) ..
    ',"admitted":' .. num(s.admitted) .. ',"throttled":' .. num(s.throttled) .. '}'
end

if op == 'acquire' then
  local s = load()
  local decision = acquire(s, ARGV[8], ARGV[9])
  save(s)
  return decision
elseif op == 'observe' then
  local s = load()
  local permit = ARGV[8]
  local admitted_at = s.permits[permit]
  s.permits[permit] = nil
  if admitted_at == nil then admitted_at = now end
  local status = opt(ARGV[9])
  local h = {limit = opt(ARGV[10]), remaining = opt(ARGV[11]), reset = opt(ARGV[12]), date = opt(ARGV[13])}
  if h.limit ~= nil and h.remaining ~= nil and h.reset ~= nil then
    observe_headers(s, admitted_at, status, h)
  else
    observe_headerless(s, admitted_at, status)
  end
  save(s)
  return num(now)
elseif op == 'cancel' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local s = load()
  local permit = ARGV[8]
  local admitted_at = s.permits[permit]
  if admitted_at == nil then return 0 end
  s.permits[permit] = nil
  s.admitted = math.max(0, s.admitted - 1)
  for i, t in ipairs(s.log) do
    if t == admitted_at then
      table.remove(s.log, i)
      break
    end
  end
  save(s)
  return 1
elseif op == 'snapshot' then
  local s = load()
  local doc = snapshot(s)
  save(s)
  return {doc, num(now)}
elseif op == 'absorb' then
  -- Admissions made while Redis was unreachable (ARGV[8..], the caller's clock): count them here.
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local s = load()
  local n = 0
  if s.mode == 'headers' and s.remaining ~= nil and s.reset_local ~= nil then
    local window_start = s.reset_local - s.window
    for i = 8, #ARGV do
      if tonumber(ARGV[i]) >= window_start then n = n + 1 end
    end
    s.remaining = math.max(0, s.remaining - n)
  elseif s.mode == 'headerless' then
    for i = 8, #ARGV do
      s.log[#s.log + 1] = tonumber(ARGV[i])
      n = n + 1
    end
    table.sort(s.log)
    if #s.log > s.limit then
      local keep = {}
      for i = #s.log - s.limit + 1, #s.log do keep[#keep + 1] = s.log[i] end
      s.log = keep
    end
  end
  save(s)
  return n
end
return redis.error_reply('plumasync: unknown operation ' .. tostring(op))
"""
