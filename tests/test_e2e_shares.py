"""End to end on loopback: two consumers weighted 2:1 on one SQLite store, against the sandbox (x100 time).

Two clients (as two worker processes would, each its own store connection) saturate the Call Logs budget
of 30 requests per 300-clock-second window (3 real seconds).  Safety is asserted exactly (no 429); the
split generously (latency at x100 can move a request sent just before a reset into the next window).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import anyio
import pytest
from test_e2e_governor import sandbox_process

from plumasync import Budget, PlumClient, ScaledClock
from plumasync.testing import enter_window, sandbox_client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

LIMIT, WINDOW, SCALE = 30, 300, 100.0
WEIGHTS = {"dashboard": 2, "harvest-eu": 1}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_two_consumers_share_the_sandbox_budget_2_to_1(tmp_path: Path) -> None:
    clock = ScaledClock(SCALE)
    counts: Counter[tuple[int, str]] = Counter()
    store = f"sqlite:///{tmp_path / 'budget.db'}"
    async with sandbox_process(clock, 0.0, 0) as server:
        start = server.start_of_calls
        t0 = await enter_window(clock, WINDOW, earliest=0.02, latest=0.1)
        first = math.floor(t0 / WINDOW)
        end = (first + 2) * WINDOW  # the rest of this window and a whole one

        async def worker(plum: PlumClient, name: str) -> None:
            while clock.now() < end - 2:
                response = await plum.request("calllogs", "calllogs", "GET", f"calls/logs/{start}/{start + 3600}",
                                              params={"limit": 1}, auth=plum.dev_auth())
                assert response.status_code == 200
                counts[math.floor(clock.now() / WINDOW) - first, name] += 1

        budget = Budget(limit=LIMIT, window=WINDOW)
        async with (sandbox_client(server, clock=clock, budget=budget, store=store, consumer="dashboard",
                                   consumer_weights=WEIGHTS) as one,
                    sandbox_client(server, clock=clock, budget=budget, store=store, consumer="harvest-eu",
                                   consumer_weights=WEIGHTS) as two,
                    anyio.create_task_group() as tg):
            for _ in range(4):
                tg.start_soon(worker, one, "dashboard")
                tg.start_soon(worker, two, "harvest-eu")
    windows = [(counts[w, "dashboard"], counts[w, "harvest-eu"]) for w in range(2)]
    print(f"\nper window (dashboard, harvest-eu): {windows}, statuses {server.statuses}")
    assert server.statuses.get(429, 0) == 0
    for a, b in windows:  # the first starts 2-10 % in: its whole budget is still there
        assert 17 <= a <= 22 and 8 <= b <= 12 and a + b <= LIMIT, windows
