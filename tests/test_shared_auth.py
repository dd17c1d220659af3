"""Eight worker processes starting cold at once authenticate once, through the shared store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e

WORKER = """
import anyio, json, sys, time
from plumasync import PlumClient
from plumasync import CachePolicy

async def main() -> None:
    url, store, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
    async with PlumClient(login="demo", password="demo-password", voicetrends_url=url + "/api/",
                          calllogs_url=url + "/ws/", store=store,
                          cache=CachePolicy(enabled=False)) as plum:   # no cache: every worker must call
        while time.time() < go:   # released together
            await anyio.sleep(0.002)
        report = await plum.voicetrends.volume("20261101", "20261107")
        print(json.dumps({"auth": plum.voicetrends.authentications, "calls": report.calls.total()}))

anyio.run(main)
"""


def run_cold_workers(store: str, workers: int = 8) -> tuple[int, list[dict[str, int]]]:
    with SandboxServer(SandboxConfig()) as server:
        go = time.time() + 3.0  # every process is up and idle by then
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, server.url, store, str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return server.app.recorder.count(path_prefix="/api/auth"), results


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_eight_cold_workers_authenticate_once(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")
    auths, results = run_cold_workers(store)
    assert auths == 1
    assert sum(r["auth"] for r in results) == 1  # exactly one worker authenticated; the others reused it
    assert len({r["calls"] for r in results}) == 1  # and all got the same data
