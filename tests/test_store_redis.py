"""The Redis store against a real ``redis-server`` on loopback (skipped when none is installed).

The Lua scripts are a port of ``GroupState``: random sequences of acquire/observe/cancel/snapshot are
replayed against the Python memory store and the Redis store on one FakeClock, and every decision,
snapshot and stored state must be identical.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from store_worker import REDIS_SERVER, REDIS_SKIP_REASON, RedisServer, run_workers, t_min
from timing import assert_near_t_min

from plumasync import Budget, FakeClock, SystemClock
from plumasync.governor import GroupKey, GroupState, Lane, MemoryStore, Policy, RateHeaders

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=REDIS_SKIP_REASON)
pytest.importorskip("redis", reason="the redis package is not installed (pip install 'plumasync[redis]')")

from plumasync.governor.stores.redis import RedisStore  # noqa: E402

KEY = GroupKey("host:443", "acct", "data")
T0 = 1_700_000_000.0
POLICY = Budget(limit=10, window=900.0, reserve=2, margin=1.0).policy()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio


@asynccontextmanager
async def redis_store(server: RedisServer, clock: Any = None, **options: Any) -> AsyncIterator[RedisStore]:
    options.setdefault("prefix", f"test-{uuid.uuid4().hex[:8]}")
    store = RedisStore.from_url(server.url, clock=clock, **options)
    try:
        yield store
    finally:
        await store.aclose()


async def warm(store: Any, clock: FakeClock, remaining: int, policy: Policy = POLICY) -> None:
    assert (await store.acquire(KEY, policy, Lane.INTERACTIVE, "probe")).decision.granted
    await store.observe(KEY, policy, "probe", 200, RateHeaders(limit=policy.limit, remaining=remaining,
                                                               reset=clock.now() + 500, date=clock.now()))


# -- the Lua port decides exactly like GroupState ------------------------------------------------------------


def _headers(rng: random.Random, now: float, window: float, skew: float, limit: int, headerful: bool,
             status: int | None) -> RateHeaders:
    if status is None or not headerful or rng.random() < 0.05:
        return RateHeaders(limit=limit) if rng.random() < 0.2 else RateHeaders()
    server = now + skew
    start = math.floor(server / window) * window
    if rng.random() < 0.1:
        start -= window  # a late answer from the previous window
    return RateHeaders(limit=limit, remaining=rng.randint(0, limit), reset=start + window,
                       date=None if rng.random() < 0.1 else float(math.floor(server)))


async def _redis_state(store: RedisStore) -> GroupState | None:
    raw = await store.redis.get(store.state_key(KEY))
    return None if raw is None else GroupState.from_json(json.loads(raw))


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(16))
async def test_lua_port_decides_exactly_like_groupstate(seed: int, redis_server: RedisServer) -> None:
    rng = random.Random(seed)
    limit = rng.choice([2, 5, 10, 30])
    window = rng.choice([60.0, 300.0, 900.0])
    policy = Budget(limit=limit, window=window, reserve=rng.randint(0, limit - 1),
                    margin=rng.choice([0.0, 0.5, 1.0])).policy()
    clock = FakeClock(T0 + rng.random() * 10_000)
    skew = rng.choice([0.0, 3.7, -2.25])
    server_limit = rng.choice([limit, limit, limit + 5])
    headerful = rng.random() < 0.75
    memory = MemoryStore(clock)
    outstanding: list[str] = []
    finished: list[str] = []
    counts = {"granted": 0, "denied": 0}
    async with redis_store(redis_server, clock) as red:
        for step in range(250):
            roll = rng.random()
            if roll < 0.45:
                permit, lane = f"p{step}", rng.choice(list(Lane))
                expected = await memory.acquire(KEY, policy, lane, permit)
                got = await red.acquire(KEY, policy, lane, permit)
                assert got == expected, f"step {step}: acquire"
                counts["granted" if expected.decision.granted else "denied"] += 1
                if expected.decision.granted:
                    outstanding.append(permit)
            elif roll < 0.78:
                if outstanding and rng.random() < 0.9:
                    permit = outstanding.pop(rng.randrange(len(outstanding)))
                else:
                    permit = rng.choice(finished) if finished else "never-granted"
                finished.append(permit)
                status = rng.choices([200, 429, 500, None], weights=[80, 6, 4, 10])[0]
                headers = _headers(rng, clock.now(), window, skew, server_limit, headerful, status)
                await memory.observe(KEY, policy, permit, status, headers)
                await red.observe(KEY, policy, permit, status, headers)
            elif roll < 0.85:
                permit = outstanding.pop(rng.randrange(len(outstanding))) if outstanding else "unknown"
                await memory.cancel(KEY, policy, permit)
                await red.cancel(KEY, policy, permit)
            else:
                waiters = rng.randint(0, 3)
                assert await red.snapshot(KEY, policy, waiters) == await memory.snapshot(KEY, policy, waiters)
            stored = await _redis_state(red)
            assert (stored or GroupState.new(policy)) == memory._states[KEY], f"step {step}: state"
            kind = rng.random()
            if kind < 0.3:
                continue
            if kind < 0.8:
                await clock.advance(rng.random() * 3)
            elif kind < 0.95:
                await clock.advance(rng.random() * window / 5)
            else:
                await clock.advance(rng.random() * window * 1.5)
    assert counts["granted"] > 5


# -- atomicity, cancel, crashed holders, values, leases --------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_acquires_never_exceed_remaining(redis_server: RedisServer) -> None:
    clock = FakeClock(T0)
    prefix = f"conc-{uuid.uuid4().hex[:8]}"
    policy = Budget(limit=100, window=900.0, reserve=0).policy()
    async with redis_store(redis_server, clock, prefix=prefix) as seed:
        await warm(seed, clock, remaining=41, policy=policy)
    grants: list[bool] = []

    async def worker(i: int) -> None:
        async with redis_store(redis_server, clock, prefix=prefix) as store:  # its own connection pool

            async def one(j: int) -> None:
                timed = await store.acquire(KEY, policy, Lane.INTERACTIVE, f"w{i}-{j}")
                grants.append(timed.decision.granted)

            async with anyio.create_task_group() as tg:
                for j in range(30):
                    tg.start_soon(one, j)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(worker, i)
    assert len(grants) == 180 and sum(grants) == 41


@pytest.mark.anyio
async def test_cancel_gives_the_permit_back(redis_server: RedisServer) -> None:
    clock = FakeClock(T0)
    async with redis_store(redis_server, clock) as store:
        await warm(store, clock, remaining=1)
        assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "a")).decision.granted
        assert not (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "b")).decision.granted
        await store.cancel(KEY, POLICY, "a")
        assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "b")).decision.granted
        assert (await store.snapshot(KEY, POLICY)).admitted == 2  # the probe and "b"


@pytest.mark.anyio
async def test_crashed_holder_releases_its_permits_after_one_window(redis_server: RedisServer) -> None:
    clock = FakeClock(T0)
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    async with redis_store(redis_server, clock, prefix=prefix) as dead:
        await warm(dead, clock, remaining=10)
        for i in range(10):
            assert (await dead.acquire(KEY, POLICY, Lane.INTERACTIVE, f"dead{i}")).decision.granted
    async with redis_store(redis_server, clock, prefix=prefix) as survivor:
        await clock.advance(POLICY.window - 1)
        assert (await survivor.snapshot(KEY, POLICY)).in_flight == 10
        await clock.advance(1)
        assert (await survivor.snapshot(KEY, POLICY)).in_flight == 0
        assert (await survivor.acquire(KEY, POLICY, Lane.INTERACTIVE, "alive")).decision.granted
        assert await survivor.keys() == [KEY]


@pytest.mark.anyio
async def test_values_and_leases_expire_by_the_store_clock(redis_server: RedisServer) -> None:
    clock = FakeClock(T0)
    async with redis_store(redis_server, clock) as a, redis_store(redis_server, clock, prefix=a.prefix) as b:
        assert await a.get_value("cred") is None
        await a.set_value("cred", b"\x00secret\xff", ttl=60)
        assert await b.get_value("cred") == b"\x00secret\xff"
        await clock.advance(60)
        assert await b.get_value("cred") is None
        await a.set_value("cred", b"v2", ttl=60)
        await b.delete_value("cred")
        assert await a.get_value("cred") is None

        assert await a.claim("auth", "A", ttl=30)
        assert not await b.claim("auth", "B", ttl=30)
        assert await a.claim("auth", "A", ttl=30)
        await b.release("auth", "B")  # not the owner: no effect
        assert not await b.claim("auth", "B", ttl=30)
        await a.release("auth", "A")
        assert await b.claim("auth", "B", ttl=30)
        await clock.advance(30)
        assert await a.claim("auth", "A", ttl=30)


@pytest.mark.anyio
async def test_server_time_and_ttls_with_the_system_clock(redis_server: RedisServer) -> None:
    async with redis_store(redis_server, SystemClock()) as store:
        before = time.time()
        timed = await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "p")
        assert timed.decision.granted and abs(timed.now - before) < 1.0  # Redis' TIME (same host here)
        ttl = await store.redis.pttl(store.state_key(KEY))
        assert 0 < ttl <= (2 * POLICY.window + 60) * 1000
        await store.set_value("cred", b"x", ttl=0.2)
        assert await store.get_value("cred") == b"x"
        await anyio.sleep(0.3)
        assert await store.get_value("cred") is None
        assert await store.redis.exists(f"{store.prefix}:value:cred") == 0  # Redis dropped it too


def test_from_url_options_and_repr(redis_server: RedisServer) -> None:
    from plumasync.client import open_store

    store = open_store(f"redis://:sekrit@127.0.0.1:{redis_server.port}/0?expected_workers=8&fallback_retry=2",
                       FakeClock(T0))
    assert isinstance(store, RedisStore) and store.shared
    assert (store.expected_workers, store.fallback_retry) == (8, 2.0)
    assert "sekrit" not in repr(store) and "sekrit" not in store._name
    assert store.state_key(KEY) == "plumasync:{host:443|acct|data}:state"  # one Cluster slot per group
    fallback = store.fallback_policy(Budget(limit=150, window=900.0).policy())
    assert (fallback.limit, fallback.reserve) == (18, 2)


# -- Redis unreachable: a bounded in-process share, one warning, a bounded retry -------------------------


@pytest.mark.anyio
async def test_redis_stopped_mid_run_falls_back_then_recovers(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer().start()
    clock = FakeClock(T0)
    policy = Budget(limit=20, window=900.0, reserve=0).policy()  # fallback share: 20 // 4 = 5 per window
    caplog.set_level(logging.INFO, logger="plumasync")
    try:
        async with redis_store(server, clock, expected_workers=4, fallback_retry=5.0) as store:
            await warm(store, clock, remaining=19, policy=policy)
            server.stop()  # mid-run

            granted = []
            for i in range(12):
                timed = await store.acquire(KEY, policy, Lane.INTERACTIVE, f"f{i}")
                if timed.decision.granted:
                    granted.append(f"f{i}")
                    await store.observe(KEY, policy, f"f{i}", 200,
                                        RateHeaders(limit=20, remaining=18, reset=clock.now() + 500))
                await clock.advance(0.1)
            assert store.degraded
            # The share of what the window had left when Redis went (19 // 4), not a fresh limit // 4,
            # whatever the server's Remaining says meanwhile.
            assert len(granted) == 4
            assert not timed.decision.granted and timed.decision.retry_at is not None
            warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "unreachable" in r.msg]
            assert len(warned) == 1
            assert "sekrit" not in caplog.text

            server.start()  # back on the same port, empty
            async with redis_store(server, clock, prefix=store.prefix) as other:
                await warm(other, clock, remaining=19, policy=policy)  # another worker opened the window
            await clock.advance(1.0)  # < fallback_retry since the last failed attempt: not retried yet
            await store.acquire(KEY, policy, Lane.INTERACTIVE, "still-local")
            assert store.degraded
            await clock.advance(5.0)
            timed = await store.acquire(KEY, policy, Lane.INTERACTIVE, "shared-again")
            assert not store.degraded and timed.decision.granted
            snap = await store.snapshot(KEY, policy)
            # Redis learnt of the 4 requests admitted during the outage (+ "still-local" was refused).
            assert snap.remaining == 19 - 4 and snap.in_flight == 1
            assert any("reachable again" in r.message for r in caplog.records)
            assert len([r for r in caplog.records if "unreachable" in r.message]) == 1
    finally:
        server.stop()


@pytest.mark.anyio
async def test_unreachable_from_the_start_never_raises() -> None:
    server = RedisServer()  # never started: connection refused
    clock = FakeClock(T0)
    async with redis_store(server, clock, expected_workers=2) as store:
        assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "p")).decision.granted
        await store.observe(KEY, POLICY, "p", 200, RateHeaders())
        assert (await store.snapshot(KEY, POLICY)).limit == 5
        await store.set_value("v", b"1", 10)
        assert await store.get_value("v") == b"1"
        assert await store.claim("l", "me", 10)
        assert await store.keys() == [KEY]
        started = time.monotonic()
        for i in range(50):  # no reconnect storm: Redis is retried at most every 5 clock seconds
            await store.acquire(KEY, POLICY, Lane.INTERACTIVE, f"q{i}")
        assert time.monotonic() - started < 0.5


# -- four OS processes, one sandbox account, one Redis ----------------------------------------------------

PER_WORKER, WORKERS, LIMIT, WINDOW = 20, 4, 30, 300


@pytest.mark.e2e
def test_four_processes_share_one_budget(redis_server: RedisServer) -> None:
    # Time runs x50 (a window is 6 real seconds): each admission is a WATCH/MULTI transaction of a few
    # real milliseconds on a loaded machine, which x100 would turn into a visible share of the window.
    out = run_workers(redis_server.url, processes=WORKERS, per_worker=PER_WORKER, limit=LIMIT, window=WINDOW,
                      scale=50.0, timeout=50.0)
    best = t_min(WORKERS * PER_WORKER, go=out.go, limit=LIMIT, window=WINDOW)
    print(f"\n[redis x{WORKERS}] elapsed {out.elapsed:.1f} clock-s, T_min {best:.1f}, "
          f"ratio {out.elapsed / best:.3f}, statuses {dict(out.statuses)}")
    assert out.statuses.get(429, 0) == 0
    assert out.ok == WORKERS * PER_WORKER
    assert_near_t_min(out.elapsed, best)


@pytest.mark.e2e
def test_a_sigkilled_process_holds_the_budget_at_most_one_window(redis_server: RedisServer) -> None:
    out = run_workers(redis_server.url, processes=WORKERS, per_worker=PER_WORKER, limit=LIMIT, window=WINDOW,
                      kill_one=True)
    survivors = (WORKERS - 1) * PER_WORKER
    best = t_min(survivors, go=out.go, limit=LIMIT, window=WINDOW)
    print(f"\n[redis x{WORKERS}, one SIGKILLed holding {out.held} permits] "
          f"elapsed {out.elapsed:.1f} clock-s, T_min {best:.1f} (+ one window {best + WINDOW:.1f}), "
          f"statuses {dict(out.statuses)}")
    assert out.killed == 1 and out.held >= 1
    assert out.statuses.get(429, 0) == 0
    assert out.ok == survivors
    assert_near_t_min(out.elapsed, best + WINDOW)


def test_trio_gets_a_clear_error(redis_server: RedisServer) -> None:
    from plumasync.errors import ConfigurationError

    async def main() -> None:
        store = RedisStore.from_url(redis_server.url, clock=FakeClock(T0))
        with pytest.raises(ConfigurationError, match="asyncio"):
            await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "p")

    anyio.run(main, backend="trio")
