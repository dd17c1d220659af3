"""Harvest errors and transport faults at the edges: a trickling body, a truncated body, a failed
listing, a refused or black-holed server.  The sandbox answers through a fault-injecting proxy.  The
transport faults are tested on both engines (the ``engine`` fixture): each is the same retried fault."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from fakes import period
from faultproxy import Fault, FaultProxy

from plumasync import ConfigurationError, PlumClient, PlumError, RetryPolicy, TransportError
from plumasync.errors import ServerError
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05, jitter=0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"



def client_for(url: str, **options: object) -> PlumClient:
    return PlumClient(login="demo", password="demo-password", voicetrends_url=url + "/api/",
                      calllogs_url=url + "/ws/", retry=FAST_RETRY, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def proxied(fault: Fault, calls: int = 3, **config: object) -> AsyncIterator[tuple[FaultProxy, SandboxServer]]:
    with SandboxServer(SandboxConfig(calls_count=calls, **config)) as server:  # type: ignore[arg-type]
        proxy = FaultProxy(server.port, fault)
        async with anyio.create_task_group() as tg:
            await tg.start(proxy.serve)
            yield proxy, server
            tg.cancel_scope.cancel()


def first_of(prefix: str, fault: str) -> Fault:
    """``fault`` for the first request whose path starts with ``prefix``; the rest pass untouched."""
    hit: list[bool] = []

    def choose(_n: int, path: str) -> str | None:
        if path.startswith(prefix) and not hit:
            hit.append(True)
            return fault
        return None

    return choose


async def test_a_trickling_detail_hits_the_deadline_and_is_retried(tmp_path: Path, engine: str) -> None:
    async with proxied(first_of("/ws/calls/log/", "trickle")) as (proxy, server):
        start, end = period(server.app.config)
        async with client_for(proxy.url, timeout=1.0) as plum:
            with anyio.fail_after(20):  # without a deadline the trickle would take minutes
                summary = await plum.calllogs.harvest(start, end, jsonl=tmp_path / "calls.jsonl").run()
    assert summary.fetched == 3 and summary.failed == 0 and summary.complete
    details = [path for path, _ in proxy.requests if path.startswith("/ws/calls/log/")]
    assert len(details) == 4  # the trickled one was sent again


@pytest.mark.parametrize("fault", ["short", "close"])
@pytest.mark.parametrize("prefix", ["/ws/calls/logs/", "/ws/calls/log/"])
async def test_a_truncated_body_is_a_retried_transport_fault(tmp_path: Path, fault: str, prefix: str,
                                                              engine: str) -> None:
    async with proxied(first_of(prefix, fault)) as (proxy, server):
        start, end = period(server.app.config)
        async with client_for(proxy.url) as plum:
            with anyio.fail_after(20):
                harvest = plum.calllogs.harvest(start, end, jsonl=tmp_path / "calls.jsonl")
                summary = await harvest.run()
    assert summary.fetched == 3 and summary.failed == 0 and summary.complete, harvest.failures
    assert [f for _, f in proxy.requests].count(fault) == 1
    assert len(proxy.requests) == 5  # one listing + three details + the one retried


async def test_a_failed_listing_raises_a_plum_error_not_a_group(tmp_path: Path) -> None:
    async with proxied(lambda _n, _p: None, fail_rate=1.0) as (proxy, server):
        start, end = period(server.app.config)
        async with client_for(proxy.url) as plum:
            with pytest.raises(ServerError):
                await plum.calllogs.harvest(start, end, jsonl=tmp_path / "calls.jsonl").run()


async def test_a_failed_listing_raises_a_plum_error_when_iterated(tmp_path: Path) -> None:
    async with proxied(lambda _n, _p: None, fail_rate=1.0) as (proxy, server):
        start, end = period(server.app.config)
        async with client_for(proxy.url) as plum:
            with pytest.raises(PlumError):
                async with plum.calllogs.harvest(start, end, jsonl=tmp_path / "calls.jsonl") as harvest:
                    async for _ in harvest:
                        pass


def recent() -> tuple[int, int]:
    now = int(time.time())
    return now - 3600, now


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_raises_a_transport_error(engine: str) -> None:
    async with client_for(f"http://127.0.0.1:{closed_port()}") as plum:
        with anyio.fail_after(20), pytest.raises(TransportError, match="ConnectError"):  # the same on both engines
            await plum.calllogs.harvest(*recent()).run()


async def test_a_black_holed_server_raises_a_transport_error_within_the_deadlines(engine: str) -> None:
    async with proxied(lambda _n, _p: "blackhole") as (proxy, _server), client_for(proxy.url, timeout=0.3) as plum:
        with anyio.fail_after(20), pytest.raises(TransportError, match="ReadTimeout"):
            await plum.calllogs.harvest(*recent()).run()
    assert len(proxy.requests) == FAST_RETRY.attempts


@pytest.mark.parametrize("timeout", [-1, 0, math.nan, math.inf, "10", True])
def test_a_timeout_that_cannot_work_is_a_configuration_error(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        PlumClient(login="demo", password="pw", timeout=timeout)  # type: ignore[arg-type]
