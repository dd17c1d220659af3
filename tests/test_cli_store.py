"""The CLI's stores: the default one in the user's state directory, store URLs, and ``--budget``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plumasync import Budget, PlumClient
from plumasync.cli import app
from plumasync.errors import ConfigurationError
from plumasync.governor.stores.sqlite import SQLiteStore
from plumasync.sandbox import SandboxConfig, SandboxServer

SECRET = "Yk2-store-Secret-9903"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(calls_count=20, accounts={"demo": SECRET})) as srv:
        yield srv


def env_for(server: SandboxServer, **extra: str | None) -> dict[str, str | None]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": SECRET, "PLUM_VOICETRENDS_URL": server.voicetrends_url,
            "PLUM_CALLLOGS_URL": server.calllogs_url, "PLUM_STORE": None, "PLUM_BUDGET": None,
            "COLUMNS": "120", **extra}


def invoke(args: list[str], env: dict[str, str | None]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, env=env)
    assert SECRET not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def state_home() -> Path:
    return Path(os.environ["XDG_STATE_HOME"])  # a temporary directory (tests/conftest.py)


VOLUME = ["trends", "volume", "--start", "20240501", "--end", "20240503"]


# -- the default store ----------------------------------------------------------------------------------------


def test_the_default_store_is_a_private_file_in_the_state_directory(server: SandboxServer) -> None:
    code, _, err = invoke(VOLUME, env_for(server))
    assert code == 0, err
    db = state_home() / "plumasync" / "store.db"
    assert db.exists(), "the CLI kept its budget in memory"
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_consecutive_runs_share_one_authentication_and_one_budget(server: SandboxServer) -> None:
    for _ in range(3):
        code, _, err = invoke([*VOLUME, "--phone", "ALL"], env_for(server))
        assert code == 0, err
        code, _, err = invoke(["trends", "events", "--start", "20240501", "--end", "20240503"], env_for(server))
        assert code == 0, err
    assert server.app.recorder.count(path_prefix="/api/auth") == 1
    code, out, _ = invoke(["budget", "--json"], env_for(server, PLUM_LOGIN=None, PLUM_PASSWORD=None))
    data = {g["group"]: g for g in json.loads(out)}
    # the store saw every data request of every run (results are cached, so two reached the server)
    assert data["data"]["admitted"] == server.app.recorder.count(path_prefix="/api/") - 1 == 2


def test_store_memory_opts_out(server: SandboxServer) -> None:
    for _ in range(2):
        code, _, err = invoke(["--store", "memory", *VOLUME], env_for(server))
        assert code == 0, err
    assert server.app.recorder.count(path_prefix="/api/auth") == 2
    assert not (state_home() / "plumasync" / "store.db").exists()


def test_the_library_default_stays_in_memory(server: SandboxServer) -> None:
    plum = PlumClient(login="demo", password=SECRET, voicetrends_url=server.voicetrends_url, env={})
    assert not plum.store.shared
    assert not (state_home() / "plumasync").exists()


def test_eight_runs_in_a_row_authenticate_once_and_each_takes_seconds(tmp_path: Path) -> None:
    """Plum allows 15 authentications per 15 minutes; this server 5. Eight separate processes run
    ``plumasync trends`` one after the other: all succeed at once, on one authentication."""
    config = SandboxConfig(limits={"auth": (5, 900.0)}, accounts={"demo": SECRET})
    with SandboxServer(config) as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLUM_")}
        env.update(PLUM_LOGIN="demo", PLUM_PASSWORD=SECRET, PLUM_VOICETRENDS_URL=srv.voicetrends_url,
                   XDG_STATE_HOME=str(tmp_path / "state"), COLUMNS="100")
        durations = []
        for day in range(1, 9):  # a different report each time: the result cache cannot hide a request
            began = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "plumasync", "trends", "volume", "--start",
                                   f"202405{day:02d}", "--end", f"202405{day:02d}"],
                                  capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
            durations.append(time.monotonic() - began)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert f"2024-05-{day:02d}" in proc.stdout and "WARNING" not in proc.stderr
        assert srv.app.recorder.count(path_prefix="/api/auth") == 1
        assert srv.app.recorder.count(path_prefix="/api/volume/") == 8
        assert srv.app.recorder.statuses()[429] == 0
        assert max(durations) < 10, durations  # seconds: Python's start-up, not a wait for a window


# -- store URLs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["url4", "bare", "relative"])
def test_store_urls_follow_the_sqlalchemy_convention_and_accept_a_path(tmp_path: Path, form: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "var" / "lib" / "app" / "b.db"
    target.parent.mkdir(parents=True)
    text = {"url4": f"sqlite:///{target}", "bare": str(target), "relative": "sqlite:///var/lib/app/b.db"}[form]
    assert f"sqlite:///{target}".startswith("sqlite:////")
    store = SQLiteStore.from_url(text)
    assert store.path == str(target)


def test_a_relative_sqlite_url_whose_folder_is_missing_names_the_absolute_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        SQLiteStore.from_url("sqlite:///var/lib/app/b.db")
    message = str(info.value)
    assert str(tmp_path / "var" / "lib" / "app" / "b.db") in message
    assert "sqlite:////var/lib/app/b.db" in message  # how to say the absolute one


@pytest.mark.parametrize("store, message", [
    ("mysql://db.internal/plum", "unknown store scheme 'mysql'"),
    ("postgres://u:pw-Secret@h/d", "unknown store scheme"),
    ("sqlite://host/budget.db", "names a host"),
    ("sqlite:///", "no file path"),
    ("sqlite:budget.db", "does not parse"),
    ("redis://localhost:notaport/0", "bad port"),
    ("sqlite:////nonexistent-dir-plumasync/budget.db", "/nonexistent-dir-plumasync does not exist"),
    ("/", "is a directory"),
])
def test_bad_store_urls_are_one_line_usage_errors_before_any_request(server: SandboxServer, store: str,
                                                                     message: str) -> None:
    code, out, err = invoke(["--store", store, *VOLUME], env_for(server))
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert "pw-Secret" not in err
    assert len(server.app.recorder) == 0
    code, _, err = invoke(VOLUME, env_for(server, PLUM_STORE=store))  # the same from the environment
    assert code == 2 and message in err


def test_a_bare_path_store_works_end_to_end(server: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    code, _, err = invoke(["--store", str(db), *VOLUME], env_for(server))
    assert code == 0, err
    code, out, _ = invoke(["budget", "--store", str(db), "--json"], env_for(server, PLUM_LOGIN=None))
    assert {g["group"] for g in json.loads(out)} == {"auth", "data"}


# -- --budget -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, limit, window", [("150/900", 150, 900.0), ("30/60", 30, 60.0),
                                                 (" 15 / 15m", 15, 900.0), ("1000/1h", 1000, 3600.0)])
def test_budget_parse(text: str, limit: int, window: float) -> None:
    budget = Budget.parse(text)
    assert (budget.limit, budget.window) == (limit, window)


@pytest.mark.parametrize("text", ["150", "0/900", "abc", "150/0", "-1/900", "150/x", ""])
def test_budget_parse_refuses(text: str) -> None:
    with pytest.raises(ConfigurationError):
        Budget.parse(text)


@pytest.mark.parametrize("where", ["option", "after the command", "env"])
@pytest.mark.parametrize("text", ["150", "0/900", "abc"])
def test_a_bad_budget_is_a_usage_error_before_any_request(server: SandboxServer, text: str, where: str) -> None:
    if where == "option":
        args, env = ["--budget", text, *VOLUME], env_for(server)
    elif where == "env":
        args, env = VOLUME, env_for(server, PLUM_BUDGET=text)
    else:
        args, env = [*VOLUME, "--budget", text], env_for(server)
    code, out, err = invoke(args, env)
    assert code == 2, out + err
    assert "LIMIT/WINDOW" in err or "positive" in err
    assert "Traceback" not in err
    assert len(server.app.recorder) == 0


def test_the_budget_governs_a_headerless_call_logs_api(tmp_path: Path) -> None:
    """A Call Logs API without rate-limit headers: --budget LIMIT/WINDOW is the limit the CLI keeps to."""
    config = SandboxConfig(calls_count=3, calllogs_headers=False, accounts={"demo": SECRET})
    start = config.start_of_calls
    with SandboxServer(config) as srv:
        env = env_for(srv, PLUM_BUDGET="5/900")
        code, out, err = invoke(["harvest", "--start", str(start), "--end", str(start + 3 * 60 * 60),
                                 "--out", str(tmp_path / "c.db"), "--json"], env)
        assert code == 0, out + err
        assert json.loads(out)["requests"] == 4  # one page, three details
        code, out, err = invoke(["budget", "--json"], env)
    calllogs = next(g for g in json.loads(out) if g["group"] == "calllogs")
    assert (calllogs["mode"], calllogs["limit"], calllogs["available"]) == ("headerless", 5, 1)
