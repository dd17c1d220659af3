"""The ``plumasync`` command line, against the sandbox on loopback (real clock, limits that never bind)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.e2e

#: A password distinctive enough that finding it anywhere in the output can only be a leak.
SECRET = "Zq7-distinctive-Secret-4411"


def period(config: SandboxConfig) -> tuple[int, int]:
    start = config.start_of_calls
    return start, start + int(config.calls_count * config.calls_spacing)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """A fresh sandbox (default limits: 150 per window, far more than a test spends) with 50 calls."""
    config = SandboxConfig(calls_count=50, accounts={"demo": SECRET})
    with SandboxServer(config) as srv:
        yield srv


def env_for(server: SandboxServer, password: str | None = SECRET) -> dict[str, str | None]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": password, "PLUM_VOICETRENDS_URL": server.voicetrends_url,
            "PLUM_CALLLOGS_URL": server.calllogs_url, "PLUM_STORE": None, "COLUMNS": "120"}


def invoke(args: list[str], env: Mapping[str, str | None]) -> Result:
    result = CliRunner().invoke(app, args, env=dict(env))
    assert SECRET not in result.stdout and SECRET not in result.stderr, "the password was printed"
    return result


def detail_requests(server: SandboxServer) -> int:
    return server.app.recorder.count(path_prefix="/ws/calls/log/")


# -- help ---------------------------------------------------------------------------------------------------

COMMANDS = [[], ["harvest"], ["demo"], ["budget"], ["sandbox"], ["trends"]] + [
    ["trends", r] for r in ("volume", "events", "performance", "profile", "geographic", "path")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_help_shows_an_example(command: list[str]) -> None:
    result = invoke([*command, "--help"], {"COLUMNS": "200", "PLUM_PASSWORD": SECRET})
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert re.search(r"plumasync " + re.escape(" ".join(command)), result.stdout)


def test_harvest_help_documents_dates_and_exit_codes() -> None:
    out = CliRunner().invoke(app, ["harvest", "--help"], env={"COLUMNS": "200"}).stdout
    assert "naive ones are read as UTC" in out
    for code in ("0 done", "1 finished", "2 usage", "3 authentication", "4 other", "130 interrupted"):
        assert code in out


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "plumasync", "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0 and "harvest" in proc.stdout


# -- validation: exit 2, nothing sent -----------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["harvest", "--start", "2024-13-45", "--end", "20240502"], "is not a time"),
    (["harvest", "--start", "yesterday", "--end", "20240502"], "is not a time"),
    (["harvest", "--start", "20240502", "--end", "20240501"], "is not after"),
    (["harvest", "--start", "20240501", "--end", "20240502", "--page-size", "0"], "--page-size"),
    (["harvest", "--start", "20240501", "--end", "20240502", "--number", "call-me"], "number"),
    (["harvest", "--start", "20240501", "--end", "20240502", "--out", "a.db", "--jsonl", "b.jsonl"],
     "not both"),
    (["trends", "volume", "--start", "2024-02-30", "--end", "20240302"], "is not a date"),
    (["trends", "volume", "--start", "20240301", "--end", "20240201"], "is before"),
    (["trends", "volume", "--start", "20240301", "--end", "20240302", "--period", "year"], "--period"),
    (["trends", "path", "--start", "20240301", "--end", "20240302", "--phone", "nobody"], "phone"),
])
def test_bad_input_exits_2_before_any_request(server: SandboxServer, tmp_path: Path, args: list[str],
                                              message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(args, env_for(server))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(server.app.recorder) == 0


def test_missing_credentials_is_a_usage_error(server: SandboxServer, tmp_path: Path) -> None:
    env = {**env_for(server), "PLUM_PASSWORD": None}
    result = invoke(["harvest", "--start", "20240501", "--end", "20240502", "--out", str(tmp_path / "c.db")],
                    env)
    assert result.exit_code == 2 and "PLUM_PASSWORD" in result.output
    assert len(server.app.recorder) == 0


def test_plain_http_to_a_remote_host_is_refused(server: SandboxServer, tmp_path: Path) -> None:
    env = {**env_for(server), "PLUM_CALLLOGS_URL": "http://plum.example.com/ws/"}
    result = invoke(["harvest", "--start", "20240501", "--end", "20240502", "--out", str(tmp_path / "c.db")],
                    env)
    assert result.exit_code == 2 and "https" in result.stderr


# -- trends and budget --------------------------------------------------------------------------------------


def test_trends_table_and_json(server: SandboxServer) -> None:
    env = env_for(server)
    table = invoke(["trends", "volume", "--start", "20240501", "--end", "2024-05-07"], env)
    assert table.exit_code == 0, table.output
    assert "calls" in table.stdout and "2024-05-07" in table.stdout and "┃" in table.stdout
    as_json = invoke(["trends", "volume", "--start", "20240501", "--end", "20240507", "--json"], env)
    data = json.loads(as_json.stdout)
    assert len(data["calls"]) == 7
    xml = invoke(["trends", "volume", "--start", "20240501", "--end", "20240507", "--json",
                  "--format", "xml"], env)
    assert json.loads(xml.stdout) == data  # the wire format does not change the report
    geo = invoke(["trends", "geographic", "--start", "20240501", "--end", "20240507", "--json"], env)
    assert set(json.loads(geo.stdout)) == {"us", "non_us"}
    path = invoke(["trends", "path", "--start", "20240501", "--end", "20240507"], env)
    assert path.exit_code == 0 and "visits" in path.stdout
    weekly = invoke(["trends", "profile", "--start", "20240501", "--end", "20240531", "--period", "week"],
                    env)
    assert weekly.exit_code == 0 and "callers" in weekly.stdout
    # One authentication for all six runs: the default store keeps the temporary credentials.
    assert server.app.recorder.count(path_prefix="/api/auth") == 1
    assert server.app.recorder.statuses()[429] == 0


def test_budget_prints_each_group(server: SandboxServer) -> None:
    result = invoke(["budget"], env_for(server))
    assert result.exit_code == 0, result.output
    for word in ("auth", "data", "calllogs", "limit", "next reset", "waiters"):
        assert word in result.stdout
    groups = json.loads(invoke(["budget", "--json"], env_for(server)).stdout)
    assert {g["group"] for g in groups} == {"auth", "data", "calllogs"}
    assert {g["limit"] for g in groups} == {15, 150}
    assert len(server.app.recorder) == 0  # reading the budget costs no request


def test_budget_without_flags_shows_the_default_store(server: SandboxServer) -> None:
    env = {**env_for(server), "PLUM_LOGIN": None, "PLUM_PASSWORD": None}
    empty = invoke(["budget"], env)
    assert empty.exit_code == 0 and "no run has used it yet" in " ".join(empty.stdout.split())  # wrap-proof
    assert invoke(["trends", "volume", "--start", "20240501", "--end", "20240502"], env_for(server)).exit_code == 0
    groups = {g["group"]: g for g in json.loads(invoke(["budget", "--json"], env).stdout)}
    assert set(groups) == {"auth", "data"} and groups["data"]["admitted"] == 1
    table = invoke(["budget"], env)
    assert table.exit_code == 0 and "data" in table.stdout and "store.db" in table.stdout


def test_budget_lists_a_shared_store_without_credentials(server: SandboxServer, tmp_path: Path) -> None:
    pytest.importorskip("plumasync.governor.stores.sqlite")
    store = f"sqlite:///{tmp_path / 'budget.db'}"
    start, end = period(server.app.config)
    run = invoke(["--store", store, "harvest", "--start", str(start), "--end", str(end),
                  "--out", str(tmp_path / "calls.db")], env_for(server))
    assert run.exit_code == 0, run.output
    env = {**env_for(server), "PLUM_LOGIN": None, "PLUM_PASSWORD": None}
    groups = json.loads(invoke(["budget", "--store", store, "--json"], env).stdout)
    calllogs = [g for g in groups if g["group"] == "calllogs"]
    assert len(calllogs) == 1 and calllogs[0]["admitted"] == 51
    assert calllogs[0]["mode"] == "headers" and calllogs[0]["remaining"] == 150 - 51
    table = invoke(["budget", "--store", store], env)
    assert table.exit_code == 0 and "calllogs" in table.stdout


# -- harvest ------------------------------------------------------------------------------------------------


def test_harvest_into_sqlite_stores_every_log_and_reruns_for_free(server: SandboxServer,
                                                                  tmp_path: Path) -> None:
    start, end = period(server.app.config)
    db = tmp_path / "calls.db"
    args = ["harvest", "--start", str(start), "--end", str(end), "--out", str(db)]
    first = invoke(args, env_for(server))
    assert first.exit_code == 0, first.output
    assert "Harvest complete: 50 of 50 logs" in first.stdout
    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT log_id FROM calls")]
        sample = conn.execute("SELECT log_id, detail FROM calls ORDER BY log_id LIMIT 1").fetchone()
    assert sorted(ids) == server.app.expected_ids(start, end)
    assert sample[1] == server.app.expected_log(sample[0]).detail()["log"]
    assert detail_requests(server) == 50
    again = invoke(args, env_for(server))
    assert again.exit_code == 0 and "0 fetched now, 50 already there" in again.stdout
    assert detail_requests(server) == 50  # nothing fetched twice
    assert server.app.recorder.statuses()[429] == 0


def test_harvest_into_jsonl_with_iso_dates(server: SandboxServer, tmp_path: Path) -> None:
    start, end = period(server.app.config)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))  # naive: read as UTC
    out = tmp_path / "calls.jsonl"
    result = invoke(["-v", "harvest", "--start", iso, "--end", str(end), "--jsonl", str(out),
                     "--concurrency", "4"], env_for(server))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(int(r["log_id"]) for r in rows) == server.app.expected_ids(start, end)
    first = rows[0]
    assert first["detail"]["log"] == server.app.expected_log(int(first["log_id"])).detail()["log"]


def test_logs_failing_after_retries_exit_1_and_a_rerun_fetches_just_those(
        server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plumasync.client
    from plumasync import RetryPolicy

    # One attempt, no backoff: a failed detail is given up at once (the default policy retries for seconds).
    monkeypatch.setattr(plumasync.client, "RetryPolicy", lambda: RetryPolicy(attempts=1, jitter=0))
    server.app.set(fail_requests={3, 5})  # request 1 lists, 2.. fetch details
    start, end = period(server.app.config)
    args = ["harvest", "--start", str(start), "--end", str(end), "--out", str(tmp_path / "calls.db")]
    quiet = invoke(args, env_for(server))
    assert quiet.exit_code == 1, quiet.output
    assert "2 logs failed after every retry (run with -v to list them)" in quiet.stdout
    assert "Run the same command again" in quiet.stdout
    server.app.set(fail_requests={server.app.requests_seen + 2})  # the rerun's first detail fails
    verbose = invoke(["-v", *args], env_for(server))
    assert verbose.exit_code == 1, verbose.output
    assert re.search(r"1 log failed after every retry\.\n  log \d+: GET .* HTTP 500", verbose.stdout)
    before = detail_requests(server)
    again = invoke(args, env_for(server))
    assert again.exit_code == 0, again.output
    assert "1 fetched now, 49 already there" in again.stdout
    assert detail_requests(server) == before + 1


def test_wrong_password_exits_3_without_printing_it(server: SandboxServer, tmp_path: Path) -> None:
    start, end = period(server.app.config)
    wrong = "Wrong-" + SECRET[::-1]
    env = env_for(server, password=wrong)
    for args in (["harvest", "--start", str(start), "--end", str(end), "--out", str(tmp_path / "c.db")],
                 ["trends", "volume", "--start", "20240501", "--end", "20240502"],
                 ["-v", "trends", "events", "--start", "20240501", "--end", "20240502"]):
        result = invoke(args, env)
        assert result.exit_code == 3, result.output
        assert "authentication failed" in result.stderr
        assert wrong not in result.output
        if "-v" not in args:
            assert "Traceback" not in result.output


def test_other_api_errors_exit_4(server: SandboxServer) -> None:
    env = {**env_for(server), "PLUM_VOICETRENDS_URL": server.url + "/nowhere/"}  # answers 404
    result = invoke(["trends", "volume", "--start", "20240501", "--end", "20240502"], env)
    assert result.exit_code == 4, result.output
    assert "error:" in result.stderr and "404" in result.stderr and "Traceback" not in result.output


# -- demo ---------------------------------------------------------------------------------------------------


def test_demo_end_to_end_without_429() -> None:
    began = time.monotonic()
    result = invoke(["demo", "--logs", "60", "--scale", "3000"], {"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert time.monotonic() - began < 10
    out = result.stdout
    assert re.search(r"logs harvested\s*│\s*60\s*│ of 60, each stored once", out)
    assert re.search(r"429 responses\s*│\s*0\s*│", out)
    assert "T_min" in out and "elapsed / T_min" in out and "bulk" in out


# -- sandbox ------------------------------------------------------------------------------------------------


def test_sandbox_refuses_a_non_loopback_host() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "loopback" in result.output


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """What ``proc`` printed up to the line containing ``marker`` (bounded by ``timeout``)."""
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    assert found.wait(timeout), "".join(lines)
    return "".join(lines)


def test_sandbox_command_prints_how_to_use_it_then_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "plumasync", "sandbox", "--port", "0", "--calls", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        banner = read_until(proc, "Ctrl-C", timeout=30)
        assert "demo-password" in banner and "export PLUM_LOGIN=demo" in banner
        url = re.search(r"PLUM_CALLLOGS_URL=(\S+)", banner)
        assert url is not None
        start, end = re.search(r"--start (\d+) --end (\d+)", banner).groups()  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while True:  # the banner comes just before uvicorn binds
            try:
                response = httpx.get(f"{url.group(1)}calls/logs/{start}/{end}",
                                     auth=("demo", "demo-password"))
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200 and '"total_logs":"10"' in response.text
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


# -- Ctrl-C -------------------------------------------------------------------------------------------------


def count_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_ctrl_c_stops_cleanly_and_prints_the_command_that_resumes(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=200, latency=0.01, accounts={"demo": SECRET},
                           limits={"calllogs": (100_000, 900)})
    start, end = period(config)
    db = tmp_path / "calls.db"
    with SandboxServer(config) as srv:
        cmd = [sys.executable, "-m", "plumasync", "--login", "demo", "--password", SECRET,
               "--calllogs-url", srv.calllogs_url, "harvest", "--start", str(start), "--end", str(end),
               "--out", str(db), "--concurrency", "2"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLUM_")}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while count_rows(db) == 0:
            assert proc.poll() is None and time.monotonic() < deadline, "the harvest ended too soon"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, out + err
        assert SECRET not in out + err
        assert "Harvest interrupted" in out and "Traceback" not in err
        stored = count_rows(db)
        assert 0 < stored < 200
        # the requests in flight at Ctrl-C finished and were stored: every answer the server sent is kept
        assert srv.app.recorder.count(path_prefix="/ws/calls/log/", status=200) == stored
        line = out.splitlines()[out.splitlines().index(
            "Resume with the same command (logs already stored cost no request):") + 1]
        resume = shlex.split(line.split("#")[0])
        assert resume[:3] == ["python", "-m", "plumasync"] and "--password" not in resume
        assert resume[3:] == cmd[3:5] + cmd[7:]  # the same command line, without the password
        before = srv.app.requests_seen
        done = subprocess.run([sys.executable, *resume[1:]], capture_output=True, text=True, timeout=60,
                              env={**env, "PLUM_PASSWORD": SECRET})
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{200 - stored} fetched now, {stored} already there" in done.stdout
        details = [r for r in srv.app.recorder.select(path_prefix="/ws/calls/log/") if r.number > before]
        assert len(details) == 200 - stored
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT log_id) FROM calls").fetchone() == (200, 200)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
    ("redis://host:6379/0?password=s3cret&expected_workers=8", "redis://host:6379/0?password=***&expected_workers=8"),
    ("sqlite:///budget.db", "sqlite:///budget.db"),
])
def test_store_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    from plumasync.cli._common import redact_url

    assert redact_url(url) == shown
