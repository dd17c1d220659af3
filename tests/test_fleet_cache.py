"""The fleet cache on the fake clock: one request per entry for several clients on one store, a dead lease
holder replaced after the lease lapses, stale rather than late, refresh-ahead, fleet statistics and bad
input refused before any request."""

from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from plumasync import (
    Budget,
    CachePolicy,
    ConfigurationError,
    FakeClock,
    PlumClient,
    RateLimitExceeded,
    RetryPolicy,
    StalePolicy,
)
from plumasync.fleetcache import LEASE_TTL, Entry
from plumasync.governor.stores.base import MemoryStore, Store
from plumasync.governor.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

VT, CL = "https://vt.example.test/api/", "https://cl.example.test/ws/"
BODY = json.dumps({"calls": {"1696132800": 3}, "call_minutes": {"1696132800": 4.5}}).encode()
WEEK_A, WEEK_B, WEEK_C = ("20231001", "20231007"), ("20231008", "20231014"), ("20231015", "20231021")
TODAY = ("20231114", "20231114")  # the FakeClock starts on 2023-11-14 (America/New_York)


class Upstream:
    """A mock VoiceTrends: counts data requests; ``delay`` (clock seconds) holds each; ``fail`` answers 500."""

    def __init__(self, clock: FakeClock, *, limit: int = 150, delay: float = 0.0) -> None:
        self.clock, self.limit, self.delay = clock, limit, delay
        self.data = 0
        self.fail = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"login": "temp-login", "password": "temp-password"})
        self.data += 1
        if self.delay:
            await self.clock.sleep(self.delay)
        now = int(self.clock.now())
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self.data)),
                   "X-RateLimit-Reset": str(now + 600), "Date": formatdate(now, usegmt=True)}
        if self.fail:
            return httpx.Response(500, json={"error": "unknown error"}, headers=headers)
        return httpx.Response(200, content=BODY, headers={"content-type": "application/json", **headers})


def client(clock: FakeClock, upstream: Upstream, store: Store | None = None, **options: Any) -> PlumClient:
    options.setdefault("retry", RetryPolicy(attempts=1, rate_limit_attempts=1))
    return PlumClient(login="dev-user", password="dev-password", voicetrends_url=VT, calllogs_url=CL, env={},
                      clock=clock, store=store or MemoryStore(clock),
                      http_client=httpx.AsyncClient(transport=httpx.MockTransport(upstream)), **options)


# -- single-flight across workers ---------------------------------------------------------------------------

async def test_workers_sharing_a_store_send_one_request_per_report() -> None:
    clock = FakeClock()
    upstream = Upstream(clock, delay=2.0)
    store = MemoryStore(clock)
    workers = [client(clock, upstream, store) for _ in range(4)]
    got: list[Any] = []

    async def ask(plum: PlumClient, week: tuple[str, str]) -> None:
        got.append(await plum.voicetrends.volume(*week))

    async with clock.autojump(), anyio.create_task_group() as tg:
        for plum in workers:
            for week in (WEEK_A, WEEK_B, WEEK_C) * 5:
                tg.start_soon(ask, plum, week)
    assert upstream.data == 3 and len(got) == 60
    assert all(not r.stale and r.fetched_at is not None for r in got)
    for plum in workers[1:]:
        await plum.aclose()  # flushes their counts to the store
    fleet = await workers[0].fetch_cache_stats()
    assert (fleet.misses, fleet.coalesced, fleet.upstream) == (60, 57, 3)
    await workers[0].aclose()


def fill_lease(plum: PlumClient) -> str:
    """The store name of the fill lease of week A's volume report (what a fetching worker holds)."""
    return f"fill|vt-entry|{plum.groups['data']}|json|volume/{WEEK_A[0]}/{WEEK_A[1]}/day/ALL"


async def test_a_dead_lease_holder_is_replaced_when_its_lease_lapses() -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    plum = client(clock, upstream)
    name = fill_lease(plum)
    assert await plum.store.claim(name, "a worker that died", LEASE_TTL)
    start = clock.now()
    async with clock.autojump():
        report = await plum.voicetrends.volume(*WEEK_A)
    assert upstream.data == 1 and not report.stale
    assert LEASE_TTL <= clock.now() - start <= LEASE_TTL + 1  # waited for the lease, then fetched once
    await plum.aclose()


async def test_a_waiter_whose_max_wait_runs_out_asks_itself_if_admitted_at_once() -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    plum = client(clock, upstream)
    name = fill_lease(plum)
    assert await plum.store.claim(name, "a slow worker", LEASE_TTL)
    start = clock.now()
    async with clock.autojump():
        await plum.voicetrends.volume(*WEEK_A, max_wait=1.0)
    assert upstream.data == 1 and clock.now() - start <= 1.0 + 1e-9  # did not wait for the lease
    await plum.aclose()


async def test_the_holder_renews_its_lease_while_the_budget_makes_it_wait() -> None:
    clock = FakeClock()
    upstream = Upstream(clock, delay=4 * LEASE_TTL)  # a request far longer than the lease
    store = MemoryStore(clock)
    a, b = client(clock, upstream, store), client(clock, upstream, store)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(a.voicetrends.volume, *WEEK_A)
        await clock.sleep(1.0)
        tg.start_soon(b.voicetrends.volume, *WEEK_A)
    assert upstream.data == 1  # b never took over a live holder's lease
    await a.aclose()
    await b.aclose()


# -- stale rather than late ---------------------------------------------------------------------------------

