"""Sinks never destroy data: damaged JSON Lines, foreign files, special files, unwritable SQLite,
empty databases, two harvests into one file.  Library and CLI, against the sandbox on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from plumasync import ConfigurationError
from plumasync.cli import app
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.sinks import JSONLSink, SQLiteSink
from plumasync.testing import sandbox_client

pytestmark = pytest.mark.e2e
CALLS = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(calls_count=CALLS)) as srv:
        yield srv


def period(server: SandboxServer) -> tuple[int, int]:
    config = server.app.config
    start = config.start_of_calls
    return start, start + int(config.calls_count * config.calls_spacing) + 1


def requests(server: SandboxServer) -> int:
    return server.app.recorder.count(path_prefix="/ws/")


def details(server: SandboxServer) -> int:
    return server.app.recorder.count(path_prefix="/ws/calls/log/")


def harvest(server: SandboxServer, **sink: object) -> object:
    async def run() -> object:
        async with sandbox_client(server) as plum:
            return await plum.calllogs.harvest(*period(server), **sink).run()

    return anyio.run(run)


def env_for(server: SandboxServer) -> dict[str, str | None]:
    return {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password", "PLUM_VOICETRENDS_URL": server.voicetrends_url,
            "PLUM_CALLLOGS_URL": server.calllogs_url, "PLUM_STORE": None, "COLUMNS": "200"}


def cli_harvest(server: SandboxServer, *sink: str, env: Mapping[str, str | None] | None = None) -> Result:
    start, end = period(server)
    return CliRunner().invoke(app, ["harvest", "--start", str(start), "--end", str(end), *sink],
                              env=dict(env or env_for(server)))


def flat(text: str) -> str:
    """CLI output without the error panel's frame and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# -- JSON Lines recovery ----------------------------------------------------------------------------------


