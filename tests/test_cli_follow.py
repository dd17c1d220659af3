"""``plumasync harvest --follow`` and relative times from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    now = int(time.time())
    config = SandboxConfig(calls_count=120, calls_start=now - 3600, calls_spacing=60, live=True)
    with SandboxServer(config) as srv:
        yield srv


def env_for(server: SandboxServer) -> dict[str, str]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password", "PLUM_VOICETRENDS_URL": server.voicetrends_url,
            "PLUM_CALLLOGS_URL": server.calllogs_url, "COLUMNS": "200"}


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "1h", "--until", "now", "--follow"], "--follow runs until stopped"),
    (["--since", "1h", "--follow", "--plan"], "choose one of --follow and --plan"),
    (["--since", "1h"], "an end is required"),
    (["--since", "yesterday-ish", "--until", "now"], "is not a time"),
])
def test_bad_follow_input_exits_2_and_writes_nothing(server: SandboxServer, tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    db = tmp_path / "calls.db"
    result = CliRunner().invoke(app, ["harvest", *args, "--out", str(db)], env=env_for(server))
    assert result.exit_code == 2, result.output
    assert message in result.output and not db.exists()
    assert server.app.recorder.count(path_prefix="/ws/") == 0


def test_relative_times_harvest_the_last_hour(server: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    result = CliRunner().invoke(app, ["harvest", "--since", "2h", "--until", "now", "--out", str(db), "--json"],
                                env=env_for(server))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["fetched"] == summary["total"] >= 59  # a call a minute, the last hour, started by now


def test_follow_stops_cleanly_on_sigterm_and_keeps_its_watermark(server: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = {**os.environ, **env_for(server), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "plumasync", "harvest", "--since", "2h", "--follow", "--json",
                             "--out", str(db)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    mark = db.with_name(db.name + ".watermark")
    while not mark.exists() and time.monotonic() < deadline:  # the first cycle has stored everything
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    totals = json.loads(out)
    assert totals["cycles"] == 1 and totals["failed"] == 0 and totals["fetched"] >= 59
    assert totals["watermark"] == int(mark.read_text())
