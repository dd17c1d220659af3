"""Shared fixtures: async backends, HTTP engines, a private state directory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from store_worker import REDIS_SERVER, REDIS_SKIP_REASON, RedisServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return str(request.param)


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI keeps its default store in the user's state directory: never the real one in tests
    (a subprocess inherits the variable too)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(params=["httpx", "aiohttp"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on both engines (asyncio tests only): every ``PlumClient`` built without ``engine=``
    uses this one (through ``PLUM_ENGINE``), and the test fails if no client opened on it."""
    from plumasync.engine import EngineTransport

    monkeypatch.setenv("PLUM_ENGINE", request.param)
    opened: list[str] = []
    real_open = EngineTransport.open

    def open_and_record(self: EngineTransport) -> Any:
        name = real_open(self)
        opened.append(name)
        return name

    monkeypatch.setattr(EngineTransport, "open", open_and_record)
    yield str(request.param)
    assert request.param in opened, f"no client ran on the {request.param} engine"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A private redis-server on loopback for one test (skipped when redis-server is not installed)."""
    if REDIS_SERVER is None:
        pytest.skip(REDIS_SKIP_REASON)
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()
