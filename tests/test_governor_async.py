"""The governor through PlumClient and GovernedTransport, on a fake clock, on asyncio and trio."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import httpx
import pytest
from fakes import FixedWindowServer

from plumasync import Abandoned, Budget, Drain, FakeClock, PlumClient, RateLimitExceeded, RetryPolicy, ServerError
from plumasync.governor import Lane

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0 + 450  # mid-window for window=900 (1_700_000_000 is not aligned; see reset math)


def make(server: FixedWindowServer, clock: FakeClock, **kw: object) -> PlumClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    kw.setdefault("budget", Budget(limit=server.limit, window=server.window, margin=1.0))
    kw.setdefault("retry", RetryPolicy(backoff_initial=1.0, jitter=0.0))
    return PlumClient(login="acct", password="secret", calllogs_url="http://127.0.0.1/ws/",
                      voicetrends_url="http://127.0.0.1/api/", http_client=http, clock=clock, **kw)  # type: ignore[arg-type]


async def get(plum: PlumClient, lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None) -> int:
    r = await plum.request("calllogs", "calllogs", "GET", "calls/logs/1/2", auth=plum.dev_auth(), lane=lane,
                           max_wait=max_wait)
    return r.status_code


def first_reset(server: FixedWindowServer, t: float) -> float:
    return (math.floor((t + server.skew) / server.window) + 1) * server.window - server.skew


async def run_many(plum: PlumClient, n: int, lane: Lane = Lane.INTERACTIVE) -> list[int]:
    results: list[int] = []

    async def one() -> None:
        results.append(await get(plum, lane))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return results


async def test_burst_within_remaining_costs_no_wait() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    async with make(server, clock) as plum, clock.autojump():
        results = await run_many(plum, 10)
    assert results == [200] * 10
    assert clock.now() == T0  # no sleep at all: the whole job fit in the window


@pytest.mark.parametrize("skew", [0.0, 5.0, -5.0])
async def test_job_spanning_windows_finishes_at_the_window_arithmetic_minimum(skew: float) -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10, skew=skew)
    n = 35  # 10 now, then 10 per window: three resets
    async with make(server, clock) as plum, clock.autojump():
        results = await run_many(plum, n)
    assert results == [200] * n
    assert 429 not in server.statuses()
    t_min = first_reset(server, T0) + 2 * server.window - T0
    elapsed = clock.now() - T0
    # three resets, each waited past by the 1 s margin (plus Date's sub-second rounding: none here)
    assert t_min <= elapsed <= t_min + 3 * 1.0 + 1e-6, (elapsed, t_min)


async def test_429_pauses_the_group_and_the_request_then_succeeds() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    async with make(server, clock) as plum, clock.autojump():
        assert await get(plum) == 200
        server.spend(9)  # another tenant takes the rest of the window behind our back
        assert await get(plum) == 200  # 429 first, then retried after the reset
        assert server.statuses() == [200, 429, 200]
        reset = first_reset(server, T0)
        assert server.log[-1][0] >= reset
        # the pause held the whole group: the next request did not trip another 429
        assert await get(plum) == 200
    assert server.statuses().count(429) == 1
    assert plum.budget_snapshot()["calllogs"].throttled == 1


async def test_max_wait_raises_with_retry_at_and_spends_nothing() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    async with make(server, clock) as plum, clock.autojump():
        await run_many(plum, 10)
        sent = len(server.log)
        with pytest.raises(RateLimitExceeded) as info:
            await get(plum, max_wait=5.0)
    assert info.value.status is None
    assert info.value.retry_at == pytest.approx(first_reset(server, T0) + 1.0)
    assert len(server.log) == sent
    assert clock.now() == T0  # failed fast, without sleeping


async def test_interactive_lane_gets_the_reserve_while_bulk_waits() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    done: list[tuple[str, float]] = []
    async with make(server, clock, budget=Budget(limit=10, window=900, reserve=2)) as plum, clock.autojump():

        async def job(lane: Lane) -> None:
            await get(plum, lane)
            done.append((lane.value, clock.now()))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(job, Lane.BULK)
            await anyio.lowlevel.checkpoint()  # let bulk take its 8 (probe first)
            while sum(1 for lane, _ in done if lane == "bulk") < 8:
                await anyio.lowlevel.checkpoint()
            tg.start_soon(job, Lane.INTERACTIVE)
            tg.start_soon(job, Lane.INTERACTIVE)
    inter = [t for lane, t in done if lane == "interactive"]
    bulk = sorted(t for lane, t in done if lane == "bulk")
    assert inter == [T0, T0]  # at once, from the reserve
    assert bulk[:8] == [T0] * 8 and all(t > T0 for t in bulk[8:])  # the last two waited for the reset
    assert 429 not in server.statuses()


async def test_headerless_group_is_held_by_its_configured_budget() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10, headers=False)
    async with make(server, clock, budget=Budget(limit=10, window=900, reserve=0)) as plum, clock.autojump():
        results = await run_many(plum, 25)
    assert results == [200] * 25
    assert 429 not in server.statuses()
    assert plum.budget_snapshot()["calllogs"].mode == "headerless"


async def test_5xx_and_transport_errors_are_retried_through_the_governor() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    failures = iter([503, "drop", 500])

    def hook(request: httpx.Request) -> httpx.Response | None:
        step = next(failures, None)
        if step == "drop":
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return None if step is None else httpx.Response(int(step), content=b'{"error":"boom"}')

    server.hook = hook
    async with make(server, clock) as plum, clock.autojump():
        assert await get(plum) == 200
        snap = plum.budget_snapshot()["calllogs"]
    assert server.statuses() == [503, 500, 200]  # the drop never reached the log
    assert snap.admitted == 4  # every attempt went through the governor
    assert clock.now() - T0 == pytest.approx(1.0 + 2.0 + 4.0)  # exponential backoff on the fake clock


async def test_server_errors_surface_after_the_configured_attempts() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    server.hook = lambda request: httpx.Response(502, content=b'{"error":"bad gateway"}')
    async with make(server, clock, retry=RetryPolicy(attempts=3, backoff_initial=0.1, jitter=0)) as plum, \
            clock.autojump():
        with pytest.raises(ServerError) as info:
            await get(plum)
    assert info.value.status == 502 and len(server.log) == 3
    assert "secret" not in str(info.value) and "secret" not in repr(plum)


async def test_cancelled_waiter_leaves_no_trace() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    async with make(server, clock) as plum:
        async with clock.autojump():
            await run_many(plum, 10)
        with anyio.move_on_after(0.05):
            await get(plum)  # waits for the reset (the fake clock does not move): cancelled
        snap = plum.budget_snapshot()["calllogs"]
    assert snap.waiters == 0 and snap.in_flight == 0


async def test_a_429_that_outlasts_the_retries_says_when_to_retry() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    async with make(server, clock, retry=RetryPolicy(rate_limit_attempts=1)) as plum, clock.autojump():
        assert await get(plum) == 200
        server.spend(9)
        with pytest.raises(RateLimitExceeded) as info:
            await get(plum)
    assert info.value.status == 429
    assert info.value.retry_at == pytest.approx(first_reset(server, T0) + 1.0)


async def test_a_drain_drops_the_waiting_requests_and_lets_the_sent_one_finish() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    gate = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()  # the request is on the wire until the gate opens
        return server.handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    plum = PlumClient(login="acct", password="secret", calllogs_url="http://127.0.0.1/ws/", http_client=http,
                      clock=clock, budget=Budget(limit=10, window=900, margin=1.0))
    drain = Drain()
    outcomes: list[object] = []

    async def one() -> None:
        try:
            outcomes.append(await get(plum))
        except Abandoned as exc:
            outcomes.append(type(exc))

    async with plum:
        async with anyio.create_task_group() as tg:
            with drain.active():  # the tasks started here inherit the drain
                for _ in range(6):
                    tg.start_soon(one)
            await anyio.wait_all_tasks_blocked()
            snap = plum.budget_snapshot()["calllogs"]
            assert (snap.in_flight, snap.waiters) == (1, 5)  # the cold-start probe is sent, the rest wait
            drain.stop()
            await anyio.wait_all_tasks_blocked()
            await anyio.wait_all_tasks_blocked()  # the head waiter unwinds its timed wait (the probe's timeout)
            assert outcomes == [Abandoned] * 5  # dropped at once, though the clock never moved
            gate.set()
        assert outcomes == [Abandoned] * 5 + [200]  # the request already sent finished
        assert len(server.log) == 1 and clock.now() == T0
        with drain.active(), pytest.raises(Abandoned):
            await get(plum)  # a stopped drain starts nothing
        assert await get(plum) == 200  # requests outside the drain are unaffected
        snap = plum.budget_snapshot()["calllogs"]
    assert (snap.in_flight, snap.waiters) == (0, 0)


async def test_a_drain_drops_a_retry_waiting_for_its_backoff() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=10)
    server.hook = lambda request: httpx.Response(503)
    drain = Drain()
    outcome: list[BaseException] = []

    async def one() -> None:
        try:
            await get(plum)
        except Exception as exc:
            outcome.append(exc)

    retry = RetryPolicy(backoff_initial=600, jitter=0.0)
    async with make(server, clock, retry=retry) as plum, anyio.create_task_group() as tg:
        with drain.active():
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()  # the 503 came back; the retry sleeps 600 s
        drain.stop()
    assert len(outcome) == 1 and isinstance(outcome[0], Abandoned)
    assert len(server.log) == 1 and clock.now() == T0
