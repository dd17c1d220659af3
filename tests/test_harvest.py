"""Harvest: calls/logs → calls/log fan-out against the sandbox on loopback.

The core scenarios run on both engines (the ``engine`` fixture); the rest on the default one (aiohttp on
asyncio when installed)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest
from fakes import period
from timing import assert_near_t_min

from plumasync import Budget, ConfigurationError, RetryPolicy, ScaledClock, ValidationError
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.sinks import JSONLSink, SQLiteSink
from plumasync.testing import enter_window, minimum_duration, sandbox_client, until_reset

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"



def detail_requests(server: SandboxServer) -> int:
    return server.app.recorder.count(path_prefix="/ws/calls/log/")


async def test_harvest_1000_logs_over_several_windows(tmp_path: Path, engine: str) -> None:
    scale, limit, window = 100.0, 150, 300
    clock = ScaledClock(scale)
    config = SandboxConfig(clock=clock, calls_count=1000, limits={"calllogs": (limit, window)})
    start, end = period(config)
    with SandboxServer(config) as server:
        async with sandbox_client(server, clock=clock, budget=Budget(limit=limit, window=window, reserve=0)) as plum:
            t0 = await enter_window(clock, window)
            seen: list[int] = []
            async with plum.calllogs.harvest(start, end, sink=tmp_path / "calls.db", concurrency=16) as harvest:
                async for item in harvest:
                    seen.append(item.log_id)
            elapsed = clock.now() - t0
            summary = harvest.summary()
        statuses = server.app.recorder.statuses()
        expected = server.app.expected_ids(start, end)
        requests = summary.requests
        t_min = minimum_duration(requests, remaining_now=limit, per_window=limit, window=window,
                                 until_reset=until_reset(t0, window))
        print(f"\n[{engine}] harvest of {len(seen)} logs: {requests} requests, elapsed {elapsed / scale:.2f} s, "
              f"T_min {t_min / scale:.2f} s, ratio {elapsed / t_min:.3f}, statuses {dict(statuses)}")
        assert len(expected) == 1000
        assert sorted(seen) == expected  # every log exactly once
        assert statuses.get(429, 0) == 0
        assert summary.complete and summary.fetched == 1000 and summary.failed == 0
        assert requests == 1001  # one listing page + one detail per log
        assert_near_t_min(elapsed, t_min)
        sink = SQLiteSink(tmp_path / "calls.db")
        rows = {row["log_id"]: row for row in sink.rows()}
        sink.close()
        assert sorted(rows) == expected
        for log_id in expected[::97]:  # content equals the sandbox's
            record = server.app.expected_log(log_id)
            listing, detail = record.listing(), record.detail()
            row = rows[log_id]
            assert row["detail"] == detail["log"]
            assert (row["dest"], row["src"], row["type"]) == (listing["dest"], listing["src"], listing["type"])
            assert (str(row["start"]), str(row["end"]), row["session_id"]) == (
                listing["start"], listing["end"], listing["session_id"])


async def test_rerun_fetches_only_what_is_missing(tmp_path: Path, engine: str) -> None:
    config = SandboxConfig(calls_count=120)
    start, end = period(config)
    db = tmp_path / "calls.db"
    with SandboxServer(config) as server:
        async with sandbox_client(server) as plum:
            async with plum.calllogs.harvest(start, end, sink=db, concurrency=4) as harvest:
                taken = 0
                async for _ in harvest:
                    taken += 1
                    if taken == 50:
                        break  # stop early: what was handed out is stored
            stored = SQLiteSink(db)
            kept = stored.count()
            stored.close()
            assert kept >= 50
            before = detail_requests(server)
            summary = await plum.calllogs.harvest(start, end, sink=db).run()
            spent = detail_requests(server) - before
        assert summary.skipped == kept and summary.fetched == 120 - kept
        assert spent == 120 - kept  # zero detail requests on logs already stored
        again = await _rerun(server, start, end, db)
        assert again == (0, 120)


async def _rerun(server: SandboxServer, start: int, end: int, db: Path) -> tuple[int, int]:
    async with sandbox_client(server) as plum:
        summary = await plum.calllogs.harvest(start, end, sink=db).run()
    return summary.fetched, summary.skipped


async def test_failing_item_is_reported_and_the_rest_go_on(tmp_path: Path, engine: str) -> None:
    config = SandboxConfig(calls_count=30, fail_requests={5})  # request 5 is a detail fetch
    start, end = period(config)
    with SandboxServer(config) as server:
        async with sandbox_client(server, retry=RetryPolicy(attempts=1)) as plum:
            harvest = plum.calllogs.harvest(start, end, sink=tmp_path / "c.db", concurrency=1)
            summary = await harvest.run()
            assert summary.failed == 1 and summary.fetched == 29
            assert len(harvest.failures) == 1 and harvest.failures[0].log_id is not None
            retry = await plum.calllogs.harvest(start, end, sink=tmp_path / "c.db").run()
        assert (retry.fetched, retry.skipped) == (1, 29)


async def test_listing_never_runs_far_ahead_of_the_consumer() -> None:
    config = SandboxConfig(calls_count=500)
    start, end = period(config)
    concurrency = 2
    with SandboxServer(config) as server:
        async with sandbox_client(server) as plum, \
                plum.calllogs.harvest(start, end, concurrency=concurrency) as harvest:
            consumed = 0
            async for _ in harvest:
                consumed += 1
                if consumed == 20:
                    await anyio.sleep(0.3)  # a slow consumer: the pipeline must stall, not run ahead
                    fetched = detail_requests(server)
                    break
    # queued for the writer + the writer's batch + the consumer's buffer + workers in flight
    bound = consumed + 3 * concurrency * 2 + concurrency
    assert fetched <= bound, (fetched, bound)


async def test_jsonl_sink_resumes_and_drops_a_torn_line(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=40)
    start, end = period(config)
    out = tmp_path / "calls.jsonl"
    with SandboxServer(config) as server:
        async with sandbox_client(server) as plum:
            first = await plum.calllogs.harvest(start, end, jsonl=out).run()
            assert first.fetched == 40
            lines = out.read_text().splitlines()
            out.write_text("\n".join(lines[:30]) + "\n" + lines[30][: len(lines[30]) // 2])  # a crash mid-line
            second = await plum.calllogs.harvest(start, end, jsonl=out).run()
        assert (second.skipped, second.fetched) == (30, 10)
        ids = [json.loads(line)["log_id"] for line in out.read_text().splitlines()]
        assert sorted(ids) == server.app.expected_ids(start, end)
        assert JSONLSink(out).count() == 40


async def test_bad_arguments_fail_before_any_request(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(calls_count=5)) as server:
        async with sandbox_client(server) as plum:
            with pytest.raises(ValidationError):
                plum.calllogs.harvest(200, 100)
            with pytest.raises(ValidationError):
                plum.calllogs.harvest(100, 200, page_size=0)
            with pytest.raises(ConfigurationError):
                plum.calllogs.harvest(100, 200, concurrency=0)
            with pytest.raises(ConfigurationError):
                plum.calllogs.harvest(100, 200, sink=tmp_path / "a.db", jsonl=tmp_path / "a.jsonl")
        assert server.app.recorder.count() == 0
    assert not (tmp_path / "a.db").exists()


def stored_ids(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {int(row[0]) for row in conn.execute("SELECT log_id FROM calls")}


def detail_ids(server: SandboxServer, status: int = 200) -> list[int]:
    return [int(r.path.rsplit("/", 1)[1]) for r in server.app.recorder.select(path_prefix="/ws/calls/log/",
                                                                              status=status)]


async def test_stop_keeps_every_request_sent_and_drops_those_waiting_for_the_budget(tmp_path: Path,
                                                                                    engine: str) -> None:
    """stop() while some details are in flight and others wait for the budget: nothing spent is wasted."""
    limit, window, concurrency, calls = 12, 600, 8, 60
    config = SandboxConfig(calls_count=calls, latency=0.1, limits={"calllogs": (limit, window)})
    start, end = period(config)
    db = tmp_path / "calls.db"
    with SandboxServer(config) as server:
        async with sandbox_client(server, budget=Budget(limit=limit, window=window, reserve=0)) as plum:
            await enter_window(plum.clock, window, earliest=0.0, latest=0.95)  # no reset during the run
            key = plum.groups["calllogs"]
            harvest = plum.calllogs.harvest(start, end, sink=db, concurrency=concurrency)
            at_stop: list[tuple[int, int, float]] = []

            async def stop_while_both_kinds_wait() -> None:
                for _ in range(1000):  # 10 s at most
                    snap = plum.governor.peek(key)
                    if snap is not None and snap.in_flight > 0 and snap.waiters > 0:
                        at_stop.append((snap.in_flight, snap.waiters, plum.clock.now()))
                        harvest.stop()
                        return
                    await anyio.sleep(0.01)

            with anyio.fail_after(30):  # the budget's reset is ~minutes away: a hang would show here
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop_while_both_kinds_wait)
                    summary = await harvest.run()
            ended = plum.clock.now()
            after = plum.governor.peek(key)
        assert at_stop, "the run never had requests in flight and waiting at once"
        in_flight, _waiters, stopped_at = at_stop[0]
        assert ended - stopped_at < 5  # the waiting ones were dropped, not waited for
        assert after is not None and (after.in_flight, after.waiters) == (0, 0)
        assert not summary.complete and summary.failed == 0 and harvest.progress.stopping
        sent = detail_ids(server)
        assert stored_ids(db) == set(sent) and len(sent) == summary.fetched  # every answer kept, once
        assert summary.fetched >= in_flight and summary.fetched == limit - 1  # one page + the details
        assert server.app.recorder.statuses().get(429, 0) == 0

        server.app.reset()
        server.app.set(limits={"calllogs": (1000, window)})
        before = len(sent)
        again = await _rerun(server, start, end, db)
        assert again == (calls - before, before)
        assert len(detail_ids(server)) == calls - before  # the rerun fetched only what was missing
        assert len(stored_ids(db)) == calls


async def test_stop_abandons_a_retry_waiting_for_its_backoff(tmp_path: Path, engine: str) -> None:
    config = SandboxConfig(calls_count=20, fail_requests={2})  # request 2 is the first detail fetch
    start, end = period(config)
    with SandboxServer(config) as server:
        policy = RetryPolicy(backoff_initial=600, jitter=0)
        async with sandbox_client(server, retry=policy) as plum:
            harvest = plum.calllogs.harvest(start, end, sink=tmp_path / "c.db", concurrency=1)

            async def stop_after_the_500() -> None:
                for _ in range(1000):  # 10 s at most
                    if server.app.recorder.count(status=500):
                        harvest.stop()
                        return
                    await anyio.sleep(0.01)

            with anyio.fail_after(30):  # the backoff is 10 minutes: a hang would show here
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop_after_the_500)
                    summary = await harvest.run()
        assert not summary.complete
        assert (summary.fetched, summary.failed) == (0, 0)  # abandoned, not failed: a rerun fetches it
        assert server.app.recorder.count(path_prefix="/ws/calls/log/") == 1


async def test_stop_after_everything_is_done_still_reports_complete(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=10)
    start, end = period(config)
    with SandboxServer(config) as server:
        async with sandbox_client(server) as plum:
            harvest = plum.calllogs.harvest(start, end, sink=tmp_path / "c.db")
            summary = await harvest.run()
            harvest.stop()
        assert summary.complete and harvest.summary().complete and summary.fetched == 10
