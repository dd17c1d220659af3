"""OpenTelemetry metrics: counters move during a harvest once an SDK is installed (in a child process, so
the global meter provider of the test session stays the no-op one)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk.metrics", reason="opentelemetry-sdk is not installed")
pytestmark = pytest.mark.e2e

CHILD = textwrap.dedent('''
    import json, sys, anyio
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    from plumasync.sandbox import SandboxConfig, SandboxServer
    from plumasync import ScaledClock
    from plumasync.testing import sandbox_client

    def values():
        out = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        label = ",".join(f"{k}={v}" for k, v in sorted(point.attributes.items()))
                        out[f"{metric.name}[{label}]"] = point.value
        return out

    async def main():
        clock = ScaledClock(100.0)
        config = SandboxConfig(clock=clock, calls_count=30, limits={"calllogs": (20, 300)})
        seen = []
        with SandboxServer(config) as server:
            async with sandbox_client(server, clock=clock) as plum:
                start = config.start_of_calls
                async with plum.calllogs.harvest(start, start + 30 * 60 + 1, sink=sys.argv[1]) as job:
                    async for item in job:
                        if len(seen) == 0:
                            seen.append(values())
                seen.append(values())
        print(json.dumps(seen))
    anyio.run(main)
''')


def test_counters_move_during_a_harvest(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "calls.db")], capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, check=True)
    during, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert during["plumasync.requests[group=calllogs]"] >= 2
    assert after["plumasync.requests[group=calllogs]"] == 31  # one listing + 30 details
    assert after["plumasync.requests[group=calllogs]"] > during["plumasync.requests[group=calllogs]"]
    assert after["plumasync.budget.wait[group=calllogs]"] > 0  # 31 requests through a budget of 18 per window
    assert after["plumasync.harvest.logs[state=done]"] == 30
    assert after["plumasync.harvest.logs[state=left]"] == 0
    assert "plumasync.budget.remaining[group=calllogs]" in after


def _total(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and 'group="calllogs"' in line)


def test_metrics_port_serves_counters_that_move_during_a_run(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.exporter.prometheus", reason="plumasync[metrics] is not installed")
    import os
    import socket
    import time

    import httpx

    from plumasync.sandbox import SandboxConfig, SandboxServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = SandboxConfig(calls_count=80, latency=0.05)
    with SandboxServer(config) as server:
        start = config.start_of_calls
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PLUM_LOGIN": "demo",
               "PLUM_PASSWORD": "demo-password", "PLUM_VOICETRENDS_URL": server.voicetrends_url,
               "PLUM_CALLLOGS_URL": server.calllogs_url}
        proc = subprocess.Popen([sys.executable, "-m", "plumasync", "-q", "harvest", "--start", str(start), "--end",
                                 str(start + 80 * 60), "--concurrency", "1", "--out", str(tmp_path / "c.db"),
                                 "--metrics-port", str(port)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        scraped: list[float] = []
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            scraped.append(_total(body, "plumasync_requests"))
            time.sleep(0.3)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    moving = [value for value in scraped if value > 0]
    assert len(moving) >= 2 and moving[-1] > moving[0], scraped  # the counter moved while we watched
