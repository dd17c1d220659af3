"""``plumasync harvest --plan``: the forecast for listing requests only, and the forecast at every start."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(calls_count=50, newest_first=True)) as srv:
        yield srv


def env_for(url_logs: str, url_trends: str) -> dict[str, str | None]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password", "PLUM_VOICETRENDS_URL": url_trends,
            "PLUM_CALLLOGS_URL": url_logs, "PLUM_STORE": None, "COLUMNS": "200"}


def args_for(server: SandboxServer, db: Path, *extra: str) -> list[str]:
    start = server.app.config.start_of_calls
    return ["harvest", "--start", str(start), "--end", str(start + 50 * 60), "--out", str(db), *extra]


def test_plan_spends_only_the_listing_and_writes_nothing(server: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    env = env_for(server.calllogs_url, server.voicetrends_url)
    result = CliRunner().invoke(app, args_for(server, db, "--plan", "--json"), env=env)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert (plan["listed"], plan["stored"], plan["pages"], plan["requests"], plan["expiring"]) == (50, 0, 1, 50, 0)
    assert plan["finish"].endswith("Z") and plan["expiring_from"] is None
    assert server.app.recorder.count(path_prefix="/ws/calls/log/") == 0 and not db.exists()
    text = CliRunner().invoke(app, args_for(server, db, "--plan"), env=env)
    assert text.exit_code == 0 and "50 calls listed" in text.stdout and "50 detail request(s) needed" in text.stdout
    run = CliRunner().invoke(app, args_for(server, db), env=env)
    assert run.exit_code == 0 and "Plan: 50 calls listed" in run.stderr  # every harvest forecasts first
    again = CliRunner().invoke(app, args_for(server, db, "--plan", "--json"), env=env)
    assert json.loads(again.stdout)["stored"] == 50 and json.loads(again.stdout)["requests"] == 0


def test_plan_on_an_unreachable_server_is_one_line_exit_4(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/ws/"
    db = tmp_path / "calls.db"
    args = ["harvest", "--start", "20240501", "--end", "20240502", "--out", str(db), "--plan"]
    result = CliRunner().invoke(app, args, env=env_for(url, url))
    assert result.exit_code == 4, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert not db.exists()
