"""Dashboard backends: fairness beside a bulk harvest, and DataFrame export."""

from __future__ import annotations

import math
import statistics

import anyio
import pytest

from plumasync import Budget, RateLimitExceeded
from plumasync.governor import Lane
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import ScaledClock, enter_window, sandbox_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.e2e
async def test_interactive_calls_beside_a_saturating_harvest() -> None:
    """The harvest (bulk) saturates the budget; dashboard calls (interactive) get through at once."""
    scale, limit, window = 100.0, 60, 300
    clock = ScaledClock(scale)
    config = SandboxConfig(clock=clock, calls_count=150, limits={"calllogs": (limit, window)})
    start = config.start_of_calls
    end = start + int(config.calls_count * config.calls_spacing) + 1
    budget = Budget(limit=limit, window=window)  # reserve: 10% = 6 per window for interactive calls
    waits: list[float] = []
    refused: list[RateLimitExceeded] = []
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=budget) as plum:

            async def dashboard_call(max_wait: float | None = None) -> None:
                t = clock.now()
                try:
                    await plum.calllogs.logs_page(start, end, limit=1, lane=Lane.INTERACTIVE, max_wait=max_wait)
                except RateLimitExceeded as exc:
                    refused.append(exc)
                    assert clock.now() - t < 1.0  # failed fast instead of sleeping
                    return
                waits.append(clock.now() - t)

            async def dashboards() -> None:
                await clock.sleep(20)  # the harvest has taken its share of the first window
                for _ in range(8):  # 2 to 3 per window, under the reserve
                    await dashboard_call()
                    await clock.sleep(window / 2.5)

            async with anyio.create_task_group() as tg:
                tg.start_soon(dashboards)
                summary = await plum.calllogs.harvest(start, end, concurrency=8).run()

            # A burst larger than any window allows, clear of a reset: whatever the window has left is
            # admitted, and the calls beyond it fail fast with retry_at instead of sleeping.
            await enter_window(clock, window, latest=0.5)
            before = len(waits)
            burst_size = limit + 3 * math.ceil(limit * 0.1)
            async with anyio.create_task_group() as burst:
                for _ in range(burst_size):
                    burst.start_soon(dashboard_call, 1.0)
            burst_admitted = len(waits) - before
            del waits[before:]
        statuses = server.app.recorder.statuses()
    assert summary.complete and summary.fetched == 150
    assert statuses.get(429, 0) == 0
    waits.sort()
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
    median_ms = statistics.median(waits) / scale * 1000
    print(f"\ninteractive waits beside the harvest: n={len(waits)}, median {median_ms:.0f} ms, "
          f"p95 {p95 / scale * 1000:.0f} ms (bound: one window = {window / scale:.1f} s); "
          f"{len(refused)} refused with retry_at under max_wait")
    assert len(waits) >= 8
    assert p95 <= window  # within one window at worst
    assert statistics.median(waits) < 0.02 * window  # at once while the reserve holds
    assert burst_admitted <= limit and len(refused) == burst_size - burst_admitted >= burst_size - limit
    assert all(exc.retry_at is not None and exc.status is None for exc in refused)


async def test_reports_export_to_pandas_and_polars() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server) as plum:
            vol = await plum.voicetrends.volume("20261101", "20261107")
            geo = await plum.voicetrends.geographic("20261101", "20261107")
            flow = await plum.voicetrends.path("20261101", "20261107")
    frame = vol.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(vol.series)
    assert len(frame) == 7 and frame["calls"].sum() == vol.calls.total()
    assert frame.index[0] == vol.timestamps()[0]
    polars_frame = vol.to_polars()
    assert isinstance(polars_frame, pl.DataFrame) and polars_frame.height == 7
    assert polars_frame["calls"].sum() == vol.calls.total()
    assert geo.to_pandas()["calls"].sum() == geo.total
    nodes = flow.to_polars()
    assert nodes.height == sum(1 for _ in flow.nodes()) and "visits" in nodes.columns