def test_a_damaged_middle_line_is_set_aside_and_only_its_log_fetched_again(server: SandboxServer,
                                                                           tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    harvest(server, jsonl=path)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == CALLS
    damaged_id = json.loads(lines[4])["log_id"]
    lines[4] = b'{"log_id": 12, "sess\xff garbage\n'
    path.write_bytes(b"".join(lines))
    before = details(server)

    sink = JSONLSink(path)
    assert sink.damaged == [5] and sink.count() == CALLS - 1
    sink.close()

    summary = harvest(server, jsonl=path)
    assert details(server) - before == 1  # only the damaged line's log
    after = path.read_bytes().splitlines(keepends=True)
    assert after[:CALLS] == lines  # every line kept, the damaged one in place
    assert json.loads(after[CALLS])["log_id"] == damaged_id
    assert summary.complete  # type: ignore[attr-defined]


def test_the_cli_reports_a_damaged_line_by_number(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    harvest(server, jsonl=path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"###\n"
    path.write_bytes(b"".join(lines))
    result = cli_harvest(server, "--jsonl", str(path))
    assert result.exit_code == 0, result.output
    assert "line 3" in flat(result.output)
    assert "1 fetched now" in flat(result.output)
    rerun = details(server)
    harvest(server, jsonl=path)
    assert details(server) == rerun  # healed: nothing left to fetch


def test_a_middle_line_without_log_id_is_not_a_reason_to_drop_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    good = [json.dumps({"log_id": i, "detail": {"log": "x"}}).encode() + b"\n" for i in range(1, 7)]
    path.write_bytes(b"".join(good[:3]) + b'{"detail": {}}\n' + b"".join(good[3:]))
    sink = JSONLSink(path)
    assert sink.stored(range(1, 7)) == set(range(1, 7)) and sink.damaged == [4]
    sink.close()
    assert path.read_bytes() == b"".join(good[:3]) + b'{"detail": {}}\n' + b"".join(good[3:])


def test_only_a_torn_final_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    whole = b"".join(json.dumps({"log_id": i, "detail": {}}).encode() + b"\n" for i in (1, 2))
    path.write_bytes(whole + b'{"log_id":3,"session_id":"40')
    sink = JSONLSink(path)
    assert sink.count() == 2 and sink.damaged == []
    sink.close()
    assert path.read_bytes() == whole


def test_a_final_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b'{"log_id":1,"detail":{}}\n{"log_id":2,"detail":{}}')
    sink = JSONLSink(path)
    assert sink.count() == 2
    sink.close()
    assert path.read_bytes() == b'{"log_id":1,"detail":{}}\n{"log_id":2,"detail":{}}\n'


@pytest.mark.parametrize("content", [b'{"id": 1, "name": "a"}\n{"id": 2}\n', b"a,b,c\n1,2,3\n",
                                     b'{"other": true}'])
def test_someone_elses_file_is_refused_untouched(server: SandboxServer, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "theirs.jsonl"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match="no plumasync record"):
        JSONLSink(path)
    result = cli_harvest(server, "--jsonl", str(path))
    assert result.exit_code == 2, result.output
    assert "no plumasync record" in flat(result.output)
    assert requests(server) == 0
    assert path.read_bytes() == content


# -- paths that are not regular files -----------------------------------------------------------------------


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def open_in_child(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Open a sink on ``path`` in a child process (bounded in time and memory: a sink that reads a
    FIFO or a device without end must fail the test, not hang or exhaust the machine)."""
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            f"from plumasync.sinks import {kind}\n"
            f"try:\n    {kind}({str(path)!r})\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                              cwd=path.parent if path.parent.is_dir() else "/")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind}({str(path)!r}) did not return")


@pytest.mark.parametrize("make", [lambda _: Path("/dev/full"), fifo, lambda p: p], ids=["dev-full", "fifo", "dir"])
@pytest.mark.parametrize("kind", ["JSONLSink", "SQLiteSink"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path: Path, make: Callable[[Path], Path],
                                                      kind: str) -> None:
    child = open_in_child(kind, make(tmp_path))
    assert child.stdout.startswith("ConfigurationError") and "regular file" in child.stdout, child


@pytest.mark.parametrize("option", ["--jsonl", "--out"])
def test_the_cli_refuses_a_fifo_before_any_request(server: SandboxServer, tmp_path: Path, option: str) -> None:
    start, end = period(server)
    env = {k: v for k, v in {**os.environ, **env_for(server)}.items() if v is not None}
    try:  # a child process: a CLI stuck reading the FIFO must fail the test, not hang it
        child = subprocess.run([sys.executable, "-m", "plumasync", "harvest", "--start", str(start), "--end",
                                str(end), option, str(fifo(tmp_path))], env=env, capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("the CLI did not return")
    assert child.returncode == 2, child.stderr
    assert "FIFO" in flat(child.stderr)
    assert requests(server) == 0


# -- SQLite that cannot be written ---------------------------------------------------------------------------


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[Path]:
    """``path`` made unwritable for this process: immutable when root (chattr +i), else read-only."""
    root = os.geteuid() == 0
    if root:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a file unwritable")
    else:
        path.chmod(0o444)
    try:
        yield path
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)


def test_an_unwritable_sqlite_file_is_refused_before_any_request(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    SQLiteSink(path).close()  # an empty database: removed on close, so make a real one
    harvest(server, sink=path)
    stored_before = details(server)
    server.app.set(calls_count=CALLS + 10)  # there is more to fetch
    with unwritable(path):
        with pytest.raises(ConfigurationError, match=r"calls\.db"):
            SQLiteSink(path)
        result = cli_harvest(server, "--out", str(path))
    assert result.exit_code == 2, result.output
    assert details(server) == stored_before
    assert "unexpected error" not in result.output


def test_a_run_that_stores_nothing_leaves_no_empty_database(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    server.app.set(fail_rate=1.0)
    result = cli_harvest(server, "--out", str(path))
    assert result.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_database_that_was_there_before_is_kept_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    path.touch()
    SQLiteSink(path).close()
    assert path.exists()


# -- two harvests, one sink ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [JSONLSink, SQLiteSink])
def test_a_second_sink_on_the_same_file_is_refused_while_the_first_is_open(tmp_path: Path, kind: type) -> None:
    path = tmp_path / "calls.out"
    first = kind(path)
    try:
        with pytest.raises(ConfigurationError, match="in use by another harvest"):
            kind(path)
    finally:
        first.close()
    kind(path).close()  # free again once the first is closed


def test_the_cli_refuses_a_sink_another_harvest_holds(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    holder = SQLiteSink(path)
    try:
        result = cli_harvest(server, "--out", str(path))
    finally:
        holder.close()
    assert result.exit_code == 2, result.output
    assert "in use by another harvest" in flat(result.output)
    assert requests(server) == 0
