"""The governor's fast path, where it is observable: a request that need not wait is admitted and
recorded without a cancel scope; a waiter cancelled while the store may have granted it gives the
permit back; the attempt's deadline still cuts a trickling body; the headers are read in one pass to
the same facts as a mapping lookup."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest
from anyio._backends._asyncio import AsyncIOBackend
from anyio._backends._trio import TrioBackend
from hypothesis import given, settings
from hypothesis import strategies as st

from plumasync import Abandoned, Drain, FakeClock
from plumasync.governor import Governor, GroupKey, GroupState, Lane, MemoryStore, Policy, StateStore, TimedDecision
from plumasync.governor.core.headers import parse_rate_headers, parse_raw_rate_headers
from plumasync.transport import GovernedTransport, hints, paused_until

pytestmark = pytest.mark.anyio

T0 = 1_700_000_450.0
KEY = GroupKey("api.test", "acct", "calllogs")
POLICY = Policy(limit=10, window=900.0, reserve=2, margin=1.0)


@pytest.fixture
def scopes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every cancel scope anyio creates from here on (``anyio.CancelScope``, ``move_on_after``, ...), as its
    ``shield`` flag."""
    created: list[bool] = []
    for backend in (AsyncIOBackend, TrioBackend):
        def counting(cls: type, *, deadline: float = math.inf, shield: bool = False,
                     _original: Callable[..., anyio.CancelScope] = backend.create_cancel_scope) -> anyio.CancelScope:
            created.append(shield)
            return _original(deadline=deadline, shield=shield)

        monkeypatch.setattr(backend, "create_cancel_scope", classmethod(counting))
    return created


def answer(clock: FakeClock, status: int = 200, remaining: int = 9) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        reset = math.floor(clock.now() / 900) * 900 + 900
        return httpx.Response(status, content=b"{}", headers={
            "X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset),
            "Date": "Tue, 14 Nov 2023 22:20:50 GMT"})

    return handler


def governed(clock: FakeClock, handler: Callable[[httpx.Request], httpx.Response],
             store: MemoryStore | StateStore | None = None) -> tuple[httpx.AsyncClient, Governor]:
    governor = Governor(store=store or MemoryStore(clock), clock=clock)
    governor.register(KEY, POLICY)
    return httpx.AsyncClient(transport=GovernedTransport(httpx.MockTransport(handler), governor)), governor


async def test_a_request_admitted_without_waiting_creates_no_cancel_scope(scopes: list[bool]) -> None:
    clock = FakeClock(T0)
    client, governor = governed(clock, answer(clock))
    async with client:
        for _ in range(3):
            assert (await client.get("http://api.test/x", extensions=hints(KEY))).status_code == 200
        with Drain().active():  # a harvest's drain: still no scope unless the request must wait
            assert (await client.get("http://api.test/x", extensions=hints(KEY, Lane.BULK))).status_code == 200
    assert scopes == []
    snap = governor.peek(KEY)
    assert snap is not None and snap.admitted == 4 and snap.in_flight == 0 and governor.usage(KEY).sent == 4


async def test_a_request_that_must_wait_does_wait_in_a_scope(scopes: list[bool]) -> None:
    # The counter above can fail: a drained bulk request waiting for the reset waits in the drain's scope.
    clock = FakeClock(T0)
    client, governor = governed(clock, answer(clock, remaining=2))
    drain = Drain()
    outcome: list[str] = []

    async def bulk() -> None:
        with drain.active():
            try:
                await client.get("http://api.test/x", extensions=hints(KEY, Lane.BULK))
            except Abandoned:
                outcome.append("abandoned")

    async with client:
        assert (await client.get("http://api.test/x", extensions=hints(KEY))).status_code == 200
        async with anyio.create_task_group() as tg:
            tg.start_soon(bulk)  # 2 left, both kept for interactive calls: bulk waits for the reset
            await anyio.wait_all_tasks_blocked()
            drain.stop()
    assert outcome == ["abandoned"] and scopes
    snap = governor.peek(KEY)
    assert snap is not None and snap.in_flight == 0 and snap.waiters == 0


async def test_the_429_pause_reaches_the_response_without_a_shield(scopes: list[bool]) -> None:
    clock = FakeClock(T0)
    client, governor = governed(clock, answer(clock, status=429, remaining=0))
    async with client:
        response = await client.get("http://api.test/x", extensions=hints(KEY))
    assert response.status_code == 429 and paused_until(response) is not None
    assert paused_until(response) == governor.peek(KEY).paused_until  # type: ignore[union-attr]
    assert scopes == [] and governor.usage(KEY).throttled == 1


