"""Fair shares across processes: two governors (as two processes would) on one SQLite file or one Redis.

Each consumer runs in its own governor on its own store object, so nothing but the stored group state
tells one about the other.  Time is a fake clock that jumps only when every worker sleeps on it (the
stores' I/O takes real time), so the runs are deterministic.  Windows of 90 s keep the shared stores'
polling (every 0.9 clock seconds) to a few hundred transactions a window.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fakes import FixedWindowServer
from shares_sim import T0, QuietClock, Side, per_window, register, saturate
from store_worker import REDIS_SERVER, REDIS_SKIP_REASON, RedisServer

from plumasync import Budget, FakeClock
from plumasync.governor import Consumer, Governor, GroupKey, Lane, MemoryStore, RateHeaders, Store
from plumasync.governor.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

WINDOW = 90
A, B = Consumer("dashboard", 2), Consumer("harvest-eu", 1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio


@pytest.fixture(scope="module")
def redis_url() -> AsyncIterator[str]:
    if REDIS_SERVER is None:
        pytest.skip(REDIS_SKIP_REASON)
    pytest.importorskip("redis", reason="the redis package is not installed (pip install 'plumasync[redis]')")
    server = RedisServer().start()
    yield server.url  # type: ignore[misc]
    server.stop()


@asynccontextmanager
async def stores(make: Callable[[QuietClock], Store], clock: QuietClock) -> AsyncIterator[list[Store]]:
    pair = [make(clock), make(clock)]
    try:
        yield pair
    finally:
        for store in pair:
            await store.aclose()


async def two_processes(make: Callable[[QuietClock], Store], named: bool = True) -> list[tuple[int, ...]]:
    """Dashboard (weight 2) and harvest-eu (weight 1) saturating 150 per 90 s from two governors; harvest-eu
    goes idle after the fourth window (the first is 80 s long: the run starts 10 s into it)."""
    clock = QuietClock(T0)
    server = FixedWindowServer(clock, limit=150, window=WINDOW)
    logging.getLogger("plumasync").setLevel(logging.ERROR)  # the waits are the point: no warning per wait
    try:
        async with stores(make, clock) as (one, two):
            governors = [register(Governor(store=s, clock=clock), limit=150, window=float(WINDOW)) for s in (one, two)]
            sides = [Side("dashboard", governors[0], A if named else None, workers=4),
                     Side("harvest-eu", governors[1], B if named else None, workers=4, stop=T0 + 4 * WINDOW - 11)]
            counts = await saturate(clock, server, sides, end=T0 + 6 * WINDOW - 12)
    finally:
        logging.getLogger("plumasync").setLevel(logging.NOTSET)
    assert 429 not in server.statuses()
    return per_window(counts, ["dashboard", "harvest-eu"], 6)


def check_two_to_one(windows: list[tuple[int, ...]]) -> None:
    for a, b in windows[:4]:
        assert abs(a - 100) <= 1 and abs(b - 50) <= 1 and a + b == 150, windows
    assert windows[4:] == [(150, 0)] * 2, windows


async def test_two_processes_on_one_sqlite_file_share_2_to_1(tmp_path: Path) -> None:
    windows = await two_processes(lambda clock: SQLiteStore(tmp_path / "budget.db", clock=clock))
    check_two_to_one(windows)


async def test_two_processes_on_one_redis_share_2_to_1(redis_url: str) -> None:
    from plumasync.governor.stores.redis import RedisStore

    prefix = f"shares-{uuid.uuid4().hex[:8]}"
    windows = await two_processes(lambda clock: RedisStore.from_url(redis_url, clock=clock, prefix=prefix))
    check_two_to_one(windows)


@pytest.mark.parametrize("seed", range(2))
async def test_memory_sqlite_and_redis_keep_the_same_book(seed: int, redis_url: str, tmp_path: Path) -> None:
    """A random replay of acquires by three consumers (and unnamed ones), outcomes and give-backs: every
    store decides alike and stores the same state, book included."""
    from plumasync.governor.stores.redis import RedisStore

    rng = random.Random(seed)
    clock = FakeClock(T0 + rng.random() * 100)
    policy = Budget(limit=12, window=60.0, reserve=2, margin=1.0).policy()
    key = GroupKey("host:443", "acct", "data")
    consumers = [None, A, B, Consumer("eu", 3)]
    all_stores = [MemoryStore(clock), SQLiteStore(tmp_path / "b.db", clock=clock),
                  RedisStore.from_url(redis_url, clock=clock, prefix=f"book-{uuid.uuid4().hex[:8]}")]
    outstanding: list[str] = []
    try:
        for step in range(150):
            roll = rng.random()
            if roll < 0.55:
                permit, lane, who = f"p{step}", rng.choice(list(Lane)), rng.choice(consumers)
                answers = [await s.acquire(key, policy, lane, permit, who) for s in all_stores]
                assert answers[1:] == [answers[0]] * 2, f"step {step}"
                if answers[0].decision.granted:
                    outstanding.append(permit)
            elif roll < 0.9 and outstanding:
                permit = outstanding.pop(rng.randrange(len(outstanding)))
                now = clock.now()
                start = math.floor(now / 60) * 60
                headers = RateHeaders(limit=12, remaining=rng.randint(0, 12), reset=start + 60, date=float(int(now)))
                for s in all_stores:
                    await s.observe(key, policy, permit, 200, headers)
            elif outstanding:
                permit = outstanding.pop(rng.randrange(len(outstanding)))
                for s in all_stores:
                    await s.cancel(key, policy, permit)
            states = [all_stores[0].state(key), await all_stores[1].state(key),  # type: ignore[attr-defined]
                      await all_stores[2].state(key)]  # type: ignore[attr-defined]
            assert states[1:] == [states[0]] * 2, f"step {step}"
            await clock.advance(rng.random() * (20 if rng.random() < 0.2 else 2))
        assert states[0] is not None and states[0].shares is not None and len(states[0].shares.consumers) >= 2
    finally:
        for s in all_stores:
            await s.aclose()
