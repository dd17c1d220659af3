"""Capture the command line's screens at 80 and 120 columns, piped and on a terminal, into docs/screens/.

    python docs/capture.py [OUT_DIR]

Runs ``plumasync`` against a sandbox on loopback (no account, no network).  "piped": stdout and stderr
are pipes (what cron, CI and ``| less`` see).  "terminal": the command runs in a detached tmux window of
that width and the screen is captured as shown (needs tmux; without it, rich is told the output is a
terminal with ``TTY_COMPATIBLE=1`` and colour codes are stripped).  tests/test_cli_screens.py checks the
captures for cut values.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from plumasync.sandbox import SandboxConfig, SandboxServer

WIDTHS = (80, 120)
MODES = ("piped", "terminal")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def screens(day: str) -> dict[str, list[str]]:
    """The commands captured, by name (``day``: the sandbox's day of calls, YYYY-MM-DD)."""
    return {
        "trends-performance": ["trends", "performance", "--start", "20261101", "--end", "20261107"],
        "trends-volume": ["trends", "volume", "--start", "20261101", "--end", "20261104"],
        "harvest": ["harvest", "--start", day, "--end", day, "--out", "calls.db"],
        "budget": ["budget"],
    }


def _piped(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "plumasync", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)
    return proc.stdout + proc.stderr


def _tmux(args: list[str], env: dict[str, str], cwd: Path, width: int) -> str:
    session = f"plumasync-{uuid.uuid4().hex[:8]}"
    marker = "__screen_done__"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("PLUM_", "XDG_", "PYTHON")))
    command = (f"cd {shlex.quote(str(cwd))} && env {exports} COLUMNS={width} TERM=xterm-256color "
               f"{shlex.quote(sys.executable)} -m plumasync {shlex.join(args)}; echo {marker}; sleep 600")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", "50", command],
                   check=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            shown = subprocess.run(["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", session],
                                   capture_output=True, text=True, check=True).stdout
            if marker in shown:
                return shown.split(marker)[0].rstrip() + "\n"
            if time.monotonic() > deadline:
                raise TimeoutError(shown)
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _forced(args: list[str], env: dict[str, str], cwd: Path) -> str:
    return _ANSI.sub("", _piped(args, {**env, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0"}, cwd))


def _one(out_dir: Path, tmp: Path, name: str, args: list[str], env: dict[str, str], width: int,
         mode: str) -> Path:
    cwd = tmp / f"{name}-{width}-{mode}"
    cwd.mkdir()
    if mode == "piped":
        text = _piped(args, env, cwd)
    elif shutil.which("tmux"):
        text = _tmux(args, env, cwd, width)
    else:
        text = _forced(args, env, cwd)
    path = out_dir / f"{name}-{width}-{mode}.txt"
    path.write_text(f"$ plumasync {shlex.join(args)}\n{text}")
    return path


def capture(out_dir: Path, widths: tuple[int, ...] = WIDTHS, modes: tuple[str, ...] = MODES,
            names: tuple[str, ...] | None = None) -> list[Path]:
    """Write one file per (screen, width, mode) into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SandboxConfig(calls_count=40)
    day = datetime.fromtimestamp(config.start_of_calls, timezone.utc).date().isoformat()
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            for mode in modes:
                # A new sandbox and default store per (width, mode): each series starts from full budgets.
                with SandboxServer(config) as server:
                    base = {k: v for k, v in os.environ.items() if not k.startswith("PLUM_")}
                    base.update(PLUM_LOGIN="demo", PLUM_PASSWORD="demo-password", COLUMNS=str(width),
                                PLUM_VOICETRENDS_URL=server.voicetrends_url, PLUM_CALLLOGS_URL=server.calllogs_url,
                                XDG_STATE_HOME=str(Path(tmp) / f"state-{width}-{mode}"))
                    for name, args in screens(day).items():
                        if names is None or name in names:
                            written.append(_one(out_dir, Path(tmp), name, args, base, width, mode))
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "screens"
    for written_path in capture(target):
        print(written_path)