async def test_an_exhausted_budget_serves_the_cached_report_stale_at_once() -> None:
    clock = FakeClock()
    upstream = Upstream(clock, limit=2)
    plum = client(clock, upstream, budget=Budget(limit=2, window=900.0, reserve=0),
                  cache=CachePolicy(past=60.0), stale=True)
    vt = plum.voicetrends
    first = await vt.volume(*WEEK_A)
    fetched = first.fetched_at
    await vt.volume(*WEEK_B)  # the budget is spent
    await clock.advance(120.0)  # the report is no longer fresh, only kept
    start = clock.now()
    report = await vt.volume(*WEEK_A, max_wait=0.5)
    assert clock.now() - start < 0.1
    assert report.stale and report.fetched_at == fetched and report == first
    assert plum.cache_stats().stale == 1
    with pytest.raises(RateLimitExceeded) as caught:  # nothing cached: as before
        await vt.volume(*WEEK_C, max_wait=0.5)
    assert caught.value.retry_at is not None and caught.value.retry_at > clock.now()
    assert upstream.data == 2
    await plum.aclose()


async def test_an_upstream_failing_after_retries_serves_stale_and_max_age_bounds_it() -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    plum = client(clock, upstream, cache=CachePolicy(past=60.0))
    vt = plum.voicetrends
    await vt.volume(*WEEK_A)
    await clock.advance(120.0)
    upstream.fail = True
    with pytest.raises(Exception, match="500"):
        await vt.volume(*WEEK_A)  # no stale policy: the error, as before
    assert (await vt.volume(*WEEK_A, stale=True)).stale
    with pytest.raises(Exception, match="500"):
        await vt.volume(*WEEK_A, stale=StalePolicy(max_age=100.0))  # 120 s old: too old
    with pytest.raises(Exception, match="500"):
        await vt.volume(*WEEK_A, stale=StalePolicy(on_error=False))
    await plum.aclose()


# -- refresh-ahead and statistics ---------------------------------------------------------------------------

@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_refresh_ahead_renews_a_hot_entry_so_readers_never_miss(anyio_backend: str) -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    plum = client(clock, upstream, cache=CachePolicy(past=60.0, refresh_ahead=10.0))
    vt = plum.voicetrends
    first = await vt.volume(*WEEK_A)
    await clock.advance(55.0)
    hit = await vt.volume(*WEEK_A)  # served at once; a renewal starts in the background
    assert hit.fetched_at == first.fetched_at and upstream.data == 1
    for _ in range(50):
        await anyio.lowlevel.checkpoint()
    assert upstream.data == 2
    await clock.advance(10.0)  # past the first fetch's freshness
    renewed = await vt.volume(*WEEK_A)
    assert renewed.fetched_at is not None and first.fetched_at is not None
    assert renewed.fetched_at > first.fetched_at and plum.cache_stats().misses == 1
    await plum.aclose()


async def test_fleet_statistics_sum_every_worker_on_a_sqlite_store(tmp_path: Path) -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    a = client(clock, upstream, SQLiteStore(tmp_path / "s.db", clock=clock))
    b = client(clock, upstream, SQLiteStore(tmp_path / "s.db", clock=clock))
    await a.voicetrends.volume(*WEEK_A)
    await b.voicetrends.volume(*WEEK_A)
    await b.voicetrends.volume(*WEEK_A)
    assert a.cache_stats().to_dict() == {"hits": 0, "misses": 1, "coalesced": 0, "stale": 0, "upstream": 1}
    await a.aclose()  # flushes its counts
    fleet = await b.fetch_cache_stats()
    assert fleet.to_dict() == {"hits": 2, "misses": 1, "coalesced": 0, "stale": 0, "upstream": 1}
    await b.aclose()


def test_entries_round_trip_and_garbage_is_a_miss() -> None:
    entry = Entry(b"{}\n[]", 1.5, 61.5)
    assert Entry.decode(entry.encode()) == entry
    assert Entry.decode(b"not an entry") is None and Entry.decode(None) is None


# -- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"max_age": 0}, {"max_age": -1.0}, {"max_age": float("nan")}, {"max_age": "60"}, {"max_age": True},
    {"on_rate_limit": "yes"}, {"on_rate_limit": False, "on_error": False},
])
def test_invalid_stale_policies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        StalePolicy(**bad)


@pytest.mark.parametrize("bad", [{"keep_stale": -1.0}, {"refresh_ahead": float("inf")}, {"today": "60"}])
def test_invalid_cache_policies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CachePolicy(**bad)


@pytest.mark.parametrize(("cache", "stale"), [
    (CachePolicy(enabled=False), True), (CachePolicy(keep_stale=0.0), StalePolicy()), (None, "yes"),
])
def test_a_client_stale_policy_the_cache_cannot_serve_is_refused(cache: CachePolicy | None, stale: Any) -> None:
    clock = FakeClock()
    with pytest.raises(ConfigurationError):
        client(clock, Upstream(clock), cache=cache, stale=stale)


async def test_stale_on_a_call_that_cannot_be_cached_is_refused_before_any_request() -> None:
    clock = FakeClock()
    upstream = Upstream(clock)
    plum = client(clock, upstream, cache=CachePolicy(today=0.0))
    vt = plum.voicetrends
    with pytest.raises(ConfigurationError, match="cache=False"):
        await vt.volume(*WEEK_A, cache=False, stale=True)
    with pytest.raises(ConfigurationError, match="does not keep"):
        await vt.volume(*TODAY, stale=StalePolicy())
    with pytest.raises(ConfigurationError):
        await vt.path(*WEEK_A, stale="yes")  # type: ignore[arg-type]
    assert upstream.data == 0 and vt.authentications == 0
    await vt.volume(*TODAY, stale=False)  # stale=False is always allowed
    await plum.aclose()
