"""Every resource end to end against the sandbox on loopback: JSON and XML agree, authentication is
single-flight (per client, after a revocation, and across clients sharing a SQLite store), and the
VoiceTrends cache and coalescing protect the budget of dashboards."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import pytest

from plumasync import CachePolicy, InvalidRequestError, PlumClient, RetryPolicy, ServerError
from plumasync.models import CallLogDetail, CallLogEntry
from plumasync.sandbox import DEFAULT_NUMBERS, SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

NY = ZoneInfo("America/New_York")
PHONE = DEFAULT_NUMBERS[0]
PAST = (date(2025, 3, 3), date(2025, 3, 23))  # entirely in the past, three whole weeks


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ManualClock:
    """Wall time from ``origin`` plus whatever :meth:`advance` added: share it with the sandbox so that
    both sides jump together."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.mono = time.monotonic()
        self.offset = 0.0

    def now(self) -> float:
        return self.origin + (time.monotonic() - self.mono) + self.offset

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def requests(server: SandboxServer, prefix: str) -> int:
    return server.app.recorder.count(path_prefix=prefix)


def listing(entry: CallLogEntry) -> dict[str, str]:
    return {"log_id": str(entry.log_id), "session_id": entry.session_id.raw, "dest": entry.dest,
            "type": entry.type, "src": entry.src, "start": str(entry.start_ts), "end": str(entry.end_ts)}


def detail(log: CallLogDetail) -> dict[str, str]:
    return {"dest": log.dest, "src": log.src, "type": log.type, "timestamp": str(log.timestamp_ts),
            "location": log.location, "log": log.log}


# --- every endpoint, both formats -------------------------------------------------------------------------


async def test_every_endpoint_gives_the_same_typed_values_in_json_and_xml() -> None:
    config = SandboxConfig(calls_count=60)
    with SandboxServer(config) as server:
        async with sandbox_client(server, cache=CachePolicy(enabled=False)) as plum:
            vt = plum.voicetrends
            for phone in (PHONE, "ALL"):
                for name in ("volume", "events", "performance", "profile"):
                    for period in ("day", "week", "month"):
                        call = getattr(vt, name)
                        from_json = await call(*PAST, period, phone, format="json")
                        from_xml = await call(*PAST, period, phone, format="xml")
                        assert from_json == from_xml, (name, period, phone)
                        assert from_json.calls.total() > 0 and len(from_json.series) >= 2
                geo_json = await vt.geographic(*PAST, phone, format="json")
                assert geo_json == await vt.geographic(*PAST, phone, format="xml")
                assert len(geo_json.us) == 52 and sum(geo_json.us.values()) > 0
                path_json = await vt.path(*PAST, phone, format="json")
                assert path_json == await vt.path(*PAST, phone, format="xml")
                assert path_json.applications
            assert vt.authentications == 1

            start = config.start_of_calls
            end = start + int(config.calls_count * config.calls_spacing) + 1
            expected = server.app.expected_ids(start, end)
            assert len(expected) == 60
            cl = plum.calllogs
            for number in (None, PHONE):
                pages = [await cl.logs_page(start, end, number=number, limit=25, format=f)
                         for f in ("json", "xml")]
                assert pages[0] == pages[1]
                assert [e.log_id for e in pages[0]] == server.app.expected_ids(start, end, number)[:25]
                for entry in pages[0]:
                    assert listing(entry) == server.app.expected_log(entry.log_id).listing()
            every = [entry.log_id async for entry in cl.logs(start, end, page_size=7, format="xml")]
            assert every == expected
            for log_id in expected[::13]:
                from_json, from_xml = await cl.log(log_id, format="json"), await cl.log(log_id, format="xml")
                assert from_json == from_xml
                assert detail(from_json) == server.app.expected_log(log_id).detail()
            sessions = [await cl.sessions_page(start, end, limit=40, format=f) for f in ("json", "xml")]
            assert sessions[0] == sessions[1] and len(sessions[0]) == 40
            assert sessions[0].total == 2 * len(expected)
            errors = [await cl.errors_page(start, end, format=f) for f in ("json", "xml")]
            assert errors[0] == errors[1] and errors[0].total == len(errors[0].lines) > 0
        assert server.app.recorder.statuses() == {200: server.app.recorder.count()}
        assert {r.accept for r in server.app.recorder.select(method="GET")} == {
            "application/json", "application/xml"}


