"""End to end on loopback: a client on its default ``Budget(150, 900)`` against a server of 60-s windows.

The client is told nothing of the server's budget: it must learn the window and limit from the headers,
believe an earlier Reset over its own model, and shrug off one absurd Reset.  The sandbox and the client
share a ScaledClock (x20: a 60-s window passes in 3 real seconds, so that loopback latency stays as
small a share of the window as Plum's is of 15 minutes).  T_min is computed from the
*server's* windows: each window admits the limit in force when it opens.
"""

from __future__ import annotations

import math

import anyio
import pytest
from timing import assert_near_t_min

from plumasync import ScaledClock
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import enter_window, sandbox_client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

LIMIT, WINDOW, SCALE, N = 20, 60, 20.0, 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def t_min_server(start: float, requests: int, limit_at: dict[float, int]) -> float:
    """The window arithmetic on the server's windows: when the window holding request ``requests`` opens."""
    window_start = math.floor(start / WINDOW) * WINDOW
    left, first = requests, True
    while True:
        limit = LIMIT
        for since, value in sorted(limit_at.items()):
            if window_start >= since:
                limit = value
        left -= limit
        if left <= 0:
            return 0.0 if first else window_start - start
        window_start += WINDOW
        first = False


async def run(change: tuple[float, int] | None = None, engine: str = "auto",
              **knobs: object) -> tuple[float, float, dict[int, int], int]:
    clock = ScaledClock(SCALE)
    config = SandboxConfig(clock=clock, limits={"calllogs": (LIMIT, WINDOW)}, **knobs)  # type: ignore[arg-type]
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, engine=engine) as plum:  # the default Budget(150, 900)
            assert plum.engine == engine or engine == "auto"
            start = config.start_of_calls
            t0 = await enter_window(clock, WINDOW)
            ok = 0
            limit_at: dict[float, int] = {}

            async def one() -> None:
                nonlocal ok
                response = await plum.request("calllogs", "calllogs", "GET", f"calls/logs/{start}/{start + 3600}",
                                              params={"limit": 1}, auth=plum.dev_auth())
                ok += response.json()["status"] == "success"

            async def change_limit(at: float, limit: int) -> None:
                at = math.floor(t0 / WINDOW) * WINDOW + at  # a phase of the server's windows
                await clock.sleep(at - clock.now())
                server.app.set(limits={"calllogs": (limit, WINDOW)})
                limit_at[clock.now()] = limit

            async with anyio.create_task_group() as tg:
                if change is not None:
                    tg.start_soon(change_limit, *change)
                for _ in range(N):
                    tg.start_soon(one)
            elapsed = clock.now() - t0
        statuses = dict(server.app.recorder.statuses())
    # A window opening after the change admits the new limit (responses of the window in which it
    # changed still carried the old one).
    t_min = t_min_server(t0, N, {math.floor(at / WINDOW) * WINDOW + WINDOW: v for at, v in limit_at.items()})
    return elapsed, t_min, statuses, ok


SCENARIOS: dict[str, dict[str, object]] = {
    "plain": {},
    # Changed late in the third window, once its requests are answered (a limit lowered below what a
    # window already admitted would refuse requests nobody could have held back).
    "limit lowered to 12 mid-run": {"change": (WINDOW * 2.9, 12)},
    "limit raised to 30 mid-run": {"change": (WINDOW * 2.9, 30)},
    "one Reset a day ahead": {"reset_shift_requests": {5: 86_400.0}},
}


async def test_default_budget_learns_a_60_s_server_with_zero_429s_near_t_min() -> None:
    """Every scenario on both engines, side by side (the work is sparse): the time of one run."""
    results: dict[str, tuple[float, float, dict[int, int], int]] = {}

    async def scenario(name: str, knobs: dict[str, object], engine: str) -> None:
        results[f"{name}, {engine}"] = await run(engine=engine, **knobs)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        for name, knobs in SCENARIOS.items():
            for engine in ("httpx", "aiohttp"):
                tg.start_soon(scenario, name, knobs, engine)
    assert len(results) == 2 * len(SCENARIOS)
    for name, (elapsed, t_min, statuses, _) in results.items():
        print(f"\n[{name}] elapsed {elapsed:.1f} clock-s ({elapsed / SCALE:.2f} s), T_min {t_min:.1f}, "
              f"ratio {elapsed / t_min:.3f}, statuses {statuses}")
    for name, (elapsed, t_min, statuses, ok) in results.items():
        assert ok == N, name
        assert statuses.get(429, 0) == 0, name
        assert_near_t_min(elapsed, t_min, name)
