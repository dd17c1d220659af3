"""Follow mode on a sandbox that generates calls as time passes (compressed time)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plumasync import Budget, ScaledClock
from plumasync.follow import Follow
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import enter_window, sandbox_client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_follow_five_windows_stores_every_call_once_for_listings_plus_details(tmp_path: Path) -> None:
    scale, limit, window = 300.0, 150, 300
    clock = ScaledClock(scale)
    await enter_window(clock, window)
    now = int(clock.now())
    # A call every 20 s: 15 new ones per window, 30 already there when following starts.
    config = SandboxConfig(clock=clock, live=True, calls_start=now - 600, calls_count=10_000, calls_spacing=20,
                           limits={"calllogs": (limit, window)})
    db = tmp_path / "calls.db"
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=Budget(limit=limit, window=window, reserve=0)) as plum:
            follower = Follow(plum, now - 600, out=db, cycles=5, lookback=120)
            totals = await follower.run()
            resumed = Follow(plum, now - 600, out=db, cycles=1, lookback=120)
            more = await resumed.run()
        recorder = server.app.recorder
        details = recorder.count(path_prefix="/ws/calls/log/")
        listings = recorder.count(path_prefix="/ws/calls/logs")
        assert totals.listed_until is not None and more.listed_until is not None
        expected = server.app.expected_ids(now - 600, more.listed_until)
    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT log_id FROM calls")]
    assert totals.cycles == 5 and totals.failed == 0
    assert sorted(ids) == expected and len(set(ids)) == len(ids)  # every call before the last listing, once
    assert details == len(ids)  # never fetched twice, look-back included
    assert listings == totals.pages + more.pages == 6  # one listing request per window
    assert recorder.count(path_prefix="/ws/calls/") == listings + details
    assert follower.watermark() == more.listed_until  # resumable from the sink's watermark
    assert len(expected) >= 30 + 3 * 15  # calls kept arriving: five cycles span at least four windows
