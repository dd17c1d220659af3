"""One rule set for every store: memory, SQLite and Redis decide identically, and Redis degrades safely.

A randomized replay (clock steps back included) drives the three stores on one FakeClock and compares
every decision, snapshot and stored state.  Redis runs on loopback (skipped without ``redis-server``).
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from store_worker import REDIS_SERVER, REDIS_SKIP_REASON, RedisServer

from plumasync import Budget, FakeClock
from plumasync.governor import Governor, GroupKey, GroupState, Lane, MemoryStore, RateHeaders
from plumasync.governor.stores.sqlite import SQLiteStore

pytestmark = [pytest.mark.skipif(REDIS_SERVER is None, reason=REDIS_SKIP_REASON), pytest.mark.anyio]
pytest.importorskip("redis", reason="the redis package is not installed (pip install 'plumasync[redis]')")

from plumasync.governor.stores.redis import RedisStore  # noqa: E402

KEY = GroupKey("host:443", "acct", "data")
T0 = 1_700_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def redis_server():  # type: ignore[no-untyped-def]
    server = RedisServer().start()
    yield server
    server.stop()


def _headers(rng: random.Random, now: float, window: float, skew: float, limit: int) -> RateHeaders:
    kind = rng.random()
    if kind < 0.1:
        return RateHeaders()
    server = now + skew
    start = math.floor(server / window) * window
    reset = start + window
    if kind < 0.15:
        reset += 86_400  # a Reset a day ahead
    elif kind < 0.2:
        reset = start - window  # in the past
    elif kind < 0.3:
        reset -= window  # a late answer
    date = float(math.floor(server)) + (3600 if rng.random() < 0.05 else 0)
    extra = {"retry_after": float(rng.randint(1, 30))} if rng.random() < 0.1 else {}
    return RateHeaders(limit=limit, remaining=rng.randint(-1, limit + 2), reset=reset, date=date, **extra)


@pytest.mark.parametrize("seed", range(8))
async def test_memory_sqlite_and_redis_decide_identically(seed: int, redis_server: RedisServer,
                                                          tmp_path: Path) -> None:
    rng = random.Random(seed)
    limit = rng.choice([3, 10, 30])
    window = rng.choice([60.0, 900.0])
    policy = Budget(limit=limit, window=window, reserve=rng.randint(0, limit - 1)).policy()
    clock = FakeClock(T0 + rng.random() * 1000)
    skew, server_limit = rng.choice([0.0, 4.5]), rng.choice([limit, limit + 5])
    server_window = rng.choice([60.0, 900.0])
    stores = [MemoryStore(clock), SQLiteStore(tmp_path / "b.db", clock=clock),
              RedisStore.from_url(redis_server.url, clock=clock, prefix=f"r-{uuid.uuid4().hex[:8]}")]
    outstanding: list[str] = []
    granted = 0
    try:
        for step in range(250):
            roll = rng.random()
            if roll < 0.45:
                permit, lane = f"p{step}", rng.choice(list(Lane))
                answers = [await s.acquire(KEY, policy, lane, permit) for s in stores]
                assert answers[1] == answers[0] and answers[2] == answers[0], f"step {step}: acquire"
                if answers[0].decision.granted:
                    outstanding.append(permit)
                    granted += 1
            elif roll < 0.8:
                permit = outstanding.pop(rng.randrange(len(outstanding))) if outstanding else "unknown"
                status = rng.choices([200, 429, 500, None], weights=[80, 8, 4, 8])[0]
                headers = _headers(rng, clock.now(), server_window, skew, server_limit)
                for s in stores:
                    await s.observe(KEY, policy, permit, status, headers)
            elif roll < 0.87:
                permit = outstanding.pop(rng.randrange(len(outstanding))) if outstanding else "unknown"
                for s in stores:
                    await s.cancel(KEY, policy, permit)
            else:
                snaps = [await s.snapshot(KEY, policy, 1) for s in stores]
                assert snaps[1] == snaps[0] and snaps[2] == snaps[0], f"step {step}: snapshot"
            memory = stores[0].state(KEY) or GroupState.new(policy)  # type: ignore[attr-defined]
            assert (await stores[1].state(KEY) or GroupState.new(policy)) == memory, f"step {step}: sqlite"
            assert (await stores[2].state(KEY) or GroupState.new(policy)) == memory, f"step {step}: redis"
            step_kind = rng.random()
            if step_kind < 0.05:
                clock._now -= rng.random() * 30  # the clock steps back
            elif step_kind < 0.7:
                await clock.advance(rng.random() * 3)
            else:
                await clock.advance(rng.random() * window)
    finally:
        for s in stores:
            await s.aclose()
    assert granted > 5


async def _watches(store: RedisStore) -> int:
    """How many optimistic transactions (``WATCH``es) the server has seen."""
    stats = await store.redis.info("commandstats")
    return int(stats.get("cmdstat_watch", {}).get("calls", 0))


async def test_concurrent_operations_are_combined_and_decide_as_sequential_ones(redis_server: RedisServer) -> None:
    """One process's concurrent acquires, observes and cancels on a group share transactions, and every
    answer and the final state are those of the same operations applied one by one."""
    clock = FakeClock(T0)
    policy = Budget(limit=10, window=900.0, reserve=2).policy()
    store = RedisStore.from_url(redis_server.url, clock=clock, prefix=f"c-{uuid.uuid4().hex[:8]}")
    memory = MemoryStore(clock)
    h = RateHeaders(limit=10, remaining=6, reset=T0 + 500, date=T0)
    ops: list[tuple[str, Any]] = [("acquire", (Lane.INTERACTIVE, "p0")), ("acquire", (Lane.BULK, "p1"))]
    for i in range(2, 14):  # admissions in both lanes past the budget, outcomes and give-backs between
        ops.append(("acquire", (Lane.BULK if i % 3 else Lane.INTERACTIVE, f"p{i}")))
        if i % 4 == 0:
            ops.append(("observe", (f"p{i - 2}", 200, h)))
        if i % 5 == 0:
            ops.append(("cancel", (f"p{i - 1}",)))

    async def call(s: Any, name: str, args: Any) -> Any:
        if name == "acquire":
            return await s.acquire(KEY, policy, *args)
        if name == "observe":
            return await s.observe(KEY, policy, *args)
        return await s.cancel(KEY, policy, *args)

    try:
        sequential = [await call(memory, name, args) for name, args in ops]
        before = await _watches(store)
        combined: list[Any] = [None] * len(ops)

        async def one(i: int) -> None:
            combined[i] = await call(store, *ops[i])

        async with anyio.create_task_group() as tg:
            for i in range(len(ops)):
                tg.start_soon(one, i)
        transactions = await _watches(store) - before
        assert combined == sequential
        assert sum(1 for t in sequential if t is not None and t.decision.granted) >= 3
        assert sum(1 for t in sequential if t is not None and not t.decision.granted) >= 3
        assert await store.state(KEY) == memory.state(KEY)
        assert transactions <= 3, f"{len(ops)} operations took {transactions} transactions"
    finally:
        await store.aclose()


async def test_a_combined_round_that_cannot_reach_redis_sends_every_caller_to_the_fallback() -> None:
    """Redis unreachable while operations are queued together: each caller gets the fallback's answer
    (its share of the budget), none hangs and none sees a connection error."""
    server = RedisServer()  # never started: connection refused
    clock = FakeClock(T0)
    policy = Budget(limit=10, window=900.0, reserve=0).policy()
    store = RedisStore.from_url(server.url, clock=clock, expected_workers=2)
    grants: list[bool] = []

    async def one(i: int) -> None:
        grants.append((await store.acquire(KEY, policy, Lane.INTERACTIVE, f"p{i}")).decision.granted)

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    tg.start_soon(one, i)
        assert len(grants) == 12 and store.degraded
        assert 1 <= sum(grants) <= 5  # never more than this process's share (limit // expected_workers)
    finally:
        await store.aclose()


async def test_waiters_of_one_process_ask_together_in_line_order(redis_server: RedisServer) -> None:
    """Many waiters of one governor on a Redis group: their acquires are combined (a few transactions,
    not one per waiter) and granted in the order they queued."""
    clock = FakeClock(T0)
    store = RedisStore.from_url(redis_server.url, clock=clock, prefix=f"w-{uuid.uuid4().hex[:8]}")
    governor = Governor(store=store, clock=clock)
    key = governor.register(KEY, Budget(limit=30, window=900.0, reserve=0).policy())
    try:
        permit = await governor.acquire(key)
        await governor.observe(permit, 200, RateHeaders(limit=30, remaining=25, reset=T0 + 500, date=T0))
        order: list[int] = []
        before = await _watches(store)

        async def one(i: int) -> None:
            await governor.acquire(key)
            order.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
        transactions = await _watches(store) - before
        assert order == list(range(20))
        assert transactions <= 4, f"20 waiters took {transactions} transactions"
    finally:
        await store.aclose()


async def test_a_garbage_state_key_resets_the_group_with_a_warning(redis_server: RedisServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    policy = Budget(limit=10, window=900.0).policy()
    store = RedisStore.from_url(redis_server.url, clock=clock, prefix=f"g-{uuid.uuid4().hex[:8]}")
    try:
        for garbage in (b"not json", b'{"limit": "ten"}', b"[1, 2]"):
            await store.redis.set(store.state_key(KEY), garbage)
            caplog.clear()
            timed = await store.acquire(KEY, policy, Lane.INTERACTIVE, "p")
            assert timed.decision.granted  # a cold probe
            assert any(r.levelno == logging.WARNING and "unreadable" in r.getMessage() for r in caplog.records)
            assert not store.degraded
            assert await store.state(KEY) is not None
    finally:
        await store.aclose()


async def test_the_fallback_starts_from_the_last_state_read_not_an_empty_budget() -> None:
    server = RedisServer().start()
    clock = FakeClock(T0)
    policy = Budget(limit=40, window=900.0, reserve=0).policy()
    store = RedisStore.from_url(server.url, clock=clock, expected_workers=4, prefix="fb")
    try:
        assert (await store.acquire(KEY, policy, Lane.INTERACTIVE, "probe")).decision.granted
        # This window has only 6 requests left (other workers spent 34).
        await store.observe(KEY, policy, "probe", 200,
                            RateHeaders(limit=40, remaining=6, reset=T0 + 500, date=T0))
        server.stop()
        granted = 0
        for i in range(20):
            if (await store.acquire(KEY, policy, Lane.INTERACTIVE, f"f{i}")).decision.granted:
                granted += 1
                await store.observe(KEY, policy, f"f{i}", 200, RateHeaders(limit=40, remaining=5, reset=T0 + 500))
        assert store.degraded
        assert granted == 6 // 4  # its share of what is left, not 40 // 4 = 10
        await clock.advance(501 + policy.margin)  # the server's reset: a full share again
        more = sum([(await store.acquire(KEY, policy, Lane.INTERACTIVE, f"g{i}")).decision.granted
                    for i in range(20)])
        assert more == 40 // 4 - granted  # a sliding log: the outage's own admission still counts
    finally:
        await store.aclose()
        server.stop()


@pytest.mark.e2e
def test_redis_killed_mid_window_under_eight_processes_draws_no_429() -> None:
    """Eight workers spend the first window through Redis; Redis dies in the middle of it.  Each worker
    then falls back to its share of what the window had left (nothing), not to a fresh share of the
    limit, so the server refuses nothing."""
    import threading

    from store_worker import run_workers

    server = RedisServer().start()
    window, scale = 300, 100.0

    def kill_mid_window(clock: Any, go: float) -> None:
        first_reset = math.floor(go / window) * window + window
        delay = (go + (first_reset - go) * 0.5 - clock.now()) / scale
        threading.Timer(max(0.0, delay), server.stop).start()

    try:
        out = run_workers(f"{server.url}?expected_workers=8", processes=8, per_worker=8, limit=30,
                          window=window, scale=scale, timeout=60.0, on_go=kill_mid_window)
    finally:
        server.stop()
    print(f"\n[redis killed mid-window, 8 processes] statuses {dict(out.statuses)}")
    assert out.statuses.get(429, 0) == 0
    assert out.ok == 64