# --- authentication: single flight ----------------------------------------------------------------------


async def test_50_concurrent_calls_on_a_cold_client_authenticate_once() -> None:
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server) as plum:
            results: list[Any] = []

            async def one(i: int) -> None:
                day = PAST[0] + timedelta(days=i)
                resource = (plum.voicetrends.volume, plum.voicetrends.events)[i % 2]
                results.append(await resource(day, day, "day", "ALL" if i % 3 else PHONE))

            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(one, i)
            assert plum.voicetrends.authentications == 1
            assert plum.cache_stats().coalesced == 0  # distinct calls: nothing hid behind coalescing
        assert len(results) == 50
        assert requests(server, "/api/auth") == 1
        assert server.app.recorder.count(group="data", status=200) == 50


async def test_revoked_credentials_are_refreshed_once_for_20_concurrent_calls() -> None:
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server) as plum:
            vt = plum.voicetrends
            await vt.volume(PAST[0], PAST[0])  # warm: credentials in hand, budget headers seen
            assert requests(server, "/api/auth") == 1

            # revoked before the burst: every call is refused once, one re-authentication serves all
            assert server.app.revoke_credentials() == 1
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(vt.events, PAST[0] + timedelta(days=i), PAST[1])
            assert requests(server, "/api/auth") == 2
            assert server.app.recorder.count("/api/events/", 401) >= 1
            assert server.app.recorder.count("/api/events/", 200) == 20
            assert vt.authentications == 2

            # revoked while the calls run: calls start every 10 ms, the revocation lands at 55 ms
            server.app.set(latency=0.01)
            done: list[int] = []

            async def later(i: int) -> None:
                await anyio.sleep(0.01 * i)
                await vt.performance(PAST[0] + timedelta(days=i), PAST[1], "week", PHONE)
                done.append(i)

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(later, i)
                await anyio.sleep(0.055)
                assert server.app.revoke_credentials() == 1
            assert sorted(done) == list(range(20))
            assert server.app.recorder.count("/api/performance/", 401) >= 1  # the revocation was felt
            assert server.app.recorder.count("/api/performance/", 200) == 20
            assert requests(server, "/api/auth") == 3  # exactly one more
            assert vt.authentications == 3


async def test_two_clients_sharing_a_sqlite_store_authenticate_once(tmp_path: Path) -> None:
    try:
        import plumasync.governor.stores.sqlite  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the store is another developer's work in progress
        pytest.skip(f"the SQLite store is not available: {exc}")
    store = f"sqlite:///{tmp_path}/s.db"
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server, store=store) as a, sandbox_client(server, store=store) as b:

            async def one(plum: PlumClient, i: int) -> None:
                await plum.voicetrends.profile(PAST[0] + timedelta(days=i), PAST[1], "week", "ALL")

            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(one, a, i)
                    tg.start_soon(one, b, i + 10)
            assert a.voicetrends.authentications + b.voicetrends.authentications == 1
            assert requests(server, "/api/auth") == 1
            # the cache lives in the store too: B's identical call is served by A's answer
            before = requests(server, "/api/profile/")
            await b.voicetrends.profile(PAST[0], PAST[1], "week", "ALL")
            assert requests(server, "/api/profile/") == before
            assert b.cache_stats().hits == 1
        assert server.app.recorder.count(group="data", status=200) == 20


# --- dashboards: coalescing and the cache ---------------------------------------------------------------