class GrantsThenStalls(StateStore):
    """A store whose acquire applies the transition (a grant), then waits for its answer to come back:
    a cancellation in that wait finds the permit already granted."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.states: dict[GroupKey, GroupState] = {}
        self.answered = anyio.Event()
        self.granted = anyio.Event()

    async def _transact(self, key: GroupKey, policy: Policy,
                        fn: Callable[[GroupState, float], object]) -> tuple[object, float]:
        state = self.states.setdefault(key, GroupState.new(policy))
        return fn(state, self.clock.now()), self.clock.now()

    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str) -> TimedDecision:
        decision = await super().acquire(key, policy, lane, permit)
        self.granted.set()
        await self.answered.wait()
        return decision

    async def keys(self) -> list[GroupKey]:
        return list(self.states)

    async def get_value(self, name: str) -> bytes | None:
        return None

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        pass

    async def delete_value(self, name: str) -> None:
        pass

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        return True

    async def release(self, name: str, owner: str) -> None:
        pass


async def test_a_waiter_cancelled_after_the_store_granted_it_gives_the_permit_back() -> None:
    clock = FakeClock(T0)
    store = GrantsThenStalls(clock)
    governor = Governor(store=store, clock=clock)
    governor.register(KEY, POLICY)
    with anyio.move_on_after(5) as scope:  # real seconds: only a hang would reach them
        async with anyio.create_task_group() as tg:
            tg.start_soon(governor.acquire, KEY)
            await store.granted.wait()
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    state = store.states[KEY]
    assert state.permits == {} and state.admitted == 0  # given back: not held until it expires
    assert (await governor.fetch(KEY)).waiters == 0


async def test_a_cancelled_memory_waiter_leaves_the_budget_whole() -> None:
    clock = FakeClock(T0)
    governor = Governor(clock=clock)
    governor.register(KEY, POLICY)
    first = await governor.acquire(KEY)  # cold: one probe out, the next must wait for its answer
    with anyio.move_on_after(0.05):
        await governor.acquire(KEY)
    snap = governor.peek(KEY)
    assert snap is not None and snap.in_flight == 1 and snap.waiters == 0
    await governor.cancel(first)
    assert governor.try_acquire(KEY) is not None  # the probe's place is free again: granted at once


async def test_try_acquire_never_overtakes_a_waiter_of_its_lane() -> None:
    clock = FakeClock(T0)
    governor = Governor(clock=clock)
    governor.register(KEY, POLICY)
    probe = await governor.acquire(KEY)
    async with anyio.create_task_group() as tg:
        tg.start_soon(governor.acquire, KEY)  # waits for the probe's answer
        await anyio.wait_all_tasks_blocked()
        await governor.observe(probe, 200, parse_rate_headers({
            "x-ratelimit-limit": "10", "x-ratelimit-remaining": "9", "x-ratelimit-reset": str(int(T0) + 450)}))
        assert governor.try_acquire(KEY) is None  # the woken waiter is ahead in line
    assert governor.try_acquire(KEY) is not None


class Trickle(httpx.AsyncByteStream):
    def __init__(self, pieces: int, pause: float) -> None:
        self.pieces, self.pause = pieces, pause

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.pieces):
            await anyio.sleep(self.pause)
            yield b"x"


class SlowHead(httpx.AsyncBaseTransport):
    def __init__(self, head_after: float, stream: httpx.AsyncByteStream) -> None:
        self.head_after, self.stream, self.closed = head_after, stream, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.sleep(self.head_after)
        return httpx.Response(200, stream=self.stream, extensions={})


@pytest.mark.parametrize(("head_after", "pieces"), [(0.0, 50), (0.25, 1)])
async def test_an_attempt_past_its_deadline_is_a_read_timeout(head_after: float, pieces: int) -> None:
    # Real time, generous bounds: a body trickling a piece every 20 ms, or a head arriving late, past a
    # 0.15 s deadline; without the deadline the trickle would take 1 s.
    governor = Governor(clock=FakeClock(T0))
    governor.register(KEY, POLICY)
    transport = GovernedTransport(SlowHead(head_after, Trickle(pieces, 0.02)), governor, deadline=0.15)
    request = httpx.Request("GET", "http://api.test/x", extensions=hints(KEY))
    start = anyio.current_time()
    with pytest.raises(httpx.ReadTimeout, match="deadline"):
        await transport.handle_async_request(request)
    assert anyio.current_time() - start < 0.8
    snap = governor.peek(KEY)
    assert snap is not None and snap.in_flight == 0  # observed as "no response"


HEADER_NAMES = ["X-RateLimit-Limit", "x-ratelimit-remaining", "X-RATELIMIT-RESET", "Date", "Retry-After",
                "Content-Type", "retry-after"]
HEADER_VALUES = ["10", " 7 ", "-3", "1700000900", "86400", "abc", "", "Tue, 14 Nov 2023 22:20:50 GMT",
                 "Tue, 14 Nov 2023 22:20:50 +0000", "0", "1_000", "2.5"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES)), max_size=8))
def test_one_pass_reads_the_same_facts_as_the_mapping_lookups(pairs: list[tuple[str, str]]) -> None:
    headers = httpx.Headers(pairs)
    assert parse_raw_rate_headers(headers.raw) == parse_rate_headers(headers)
