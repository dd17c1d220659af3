"""The command line's usual flags, and the time ranges of harvest and trends."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from plumasync import __version__
from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer

SECRET = "Wq5-flags-Secret-1207"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(calls_count=30, accounts={"demo": SECRET})) as srv:
        yield srv


def env_for(server: SandboxServer) -> dict[str, str | None]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": SECRET, "PLUM_VOICETRENDS_URL": server.voicetrends_url,
            "PLUM_CALLLOGS_URL": server.calllogs_url, "PLUM_STORE": None, "PLUM_BUDGET": None, "COLUMNS": "120"}


def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    result = CliRunner().invoke(app, args, env=env)
    assert SECRET not in result.stdout + result.stderr
    return result


def day_of_calls(server: SandboxServer) -> tuple[str, int, int]:
    """The UTC day of the sandbox's first call, and that day's bounds (Unix seconds)."""
    first = datetime.fromtimestamp(server.app.config.start_of_calls, timezone.utc)
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.date().isoformat(), int(midnight.timestamp()), int((midnight + timedelta(days=1)).timestamp())


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"plumasync {__version__}"


def test_verbose_is_shown_as_a_counted_flag_and_counts() -> None:
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout
    line = next(row for row in help_text.splitlines() if "--verbose" in row)
    assert "-vv" in line and "<int>" not in line and "INTEGER" not in line and "default: 0" not in line
    harvest_help = CliRunner().invoke(app, ["harvest", "--help"], env={"COLUMNS": "200"}).stdout
    assert "<int>" not in next(row for row in harvest_help.splitlines() if "--verbose" in row)


def test_shell_completion_is_typers_own() -> None:
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_quiet_prints_only_the_result(server: SandboxServer, tmp_path: Path) -> None:
    _, start, end = day_of_calls(server)
    result = invoke(["-q", "harvest", "--start", str(start - 30 * 86400), "--end", str(end),
                     "--out", str(tmp_path / "c.db")], env_for(server))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress lines, no retention warning
    assert "Harvest complete" in result.stdout


def test_log_file_gets_timestamped_lines_without_the_password(server: SandboxServer, tmp_path: Path) -> None:
    log = tmp_path / "plum.log"
    result = invoke(["--log-file", str(log), "--password", SECRET, "trends", "volume", "--start", "20240501",
                     "--end", "20240502"], env_for(server))
    assert result.exit_code == 0, result.output
    text = log.read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO plumasync: budget store: ", text, re.M), text
    assert SECRET not in text
    assert "INFO" not in result.stderr  # the file takes INFO; stderr stays at WARNING


def test_harvest_json_prints_the_summary_as_json(server: SandboxServer, tmp_path: Path) -> None:
    _, start, end = day_of_calls(server)
    result = invoke(["harvest", "--start", str(start), "--end", str(end), "--out", str(tmp_path / "c.db"),
                     "--json"], env_for(server))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    expected = len(server.app.expected_ids(start, end))
    assert summary["state"] == "complete" and summary["fetched"] == summary["stored"] == expected
    assert summary["throttled"] == 0 and summary["exit_code"] == 0 and summary["out"].endswith("c.db")


@pytest.mark.parametrize("form", ["iso", "compact"])
def test_harvest_with_the_same_plain_date_for_start_and_end_is_that_whole_day(
        server: SandboxServer, tmp_path: Path, form: str) -> None:
    day, start, end = day_of_calls(server)
    text = day if form == "iso" else day.replace("-", "")
    db = tmp_path / "c.db"
    result = invoke(["harvest", "--start", text, "--end", text, "--out", str(db)], env_for(server))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        ids = sorted(row[0] for row in conn.execute("SELECT log_id FROM calls"))
    assert ids == server.app.expected_ids(start, end) and ids


def test_an_exact_end_stays_excluded(server: SandboxServer, tmp_path: Path) -> None:
    start = server.app.config.start_of_calls
    spacing = int(server.app.config.calls_spacing)
    db = tmp_path / "c.db"
    result = invoke(["harvest", "--start", str(start), "--end", str(start + 3 * spacing), "--out", str(db)],
                    env_for(server))
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == len(
            server.app.expected_ids(start, start + 3 * spacing))


def test_both_helps_say_the_end_date_is_included() -> None:
    env = {"COLUMNS": "200"}
    harvest = " ".join(CliRunner().invoke(app, ["harvest", "--help"], env=env).stdout.split())
    trends = " ".join(CliRunner().invoke(app, ["trends", "volume", "--help"], env=env).stdout.split())
    assert "--end through the end of that day, included, as in trends" in harvest
    assert "Last day, included" in trends and "as in harvest" in trends
