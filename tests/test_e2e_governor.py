"""End to end on loopback: the governor against the sandbox with compressed windows.

The sandbox and the client share a ScaledClock (x100): a 300-clock-second window passes in 3 real
seconds, and the Date header's one-second resolution keeps its real-world proportion to the window.
"""

from __future__ import annotations

import anyio
import pytest
from timing import assert_near_t_min

from plumasync import Budget, ScaledClock
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import enter_window, minimum_duration, sandbox_client, until_reset

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

LIMIT, WINDOW, SCALE, N = 30, 300, 100.0, 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def harvest_listing(skew: float = 0.0, tenant: int = 0) -> tuple[float, float, dict[int, int], int]:
    clock = ScaledClock(SCALE)
    config = SandboxConfig(clock=clock, skew=skew, limits={"calllogs": (LIMIT, WINDOW)},
                           tenant_spend={"calllogs": tenant} if tenant else {})
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=Budget(limit=LIMIT, window=WINDOW)) as plum:
            start = config.start_of_calls
            t0 = await enter_window(clock, WINDOW, skew=skew)
            server_t0 = t0 + skew
            ok = 0

            async def one() -> None:
                nonlocal ok
                response = await plum.request("calllogs", "calllogs", "GET", f"calls/logs/{start}/{start + 3600}",
                                              params={"limit": 1}, auth=plum.dev_auth())
                ok += response.json()["status"] == "success"

            async with anyio.create_task_group() as tg:
                for _ in range(N):
                    tg.start_soon(one)
            elapsed = clock.now() - t0
        statuses = dict(server.app.recorder.statuses())
    per_window = LIMIT - tenant
    t_min = minimum_duration(N, remaining_now=per_window, per_window=per_window, window=WINDOW,
                             until_reset=until_reset(server_t0, WINDOW))
    return elapsed, t_min, statuses, ok


SCENARIOS = {"plain": (0.0, 0), "skew +2 s": (2.0 * SCALE, 0), "tenant 5/window": (0.0, 5)}


async def test_200_concurrent_gets_with_zero_429s_near_t_min() -> None:
    """Three independent sandboxes run side by side (the work is sparse: 30 requests per 3 s)."""
    results: dict[str, tuple[float, float, dict[int, int], int]] = {}

    async def scenario(name: str, skew: float, tenant: int) -> None:
        results[name] = await harvest_listing(skew=skew, tenant=tenant)

    async with anyio.create_task_group() as tg:
        for name, (skew, tenant) in SCENARIOS.items():
            tg.start_soon(scenario, name, skew, tenant)
    for name, (elapsed, t_min, statuses, _) in results.items():
        print(f"\n[{name}] elapsed {elapsed / SCALE:.2f} s, T_min {t_min / SCALE:.2f} s, "
              f"ratio {elapsed / t_min:.3f}, statuses {statuses}")
    for name, (elapsed, t_min, statuses, ok) in results.items():
        assert ok == N, name  # nothing lost
        assert statuses.get(429, 0) == 0, name
        assert statuses.get(200, 0) == N, name
        assert_near_t_min(elapsed, t_min, name)
