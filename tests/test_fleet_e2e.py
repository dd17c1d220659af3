"""A fleet of worker processes on one store pays one upstream request per report, even when one dies.

Real processes (``sys.executable``), a sandbox on loopback, SQLite and a real redis-server.  The bounds
are generous real-time bounds: the checks are request counts at the sandbox and callers that never fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from plumasync import PlumClient
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e

#: Three distinct reports (weeks entirely in the past: cached for a day).
WEEKS = [("20261101", "20261107"), ("20261108", "20261114"), ("20261115", "20261121")]

WORKER = """
import anyio, json, sys
from plumasync import PlumClient

async def main() -> None:
    url, store, per_report = sys.argv[1], sys.argv[2], int(sys.argv[3])
    weeks = json.loads(sys.argv[4])
    async with PlumClient(login="demo", password="demo-password", voicetrends_url=url + "/api/",
                          calllogs_url=url + "/ws/", store=store) as plum:
        await plum.voicetrends.credentials()   # authenticated (once, shared) before the race
        print("ready", flush=True)
        sys.stdin.readline()   # "go": every worker is released at the same moment
        totals, errors = [], []

        async def one(start: str, end: str) -> None:
            try:
                totals.append((await plum.voicetrends.volume(start, end)).calls.total())
            except Exception as exc:
                errors.append(repr(exc))

        async with anyio.create_task_group() as tg:
            for _ in range(per_report):
                for start, end in weeks:
                    tg.start_soon(one, start, end)
        print(json.dumps({"ok": len(totals), "errors": errors, "totals": sorted(set(totals)),
                          "stats": plum.cache_stats().to_dict()}), flush=True)

anyio.run(main)
"""


def spawn(server: SandboxServer, store: str, per_report: int, weeks: list[tuple[str, str]]) -> subprocess.Popen[str]:
    """One worker process, started and waiting for its ``go`` line."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER, server.url, store, str(per_report), json.dumps(weeks)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def data_requests(server: SandboxServer) -> int:
    return server.app.recorder.count(path_prefix="/api/volume/")


def fleet_stats(server: SandboxServer, store: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        async with PlumClient(login="demo", password="demo-password", voicetrends_url=server.url + "/api/",
                              calllogs_url=server.url + "/ws/", store=store) as plum:
            return (await plum.fetch_cache_stats()).to_dict()

    return anyio.run(read)


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path / 'fleet.db'}" if kind == "sqlite" else str(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_four_workers_at_once_pay_one_request_per_report(kind: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """4 processes x 60 calls (3 reports x 20) released together: exactly 3 upstream requests."""
    store = store_url(kind, tmp_path, request)
    with SandboxServer(SandboxConfig(latency=0.2)) as server:  # a realistic upstream: 200 ms per request
        procs = [spawn(server, store, 20, WEEKS) for _ in range(4)]
        for proc in procs:
            go(proc)
        results = [result(proc) for proc in procs]
        assert [r["errors"] for r in results] == [[]] * 4
        assert [r["ok"] for r in results] == [60] * 4
        assert len({json.dumps(r["totals"]) for r in results}) == 1  # every worker saw the same three reports
        assert data_requests(server) == 3  # one per report across the fleet (main paid 10 on SQLite, 12 on Redis)
        fleet = fleet_stats(server, store)
    assert fleet["hits"] + fleet["misses"] == 240
    assert fleet["upstream"] == 3
    assert fleet["misses"] - fleet["coalesced"] == 3  # every other miss was served by somebody's request


def arrived(server: SandboxServer) -> int:
    """Requests that reached the sandbox (counted on arrival: the recorder logs them once answered)."""
    return server.app.requests_seen


def lease_holder_started(server: SandboxServer, before: int, deadline: float) -> None:
    while arrived(server) < before + 1:
        assert time.monotonic() < deadline, "the first worker never sent its request"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_killed_lease_holder_is_replaced_by_exactly_one_worker(kind: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """The holder is SIGKILLed mid-request: one other worker fetches once its lease lapses; nobody fails."""
    store = store_url(kind, tmp_path, request)
    week = [WEEKS[0]]
    with SandboxServer(SandboxConfig()) as server:
        warm = spawn(server, store, 1, [WEEKS[2]])  # authenticates (shared credentials) with another report
        go(warm)
        result(warm)
        before = arrived(server)  # credentials are shared from now on: every later request is a data one
        holder = spawn(server, store, 1, week)
        waiters = [spawn(server, store, 5, week) for _ in range(3)]
        server.app.set(latency=15.0)  # the holder's request will hang at the sandbox
        go(holder)
        lease_holder_started(server, before, time.monotonic() + 60)
        for proc in waiters:
            go(proc)
        time.sleep(1.0)  # the waiters find the lease taken and wait for the entry
        assert arrived(server) == before + 1
        server.app.set(latency=0.0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        started = time.monotonic()
        results = [result(proc) for proc in waiters]
        took = time.monotonic() - started
        assert [r["errors"] for r in results] == [[]] * 3
        assert [r["ok"] for r in results] == [5] * 3
        assert arrived(server) == before + 2  # the killed one, then exactly one retry by another worker
        assert sum(int(r["stats"]["upstream"]) for r in results) == 1  # type: ignore[index]
    print(f"\n{kind}: the waiters finished {took:.1f} s after the holder was killed (lease: 5 s)")
    assert took < 30  # the lease lapses within LEASE_TTL (5 s); generous under load


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_fleet_counters_add_up_in_every_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from plumasync.client import open_store
    from plumasync.governor.clock import SystemClock

    url = None if kind == "memory" else store_url(kind, tmp_path, request)

    async def run() -> dict[str, int]:
        store = open_store(url, SystemClock())
        try:
            await store.add_counts("vt-stats|x", {"hits": 2, "misses": 1, "stale": 0})
            await store.add_counts("vt-stats|x", {"hits": 3})
            assert await store.get_counts("vt-stats|y") == {}
            return await store.get_counts("vt-stats|x")
        finally:
            await store.aclose()

    assert anyio.run(run) == {"hits": 5, "misses": 1}


def test_an_exhausted_budget_serves_stale_at_once_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    """Budget spent at the sandbox, ``max_wait=0.5``: the expired cached report comes back stale at once."""
    from plumasync import Budget, CachePolicy, RateLimitExceeded
    from plumasync.testing import sandbox_client

    async def run() -> float:
        with SandboxServer(SandboxConfig(limits={"data": (2, 900.0)})) as server:
            async with sandbox_client(server, budget=Budget(limit=2, window=900.0), cache=CachePolicy(past=0.3),
                                      stale=True) as plum:
                vt = plum.voicetrends
                first = await vt.volume(*WEEKS[0])
                await vt.volume(*WEEKS[1])  # the window's two requests are spent
                await anyio.sleep(0.5)  # the first report is no longer fresh, only kept
                started = time.monotonic()
                report = await vt.volume(*WEEKS[0], max_wait=0.5)
                took = time.monotonic() - started
                assert report.stale and report.fetched_at == first.fetched_at and report == first
                with pytest.raises(RateLimitExceeded) as caught:  # nothing cached: as before
                    await vt.volume(*WEEKS[2], max_wait=0.5)
                assert caught.value.retry_at is not None
                assert data_requests(server) == 2
                return took

    took = anyio.run(run)
    with capsys.disabled():
        print(f"\nstale answer with the budget spent: {took * 1000:.1f} ms (max_wait 0.5 s)")
    assert took < 0.4  # never waited for max_wait; measured a few ms (generous bound for a loaded machine)
