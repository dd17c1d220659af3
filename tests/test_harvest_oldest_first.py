"""Oldest first, the plan, and expiry: a backlog larger than the budget's reach before retention."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import entry

from plumasync import Budget, ScaledClock
from plumasync.harvest_order import ListedCalls
from plumasync.harvest_plan import forecast
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import enter_window, minimum_duration, sandbox_client

pytestmark = [pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"




def test_listed_calls_come_back_oldest_first_once() -> None:
    calls = ListedCalls()
    try:
        assert calls.add([entry(i, 10_000 - i) for i in range(1200)]) == 1200  # newest first, as Plum lists
        assert calls.add([entry(5, 9_995), entry(7, 9_993)]) == 0  # a shifted listing: never kept twice
        seen: list[int] = []
        after = None
        while chunk := calls.chunk_after(after, size=100):
            after = (chunk[-1].start_ts, chunk[-1].log_id)
            seen.extend(e.start_ts for e in chunk)
        assert seen == sorted(seen) and len(seen) == 1200
        assert list(calls.starts()) == seen
    finally:
        calls.close()


def test_forecast_skips_what_expires_before_its_turn() -> None:
    # 10 requests per 100 s window, 5 left now, window resets in 50 s; logs kept 200 s.
    def eta(k: int) -> float:
        return minimum_duration(k, remaining_now=5, per_window=10, window=100, until_reset=50)

    starts = [-190, -180, -170, -160, -150, -140, -100, -50, 0, 10]  # now = 0
    requests, expiring, first, finish = forecast(starts, now=0.0, retention=200.0, eta=eta)
    # Five go now (-190..-150); at t=50 the next window opens: -140 (expired at 60) goes, then the rest.
    assert (requests, expiring, first, finish) == (10, 0, None, 50.0)
    requests, expiring, first, finish = forecast(starts, now=0.0, retention=195.0, eta=eta)
    # Kept 195 s: -150 fits now; -140 expires at 55, after the reset at 50: fetched.
    assert (requests, expiring) == (10, 0)
    requests, expiring, first, finish = forecast([-199, -198, -197, -196, -195, -194, -193], now=0.0,
                                                 retention=200.0, eta=eta)
    # Five now; the last two expire at 6 and 7 s, before the next window at 50 s.
    assert (requests, expiring, first, finish) == (5, 2, 6.0, 0.0)


async def test_a_newest_first_listing_is_fetched_oldest_first(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=300, newest_first=True, limits={"calllogs": (1000, 300)})
    start = config.start_of_calls
    with SandboxServer(config) as server:
        async with sandbox_client(server, budget=Budget(limit=1000, window=300, reserve=0)) as plum:
            starts = [item.entry.start_ts async for item in
                      plum.calllogs.harvest(start, start + 300 * 60 + 1, sink=tmp_path / "calls.db", page_size=100,
                                            concurrency=1)]
    assert len(starts) == 300
    assert starts == sorted(starts)  # the server listed them newest first


async def test_backlog_three_times_the_reach_is_fetched_oldest_first_as_planned(tmp_path: Path) -> None:
    scale, limit, window = 600.0, 10, 300
    retention = 30 * window  # the budget reaches 300 calls before retention takes them
    count = 900  # a backlog three times that reach
    clock = ScaledClock(scale)
    await enter_window(clock, window)
    now = int(clock.now())
    config = SandboxConfig(clock=clock, calls_start=now - retention + 1800, calls_count=count,
                           calls_spacing=(retention - 1800) / count, limits={"calllogs": (limit, window)},
                           retention=retention, newest_first=True)
    start, end = config.start_of_calls, now + 1
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=Budget(limit=limit, window=window, reserve=0)) as plum:
            plan = await plum.calllogs.harvest(start, end, sink=tmp_path / "calls.db", retention=retention).plan()
            assert not (tmp_path / "calls.db").exists()  # a plan writes nothing
            assert plan.listed == count and plan.stored == 0 and plan.pages == 1
            assert server.app.recorder.count(path_prefix="/ws/calls/log/") == 0
            starts: list[int] = []
            async with plum.calllogs.harvest(start, end, sink=tmp_path / "calls.db", retention=retention,
                                             concurrency=1) as harvest:
                async for item in harvest:
                    starts.append(item.entry.start_ts)
            finished = clock.now()
            summary = harvest.summary()
    # At any moment every fetched log is older than every one still to fetch: one worker, ascending.
    assert starts == sorted(starts)
    assert summary.complete and summary.failed == 0
    assert summary.fetched + summary.expired == summary.total == plan.listed
    assert summary.expired >= count // 2  # the backlog really outran the budget
    assert summary.requests - summary.pages - summary.fetched <= limit  # at most a window spent on the dying
    last_fetch = max(plan.now, finished)
    print(f"\nplan: {plan.requests} requests, {plan.expiring} expiring from {plan.expiring_from}, "
          f"finish +{plan.finish_in:.0f} s; run: {summary.fetched} fetched, {summary.expired} expired, "
          f"finished +{finished - plan.now:.0f} s, {summary.requests} requests")
    calls_per_window = window / config.calls_spacing
    assert abs(plan.expiring - summary.expired) <= max(limit, calls_per_window)
    assert abs(plan.requests - summary.fetched) <= max(limit, calls_per_window)
    assert abs(plan.finish - last_fetch) <= window
    assert harvest.forecast is not None and harvest.forecast.listed == count
