"""Engines: which one runs where, bad choices refused before any request, and the same transport faults
on both (the end-to-end governor and harvest tests run on both through the ``engine`` fixture)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from plumasync import ConfigurationError, PlumClient, RetryPolicy, TransportError
from plumasync import engine as engines
from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> SandboxServer:
    with SandboxServer(SandboxConfig(calls_count=3)) as running:
        yield running  # type: ignore[misc]


def recent() -> tuple[int, int]:
    now = int(time.time())
    return now - 3600, now


def without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "aiohttp_installed", lambda: False)


async def test_auto_is_aiohttp_on_asyncio_and_httpx_on_trio(server: SandboxServer, anyio_backend: str) -> None:
    async with sandbox_client(server, env={}) as plum:
        assert plum.engine == ("aiohttp" if anyio_backend == "asyncio" else "httpx")
        await plum.calllogs.logs_page(server.app.config.start_of_calls, server.app.config.start_of_calls + 10)
    assert server.app.recorder.count() > 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_auto_is_httpx_without_the_extra(server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    without_the_extra(monkeypatch)
    async with sandbox_client(server, env={}) as plum:
        assert plum.engine == "httpx"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("name", ["httpx", "aiohttp"])
async def test_the_engine_chosen_is_the_engine_that_sends(server: SandboxServer, name: str) -> None:
    plum = sandbox_client(server, engine=name)
    assert plum.engine is None  # not chosen before the event loop is known
    try:
        start = server.app.config.start_of_calls
        page = await plum.calllogs.logs_page(start, start + 10)  # without ``async with``: chosen by the request
        assert plum.engine == name and page is not None
    finally:
        await plum.aclose()


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'auto', 'httpx' or 'aiohttp'"):
        PlumClient(login="demo", password="pw", engine="curl")  # type: ignore[arg-type]


def test_aiohttp_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    without_the_extra(monkeypatch)
    with pytest.raises(ConfigurationError, match=r'pip install "plumasync\[aiohttp\]"'):
        PlumClient(login="demo", password="pw", engine="aiohttp")
    with pytest.raises(ConfigurationError, match="aiohttp"):
        PlumClient(login="demo", password="pw", env={"PLUM_ENGINE": "aiohttp"})


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_aiohttp_under_trio_is_refused_before_any_request(server: SandboxServer) -> None:
    before = server.app.recorder.count()
    with pytest.raises(ConfigurationError, match="trio use engine='httpx'"):
        async with sandbox_client(server, engine="aiohttp"):
            pass
    plum = sandbox_client(server, engine="aiohttp")  # without ``async with``: refused by the first request
    with pytest.raises(ConfigurationError, match="trio"):
        await plum.calllogs.logs_page(*recent())
    assert "calllogs" not in plum.budget_snapshot()  # the governor was never asked
    await plum.aclose()
    assert server.app.recorder.count() == before


def test_an_engine_beside_a_users_client_is_refused() -> None:
    user = httpx.AsyncClient()
    with pytest.raises(ConfigurationError, match="http_client"):
        PlumClient(login="demo", password="pw", http_client=user, engine="aiohttp")
    plum = PlumClient(login="demo", password="pw", http_client=user, env={"PLUM_ENGINE": "aiohttp"})
    assert plum.engine is None  # PLUM_ENGINE is for our own pool: the user's client sends


def test_the_cli_refuses_an_unknown_engine_before_any_request(server: SandboxServer) -> None:
    before = server.app.recorder.count()
    result = CliRunner().invoke(app, ["--calllogs-url", server.calllogs_url, "--store", "memory", "harvest",
                                      "--start", "2024-05-01", "--end", "2024-05-02", "--engine", "curl"],
                                env={"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password"})
    assert result.exit_code == 2 and "engine must be" in result.output
    assert server.app.recorder.count() == before


@pytest.mark.parametrize("name", ["httpx", "aiohttp"])
def test_the_demo_runs_on_the_engine_asked_for(name: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--logs", "12", "--scale", "3000", "--engine", name])
    assert result.exit_code == 0, result.output
    assert f"({name} engine)" in result.output


# -- the same transport faults on both engines ------------------------------------------------------------


@asynccontextmanager
async def resetting_server(mid_body: bool) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that resets every connection (RST), before answering or halfway through the body."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")
        if mid_body:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{\"a\":")
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("mid_body", [False, True], ids=["before the answer", "mid-body"])
async def test_a_reset_connection_is_a_retried_read_error_on_both_engines(engine: str, mid_body: bool) -> None:
    async with resetting_server(mid_body) as (url, accepted), \
            PlumClient(login="demo", password="pw", calllogs_url=url + "/ws/",
                       retry=RetryPolicy(attempts=2, backoff_initial=0, jitter=0)) as plum:
        with anyio.fail_after(10), pytest.raises(TransportError, match="ReadError"):
            await plum.calllogs.logs_page(*recent())
        assert plum.engine == engine
        assert plum.budget_snapshot()["calllogs"].in_flight == 0
    assert len(accepted) == 2  # retried once, as the policy says
