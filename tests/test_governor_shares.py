"""Fair shares between named consumers: the pure rule, the governor on the memory store, the client's keywords.

The exact rule (``plumasync.governor.core.shares``): while several consumers are active, each one's share
of a window is ``capacity * weight / sum of active weights``, ``capacity`` being ``limit`` in the
interactive lane and ``limit - reserve`` in the bulk lane; a consumer below its share is admitted ahead of
one at or above it, which borrows only what the others' unused shares leave.  Weighted 2:1 on 150 per
window: 100/50 (interactive), 90/45 (bulk, reserve 15).
"""

from __future__ import annotations

import itertools
import math

import anyio
import httpx
import pytest
from fakes import FixedWindowServer
from shares_sim import KEY, T0, Side, per_window, register, saturate

from plumasync import Budget, ConfigurationError, Consumer, FakeClock, PlumClient
from plumasync.governor import Governor, GroupState, Lane, MemoryStore, RateHeaders
from plumasync.governor.core.codec import CorruptState

pytestmark = pytest.mark.anyio

POLICY = Budget(limit=150, window=900.0, reserve=15, margin=1.0).policy()
A, B = Consumer("dashboard", 2), Consumer("harvest-eu", 1)
IDS = itertools.count()


def warm(now: float, remaining: int = 149) -> GroupState:
    """A group in headers mode, its window ending 800 s after ``now``, its probe counted (149 left)."""
    state = GroupState.new(POLICY)
    assert state.acquire(now, POLICY, Lane.INTERACTIVE, "probe").granted
    state.observe(now, POLICY, "probe", 200, RateHeaders(limit=150, remaining=remaining, reset=now + 800, date=now))
    return state


def take(state: GroupState, now: float, consumer: Consumer, n: int, lane: Lane = Lane.INTERACTIVE) -> int:
    """Ask ``n`` times for ``consumer``; how many were granted."""
    granted = 0
    for _ in range(n):
        granted += state.acquire(now, POLICY, lane, f"{consumer.name}-{next(IDS)}", consumer).granted
    return granted


# -- the pure rule -------------------------------------------------------------------------------------------


def test_a_consumer_below_its_share_is_admitted_ahead_of_one_above_it() -> None:
    state = warm(T0)
    assert take(state, T0, B, 1) == 1  # harvest-eu is active and below its share of 50
    assert take(state, T0, A, 149) == 100  # the dashboard stops at its 100: harvest-eu still needs 49
    refused = state.acquire(T0, POLICY, Lane.INTERACTIVE, "over", A)
    assert not refused.granted
    assert refused.retry_at == pytest.approx(T0 + 90.0)  # when harvest-eu's demand lapses, unless it asks
    assert take(state, T0, B, 60) == 48  # the rest of its share of 50: the window is spent
    assert state.remaining is not None and state.remaining - len(state.permits) == 0


def test_an_idle_consumer_lends_its_share_after_a_tenth_of_a_window() -> None:
    state = warm(T0)
    assert take(state, T0, B, 1) == 1
    assert take(state, T0, A, 120) == 100
    assert take(state, T0 + 89.0, A, 10) == 0  # harvest-eu asked 89 s ago: still active
    assert take(state, T0 + 90.0, A, 60) == 48  # now it lends: the dashboard gets the rest of the window


def test_a_lone_consumer_takes_the_whole_window_and_unnamed_requests_are_not_shared_out() -> None:
    state = warm(T0)
    assert take(state, T0, A, 200) == 149
    state = warm(T0)
    assert take(state, T0, B, 1) == 1
    for i in range(147):  # no consumer: only the budget decides, and nobody's share is counted
        assert state.acquire(T0, POLICY, Lane.INTERACTIVE, f"u{i}").granted


def test_the_bulk_lane_reserve_keeps_working_within_the_shares() -> None:
    state = warm(T0)
    assert take(state, T0, B, 1, Lane.BULK) == 1
    assert take(state, T0, A, 200, Lane.BULK) == 90  # 2/3 of 150 - 15
    assert take(state, T0, B, 200, Lane.BULK) == 43  # the last 15 of the 149 left are the interactive lane's
    # Interactive calls may take those 15, each consumer still to its share of the whole 150 (100/50).
    assert take(state, T0, A, 20, Lane.INTERACTIVE) == 10
    assert take(state, T0, B, 20, Lane.INTERACTIVE) == 5


def test_a_new_window_starts_new_counts_and_a_cancelled_permit_gives_its_use_back() -> None:
    state = warm(T0)
    assert take(state, T0, B, 1) == 1
    first = next(IDS) + 1
    assert take(state, T0, A, 120) == 100
    state.cancel(f"dashboard-{first}")
    assert take(state, T0, A, 5) == 1  # its 100th again
    later = T0 + 801.0  # past the reset (and its margin): the next window
    assert state.acquire(later, POLICY, Lane.INTERACTIVE, "p1", A).granted  # the window's probe
    state.observe(later, POLICY, "p1", 200, RateHeaders(limit=150, remaining=149, reset=later + 899, date=later))
    assert state.shares is not None and state.shares.consumers["dashboard"].used == 1


def test_the_book_is_stored_with_the_state_and_old_documents_still_load() -> None:
    state = warm(T0)
    assert "shares" not in state.to_json()  # no consumer, the document of before
    take(state, T0, A, 3)
    again = GroupState.from_json(state.to_json())
    assert again == state and again.shares is not None and again.shares.consumers["dashboard"].used == 3
    old = warm(T0).to_json()
    assert GroupState.from_json(old).shares is None
    for bad in ({"epoch": "x"}, {"consumers": {"a": {"weight": 0, "seen": 1.0, "used": 0}}},
                {"consumers": {"a": {"weight": 1, "seen": 1.0, "used": -1}}}, {"owners": {"p": 3}}, [1]):
        with pytest.raises(CorruptState):
            GroupState.from_json({**old, "shares": bad})


