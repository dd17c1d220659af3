"""The README's set-up and examples, run as written (against the sandbox on loopback)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from plumasync.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()  # read as text: tomllib needs Python 3.11


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_set_up_states_python_the_venv_line_and_exactly_two_set_up_lines() -> None:
    setup = section("Set up")
    assert "Python >= 3.10" in setup
    assert 'requires-python = ">=3.10"' in PYPROJECT
    venv, lines = blocks(setup, "bash")
    assert venv.strip() == "python3 -m venv .venv && . .venv/bin/activate"
    two = [line for line in lines.splitlines() if line.strip()]
    assert len(two) == 2 and two[0].endswith("plumasync demo") and two[1].endswith("pytest -q -n 2")
    assert "[dashboard]" in setup


def test_the_dashboard_extra_installs_starlette() -> None:
    assert re.search(r'^dashboard = \["starlette>=[\d.]+"\]$', PYPROJECT, re.M)
    dependencies = PYPROJECT.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert '"platformdirs>=' in dependencies


@pytest.mark.skipif(shutil.which("bash") is None or sys.platform != "linux", reason="needs bash and GNU date")
def test_the_command_line_examples_run_against_the_sandbox(tmp_path: Path) -> None:
    (example,) = [b for b in blocks(section("Command line"), "bash") if "PLUM_LOGIN=demo" in b]
    assert "plumasync sandbox --calls 60" in section("Command line")
    with SandboxServer(SandboxConfig(calls_count=60)) as server:
        port = server.calllogs_url.split(":")[-1].split("/")[0]
        script = example.replace("127.0.0.1:8765", f"127.0.0.1:{port}")
        bindir = tmp_path / "bin"  # `plumasync` on PATH runs this interpreter on this checkout
        bindir.mkdir()
        (bindir / "plumasync").write_text(f"#!/bin/sh\nexec {sys.executable} -m plumasync \"$@\"\n")
        (bindir / "plumasync").chmod(0o755)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("PLUM_")},
               "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "COLUMNS": "100",
               "XDG_STATE_HOME": str(tmp_path / "state")}
        proc = subprocess.run(["bash", "-e", "-x", "-c", script], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.app.recorder.statuses()[429] == 0
    assert (tmp_path / "calls.db").exists() and (tmp_path / "calls.jsonl").exists()
    assert '"state": "complete"' in proc.stdout
    assert proc.stdout.count("┃") > 0 and "…" not in proc.stdout


def test_the_library_example_runs_against_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = [b for b in blocks(section("Using the library"), "python") if "anyio.run(main)" in b]
    with SandboxServer(SandboxConfig(accounts={"my-dev-login": "..."})) as server:
        monkeypatch.setenv("PLUM_VOICETRENDS_URL", server.voicetrends_url)
        monkeypatch.setenv("PLUM_CALLLOGS_URL", server.calllogs_url)
        monkeypatch.delenv("PLUM_STORE", raising=False)
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
        assert server.app.recorder.count(path_prefix="/api/volume/") == 1


def test_the_sandbox_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = [b for b in blocks(section("The sandbox: Plum on loopback, for your tests too"), "python")]
    # The example's body is an async test: run it inside an async function, as a test would.
    body = textwrap.indent(code, "    ")
    namespace: dict[str, object] = {}
    exec(compile(f"async def example():\n{body}\n", "README.md", "exec"), namespace)
    anyio.run(namespace["example"])  # type: ignore[arg-type]
