"""Dashboard backends: fairness beside a bulk harvest, and DataFrame export."""

from __future__ import annotations

import math
import statistics

import anyio
import pytest

from plumasync import Budget, RateLimitExceeded, ScaledClock
from plumasync.export import to_pandas, to_polars
from plumasync.governor import Lane
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import enter_window, sandbox_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.e2e
async def test_interactive_calls_beside_a_saturating_harvest() -> None:
    """The harvest (bulk) saturates the budget; dashboard calls (interactive) get through at once.

    Timeline (clock seconds, window 300, the harvest starting just after a reset): the bulk lane spends
    its 54 of each window at once and waits for the next reset; dashboards call every 75 s (4 per window,
    under the reserve of 6); once they are done, while the harvest waits in its third window, a burst of
    18 interactive calls with ``max_wait`` takes what is left of the reserve and the rest fail fast.
    """
    scale, limit, window = 100.0, 60, 300
    clock = ScaledClock(scale)
    config = SandboxConfig(clock=clock, calls_count=200, limits={"calllogs": (limit, window)})
    start = config.start_of_calls
    end = start + int(config.calls_count * config.calls_spacing) + 1
    budget = Budget(limit=limit, window=window)  # reserve: 10% = 6 per window for interactive calls
    reserve = math.ceil(limit * 0.1)
    waits: list[float] = []
    burst_admitted: list[float] = []
    refused: list[tuple[RateLimitExceeded, float]] = []
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=budget) as plum:
            key = plum.groups["calllogs"]
            dashboards_done = anyio.Event()

            async def dashboard_call(max_wait: float | None = None, into: list[float] = waits) -> None:
                t = clock.now()
                try:
                    await plum.calllogs.logs_page(start, end, limit=1, lane=Lane.INTERACTIVE, max_wait=max_wait)
                except RateLimitExceeded as exc:
                    refused.append((exc, clock.now() - t))
                    return
                into.append(clock.now() - t)

            async def dashboards() -> None:
                await clock.sleep(20)  # the harvest has taken its share of the first window
                for _ in range(8):
                    await dashboard_call()
                    await clock.sleep(window / 4)
                dashboards_done.set()

            async def burst_while_bulk_waits() -> None:
                await dashboards_done.wait()
                for _ in range(2000):  # 20 s at most
                    snap = plum.governor.peek(key)
                    if (snap is not None and snap.waiters > 0 and snap.reset_at is not None
                            and snap.reset_at - clock.now() > 0.2 * window):
                        break
                    await anyio.sleep(0.01)
                else:
                    raise AssertionError("the harvest never waited for the budget after the dashboards")
                async with anyio.create_task_group() as burst:
                    for _ in range(3 * reserve):
                        burst.start_soon(dashboard_call, 1.0, burst_admitted)

            await enter_window(clock, window, earliest=0.02, latest=0.1)
            async with anyio.create_task_group() as tg:
                tg.start_soon(dashboards)
                tg.start_soon(burst_while_bulk_waits)
                summary = await plum.calllogs.harvest(start, end, concurrency=8).run()
        statuses = server.app.recorder.statuses()
    assert summary.complete and summary.fetched == 200
    assert statuses.get(429, 0) == 0
    waits.sort()
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
    median_ms = statistics.median(waits) / scale * 1000
    print(f"\ninteractive waits beside the harvest: n={len(waits)}, median {median_ms:.0f} ms, "
          f"p95 {p95 / scale * 1000:.0f} ms (bound: one window = {window / scale:.1f} s); burst of "
          f"{3 * reserve} while the harvest waits: {len(burst_admitted)} admitted, {len(refused)} refused "
          f"with retry_at under max_wait")
    assert len(waits) == 8
    assert p95 <= window  # within one window at worst
    assert statistics.median(waits) < 0.02 * window  # at once while the reserve holds
    # beyond the reserve, interactive calls with max_wait fail fast with retry_at instead of sleeping
    assert 0 < len(burst_admitted) <= reserve and len(refused) == 3 * reserve - len(burst_admitted)
    for exc, waited in refused:
        assert exc.retry_at is not None and exc.status is None
        assert waited < 0.1 * window  # refused at once, not after waiting for the reset


async def test_reports_export_to_pandas_and_polars() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server) as plum:
            vol = await plum.voicetrends.volume("20261101", "20261107")
            geo = await plum.voicetrends.geographic("20261101", "20261107")
            flow = await plum.voicetrends.path("20261101", "20261107")
    frame = to_pandas(vol)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(vol.series)
    assert len(frame) == 7 and frame["calls"].sum() == vol.calls.total()
    assert frame.index[0] == vol.timestamps()[0]
    polars_frame = to_polars(vol)
    assert isinstance(polars_frame, pl.DataFrame) and polars_frame.height == 7
    assert polars_frame["calls"].sum() == vol.calls.total()
    assert to_pandas(geo)["calls"].sum() == geo.total
    nodes = to_polars(flow)
    assert nodes.height == sum(1 for _ in flow.nodes()) and "visits" in nodes.columns
