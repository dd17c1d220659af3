"""``max_wait`` refuses only a wait the governor knows, never one that an answer in flight may end.

A cold group (or a contended window opening) sends one probe and holds the rest until its headers
arrive.  How long that takes is unknown, so a dashboard call with ``max_wait`` must wait for the answer
(up to its ``max_wait``), not be refused at once because the probe's own time-out lies further ahead.
"""

from __future__ import annotations

import anyio
import pytest

from plumasync import Budget, FakeClock, RateLimitExceeded
from plumasync.governor import Governor, GroupKey, Lane, RateHeaders

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0
KEY = GroupKey("voicetrends.example", "demo", "data")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_caller_behind_the_cold_probe_waits_for_its_answer_within_max_wait() -> None:
    clock = FakeClock(T0)
    governor = Governor(clock=clock)
    key = governor.register(KEY, Budget(limit=150, window=900.0).policy())
    probe = await governor.acquire(key)
    admitted: list[float] = []

    async def dashboard_call() -> None:
        await governor.acquire(key, Lane.INTERACTIVE, max_wait=2.0)
        admitted.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(dashboard_call)
        await clock.advance(0.3)  # the probe's answer comes back after 0.3 s
        await governor.observe(probe, 200, RateHeaders(limit=150, remaining=149, reset=T0 + 600, date=T0 + 0.3))
        await clock.advance(0.01)
    assert admitted == [pytest.approx(T0 + 0.3, abs=0.02)]


async def test_behind_a_probe_that_never_answers_the_caller_is_refused_at_max_wait_not_before() -> None:
    clock = FakeClock(T0)
    governor = Governor(clock=clock)
    key = governor.register(KEY, Budget(limit=150, window=900.0).policy())
    await governor.acquire(key)  # the probe, never answered
    refused: list[tuple[float, RateLimitExceeded]] = []

    async def dashboard_call() -> None:
        try:
            await governor.acquire(key, Lane.INTERACTIVE, max_wait=2.0)
        except RateLimitExceeded as exc:
            refused.append((clock.now(), exc))

    async with anyio.create_task_group() as tg:
        tg.start_soon(dashboard_call)
        for _ in range(30):
            await clock.advance(0.1)
    [(when, exc)] = refused
    assert when == pytest.approx(T0 + 2.0, abs=0.11)
    assert exc.retry_at is not None and exc.retry_at > T0 + 2.0


async def test_a_known_wait_longer_than_max_wait_is_still_refused_at_once() -> None:
    clock = FakeClock(T0)
    governor = Governor(clock=clock)
    key = governor.register(KEY, Budget(limit=150, window=900.0).policy())
    probe = await governor.acquire(key)
    await governor.observe(probe, 200, RateHeaders(limit=150, remaining=0, reset=T0 + 600, date=T0))
    with pytest.raises(RateLimitExceeded) as caught:
        await governor.acquire(key, Lane.INTERACTIVE, max_wait=2.0)
    assert clock.now() == T0
    assert caught.value.retry_at is not None and caught.value.retry_at >= T0 + 600