# -- the governor on the memory store, on a fake clock: the Must-show scenario ---------------------------------


async def two_consumers(lane: Lane, named: bool) -> list[tuple[int, ...]]:
    """Two consumers weighted 2:1 (or unnamed), six workers each, saturating 6 windows of 150 per 900 s;
    the second goes idle after three windows."""
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=150, window=900)
    gov = register(Governor(store=MemoryStore(clock), clock=clock), limit=150, window=900.0)
    sides = [Side("dashboard", gov, A if named else None, lane),
             Side("harvest-eu", gov, B if named else None, lane, stop=T0 + 3 * 900 - 10)]
    counts = await saturate(clock, server, sides, end=T0 + 6 * 900 - 20)
    assert 429 not in server.statuses()
    return per_window(counts, ["dashboard", "harvest-eu"], 6)


@pytest.mark.parametrize(("lane", "shares", "whole"), [(Lane.INTERACTIVE, (100, 50), 150), (Lane.BULK, (90, 45), 135)])
async def test_two_consumers_weighted_2_to_1_share_every_window_and_the_idle_one_lends(
        lane: Lane, shares: tuple[int, int], whole: int) -> None:
    windows = await two_consumers(lane, named=True)
    for a, b in windows[:3]:
        assert abs(a - shares[0]) <= 1 and abs(b - shares[1]) <= 1 and a + b == whole, windows
    assert windows[3:] == [(whole, 0)] * 3, windows  # harvest-eu idle: the dashboard gets the whole window


async def test_without_consumers_the_split_follows_arrival() -> None:
    """Today's behaviour, unchanged when no consumer is named: six workers each get about half."""
    windows = await two_consumers(Lane.INTERACTIVE, named=False)
    assert all(a + b == 150 for a, b in windows), windows
    assert any(abs(a - 100) > 10 for a, _ in windows[:3]), windows  # nothing holds them to 2:1


# -- through the client: keywords, as_consumer, bad input ------------------------------------------------------


def client(clock: FakeClock, server: FixedWindowServer | None = None, **kw: object) -> PlumClient:
    handler = server.handler if server is not None else (lambda request: pytest.fail("no request expected"))
    return PlumClient(login="acct", password="secret", calllogs_url="http://127.0.0.1/ws/",
                      voicetrends_url="http://127.0.0.1/api/", clock=clock,
                      http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                      budget=Budget(limit=30, window=900.0, margin=1.0), **kw)  # type: ignore[arg-type]


async def test_one_client_shares_out_its_calls_by_consumer() -> None:
    clock = FakeClock(T0)
    server = FixedWindowServer(clock, limit=30, window=900)
    got = {"dashboard": 0, "harvest-eu": 0}
    async with client(clock, server, consumer="dashboard",
                      consumer_weights={"dashboard": 2, "harvest-eu": 1}) as plum:
        assert plum.consumer == A

        async def calls(name: str | None, n: int) -> None:
            for _ in range(n):
                await plum.request("calllogs", "calllogs", "GET", "calls/logs/1/2", auth=plum.dev_auth())
                if clock.now() < T0 + 890:  # this window only
                    got[name or "dashboard"] += 1

        async def as_harvest(n: int) -> None:
            with plum.as_consumer("harvest-eu") as consumer:
                assert consumer == B
                await calls("harvest-eu", n)

        async with clock.autojump():
            # Each consumer's demand is known once it has asked: a consumer that has not yet asked lends.
            await calls(None, 1)
            await as_harvest(1)
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(calls, None, 15)
                    tg.start_soon(as_harvest, 15)
    assert got == {"dashboard": 20, "harvest-eu": 10}


BAD_WEIGHTS = [
    {"dashboard": 0}, {"dashboard": -1}, {"dashboard": "2"}, {"dashboard": math.nan}, {"dashboard": math.inf},
    {"dashboard": True}, {"dashboard": None}, {"dashboard": 1, "": 1}, {"dashboard": 1, 3: 1}, {}, [("dashboard", 1)],
]


@pytest.mark.parametrize("weights", BAD_WEIGHTS, ids=repr)
def test_bad_weights_are_refused_at_construction(weights: object) -> None:
    with pytest.raises(ConfigurationError, match="consumer"):
        client(FakeClock(T0), consumer="dashboard", consumer_weights=weights)


@pytest.mark.parametrize(("consumer", "weights"), [("harvest", {"dashboard": 1}), ("", None), ("  ", None),
                                                   (7, None), ("", {"dashboard": 1})])
def test_a_bad_or_unknown_consumer_name_is_refused_at_construction(consumer: object, weights: object) -> None:
    with pytest.raises(ConfigurationError, match="consumer"):
        client(FakeClock(T0), consumer=consumer, consumer_weights=weights)


async def test_as_consumer_refuses_a_name_outside_the_weights_before_any_request() -> None:
    async with client(FakeClock(T0), consumer_weights={"dashboard": 2}) as plum:
        assert plum.consumer is None  # weights without consumer=: calls outside as_consumer are nobody's
        with pytest.raises(ConfigurationError, match="not one of"), plum.as_consumer("harvest-eu"):
            pass
    with pytest.raises(ConfigurationError):
        Consumer("dashboard", 0)
    assert KEY.group == "data"
