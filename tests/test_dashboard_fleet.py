"""The README's Starlette dashboard, served by uvicorn with 4 worker processes on one SQLite store.

The example is taken from the README as written, started as a real fleet (``uvicorn --workers 4``) against
the sandbox on loopback, and hit by a load generator releasing every request at the same moment.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from plumasync import PlumClient
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
#: Three distinct reports (periods entirely in the past), each asked for by many concurrent users.
REPORTS = [("20261101", "20261107"), ("20261108", "20261114"), ("20261115", "20261121")]


def readme_dashboard() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Dashboard backends\n"):]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Fleet:
    """``uvicorn app:app --workers N`` in a child process, with its log read in a thread."""

    def __init__(self, app_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log: list[str] = []
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dashboard:app", "--app-dir", str(app_dir), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(WORKERS), "--log-level", "info"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.log.append(line)

    def wait_started(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while sum("Application startup complete" in line for line in self.log) < WORKERS:
            assert self._proc.poll() is None, "".join(self.log)
            assert time.monotonic() < deadline, "".join(self.log)
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck fleet must not hang the suite
            self._proc.kill()
            self._proc.wait()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Fleet, SandboxServer]]:
    (tmp_path / "dashboard.py").write_text(readme_dashboard())
    env = {**os.environ, "PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password",
           "PLUM_STORE": f"sqlite:///{tmp_path / 'plum.db'}", "PYTHONPATH": str(ROOT)}
    with SandboxServer(SandboxConfig()) as server:
        env["PLUM_VOICETRENDS_URL"] = server.voicetrends_url
        env["PLUM_CALLLOGS_URL"] = server.calllogs_url
        fleet = Fleet(tmp_path, env)
        try:
            fleet.wait_started()
            yield fleet, server
        finally:
            fleet.stop()


async def load(port: int, per_report: int) -> list[httpx.Response]:
    """``per_report`` users per report, all released at once; every response, in no particular order."""
    responses: list[httpx.Response] = []
    go = anyio.Event()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)   # one connection per user
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:

        async def user(start: str, end: str) -> None:
            await go.wait()
            responses.append(await http.get("/charts/volume", params={"start": start, "end": end}))

        async with anyio.create_task_group() as tg:
            for start, end in REPORTS:
                for _ in range(per_report):
                    tg.start_soon(user, start, end)
            await anyio.sleep(0.2)
            go.set()
    return responses


def test_the_readme_dashboard_on_four_workers_pays_one_upstream_request_per_report(
        fleet: tuple[Fleet, SandboxServer], tmp_path: Path) -> None:
    uvicorn, server = fleet
    users = 80
    responses = anyio.run(load, uvicorn.port, users)
    assert len(responses) == len(REPORTS) * users
    assert [(r.status_code, r.text) for r in responses if r.status_code != 200] == []
    bodies: dict[str, set[str]] = {}
    for r in responses:
        bodies.setdefault(str(r.url.params), set()).add(r.text)
    assert {len(b) for b in bodies.values()} == {1}, "one report's users saw different answers"
    assert not any(r.json()["stale"] for r in responses)
    data_requests = server.app.recorder.count(path_prefix="/api/", group="data")
    assert data_requests == len(REPORTS), f"{data_requests} upstream requests for {len(REPORTS)} reports"
    assert server.app.recorder.count(path_prefix="/api/auth") == 1

    uvicorn.stop()  # each worker adds its last counts to the store as it closes
    stats = anyio.run(fleet_stats, f"sqlite:///{tmp_path / 'plum.db'}", server.voicetrends_url)
    assert stats["upstream"] == len(REPORTS)
    assert stats["hits"] + stats["misses"] == len(REPORTS) * users
    assert stats["coalesced"] == stats["misses"] - len(REPORTS)


async def fleet_stats(store: str, voicetrends_url: str) -> dict[str, int]:
    """The fleet's cache counts, read from the store by a client that served nobody."""
    async with PlumClient(login="demo", password="demo-password", voicetrends_url=voicetrends_url,
                          store=store) as plum:
        return (await plum.fetch_cache_stats()).to_dict()