async def test_dashboards_coalesce_then_hit_the_cache_without_touching_the_governor() -> None:
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server) as plum:
            vt, data = plum.voicetrends, plum.groups["data"]
            results: list[Any] = []

            async def dashboard() -> None:
                results.append(await vt.volume(*PAST, "week", PHONE))

            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(dashboard)
            assert requests(server, "/api/volume/") == 1
            assert len(results) == 100 and all(r == results[0] for r in results)
            assert results[0].calls.total() > 0
            stats = plum.cache_stats()
            assert (stats.hits, stats.misses, stats.coalesced) == (0, 100, 99)

            sent = plum.governor.usage(data).sent
            assert await vt.volume(*PAST, "week", PHONE) == results[0]  # a hit
            assert plum.governor.usage(data).sent == sent
            assert requests(server, "/api/volume/") == 1
            assert plum.cache_stats().hits == 1

            assert await vt.volume(*PAST, "week", PHONE, cache=False) == results[0]  # bypassed
            assert requests(server, "/api/volume/") == 2
            assert plum.governor.usage(data).sent == sent + 1
            assert await vt.volume(*PAST, "week", PHONE, format="xml") == results[0]  # another representation
            assert requests(server, "/api/volume/") == 3
            stats = plum.cache_stats()
            assert (stats.hits, stats.misses, stats.coalesced) == (1, 102, 99)
            assert stats.to_dict() == {"hits": 1, "misses": 102, "coalesced": 99, "stale": 0, "upstream": 3}


async def test_cache_ttl_past_periods_long_today_briefly() -> None:
    noon = datetime(2026, 3, 10, 12, tzinfo=NY).timestamp()  # far from midnight: "today" stays put
    clock = ManualClock(noon)
    today = date(2026, 3, 10)
    past, current = (today - timedelta(days=9), today - timedelta(days=1)), (today - timedelta(days=2), today)
    with SandboxServer(SandboxConfig(clock=clock)) as server:
        async with sandbox_client(server, clock=clock, cache=CachePolicy(past=3600.0, today=60.0)) as plum:
            vt = plum.voicetrends

            async def fetch() -> tuple[int, int]:
                await vt.events(*past)
                await vt.events(*current)
                return requests(server, f"/api/events/{past[0]:%Y%m%d}"), requests(
                    server, f"/api/events/{current[0]:%Y%m%d}")

            assert await fetch() == (1, 1)
            assert await fetch() == (1, 1)  # both cached
            clock.advance(61)  # past `today`: the period touching today is fetched again
            assert await fetch() == (1, 2)
            clock.advance(3000)  # 3061 s in all, less than `past`
            assert await fetch() == (1, 3)
            clock.advance(600)  # 3661 s: past `past`
            assert await fetch() == (2, 4)
            stats = plum.cache_stats()
            assert (stats.hits, stats.misses) == (4, 6)

    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server, cache=CachePolicy(enabled=False)) as plum:
            for _ in range(3):
                await plum.voicetrends.events(*PAST)
            assert requests(server, "/api/events/") == 3
            assert plum.cache_stats().hits == 0


async def test_errors_are_shared_by_coalesced_callers_and_never_cached() -> None:
    with SandboxServer(SandboxConfig()) as server:
        async with sandbox_client(server, retry=RetryPolicy(attempts=1)) as plum:
            vt = plum.voicetrends
            await vt.path(*PAST)  # warm: credentials in hand
            errors: list[BaseException] = []

            async def caller(call: Any, *args: Any) -> None:
                try:
                    await call(*args)
                except Exception as exc:
                    errors.append(exc)

            async def burst(call: Any, *args: Any) -> None:
                async with anyio.create_task_group() as tg:
                    for _ in range(20):
                        tg.start_soon(caller, call, *args)

            # a range the sandbox refuses (400) but the client cannot know about
            too_long = (date(2000, 1, 1), date(2020, 1, 1))
            await burst(vt.volume, *too_long)
            assert len(errors) == 20 and all(e is errors[0] for e in errors)
            assert isinstance(errors[0], InvalidRequestError) and "range too long" in str(errors[0])
            assert requests(server, "/api/volume/") == 1
            with pytest.raises(InvalidRequestError):
                await vt.volume(*too_long)
            assert requests(server, "/api/volume/") == 2  # not cached

            # an injected 500 (one attempt): shared, then not cached
            errors.clear()
            server.app.set(fail_rate=1.0)
            await burst(vt.geographic, *PAST)
            assert len(errors) == 20 and all(e is errors[0] for e in errors)
            assert isinstance(errors[0], ServerError) and errors[0].status == 500
            assert requests(server, "/api/profile/") == 1
            server.app.set(fail_rate=0.0)
            report = await vt.geographic(*PAST)
            assert sum(report.us.values()) > 0
            assert requests(server, "/api/profile/") == 2
            assert plum.cache_stats().hits == 0
