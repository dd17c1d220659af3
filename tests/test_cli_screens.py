"""What the command line shows: counters and ETA that tell the truth, tables that never cut a value,
the demo's database, the sandbox's request log, and the captured screens in docs/screens/."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from plumasync import Budget, GroupKey, Usage
from plumasync.cli import app
from plumasync.cli._progress import HarvestDisplay
from plumasync.harvest import HarvestProgress
from plumasync.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parent.parent
KEY = GroupKey("host", "account", "calllogs")


# -- the progress display ---------------------------------------------------------------------------------------


class StepClock:
    """A clock the test moves by hand (the display only reads it)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeHarvest:
    def __init__(self, progress: HarvestProgress, eta: float | None) -> None:
        self.progress = progress
        self._eta = eta

    def eta(self) -> float | None:
        return self._eta


def display_for(progress: HarvestProgress, *, eta: float | None, snapshot: Any = None,
                throttled: int = 0) -> tuple[HarvestDisplay, Any, StepClock]:
    clock = StepClock(1_000_000.0)
    counts = Usage(sent=0, throttled=throttled)
    governor = SimpleNamespace(usage=lambda key: counts, counts=counts, peek=lambda key: snapshot,
                               policy=lambda key: Budget().policy())
    plum = SimpleNamespace(groups={"calllogs": KEY}, governor=governor, clock=clock,
                           store=SimpleNamespace(shared=False))
    console = Console(file=io.StringIO(), width=120)
    display = HarvestDisplay(console, plum, FakeHarvest(progress, eta), title="t")  # type: ignore[arg-type]
    return display, governor, clock


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}|(?<=\d) (?=\d)", line.strip())


def test_the_429_counter_counts_the_429_whose_retry_is_still_waiting() -> None:
    # A 429 arrived: the governor counted it and paused the group; the request waits to be retried, so
    # the harvest's own counter (updated when a request completes) still says 0.
    progress = HarvestProgress(total=100, done=20, requests=21, throttled=0, started=999_990.0)
    paused = SimpleNamespace(available=0, limit=150, reset_at=1_000_060.0, paused_until=1_000_060.0)
    display, governor, _ = display_for(progress, eta=60.0, snapshot=paused)
    governor.counts.throttled += 1
    display._snapshot = paused
    assert display.throttled() == 1
    line = display.line()
    assert re.search(r"\b21\s+1\s+paused\b", line), line  # requests, 429s, budget
    assert "paused after a 429" in display._reset()
    panel = Console(file=io.StringIO(), width=120)
    panel.print(display.render())
    assert "1 × 429" in panel.file.getvalue()  # type: ignore[attr-defined]


def test_a_pause_from_another_process_says_so_instead_of_showing_0_next_to_a_429() -> None:
    progress = HarvestProgress(total=100, done=20, requests=21, started=999_990.0)
    paused = SimpleNamespace(available=0, limit=150, reset_at=1_000_060.0, paused_until=1_000_060.0)
    display, _, _ = display_for(progress, eta=60.0, snapshot=paused)
    display._snapshot = paused
    assert "paused after another process's 429" in display._reset()


def test_the_eta_is_not_zero_while_a_third_of_the_work_is_left_to_send() -> None:
    # Everything left fits in the window, so the window arithmetic adds no wait: 0 s.  But 68 requests
    # still take their round trips.
    progress = HarvestProgress(total=100, done=32, requests=33, started=999_990.0)
    display, _, clock = display_for(progress, eta=0.0)
    assert not display.line().endswith(" 0.0 s"), display.line()  # unknown yet: "—", not 0.0 s
    assert display.eta_seconds() is None
    for _ in range(4):  # 4 logs a second
        display.sample()
        clock.advance(1.0)
        progress.done += 4
    display.sample()
    assert display.eta_seconds() == pytest.approx((100 - 48) / 4)
    assert display.line().split()[-2:] == ["13", "s"]


def test_the_eta_keeps_the_window_arithmetic_when_it_says_more() -> None:
    progress = HarvestProgress(total=300, done=100, requests=101, started=999_990.0)
    display, _, clock = display_for(progress, eta=600.0)
    display.sample()
    clock.advance(1.0)
    progress.done += 50
    display.sample()
    assert display.eta_seconds() == 600.0


# -- tables --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(calls_count=10)) as srv:
        yield srv


HEADER_WORDS = {
    "volume": ["period", "start", "calls", "minutes", "transfers", "transfer", "average", "length"],
    "events": ["period", "start", "calls", "events", "loops", "form", "items", "average", "loop", "count"],
    "performance": ["period", "start", "calls", "errors", "fetch", "average", "page", "load", "call"],
}


@pytest.mark.parametrize("width", [50, 60, 80])
@pytest.mark.parametrize("resource", list(HEADER_WORDS))
def test_tables_keep_dates_whole_and_split_headers_only_between_words(sandbox: SandboxServer, width: int,
                                                                       resource: str) -> None:
    env = {"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "demo-password", "PLUM_STORE": "memory",
           "PLUM_VOICETRENDS_URL": sandbox.voicetrends_url, "COLUMNS": str(width)}
    result = CliRunner().invoke(app, ["trends", resource, "--start", "20261101", "--end", "20261107"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "…" not in out, out
    for day in range(1, 8):
        assert f"2026-11-{day:02d}" in out, out
    for word in HEADER_WORDS[resource]:
        assert re.search(rf"(?<![\w-]){word}(?![\w-])", out), f"{word!r} was split:\n{out}"


# -- the demo, the sandbox's request log ------------------------------------------------------------------------------


def test_the_demo_keeps_its_database_with_out_and_never_shows_a_path_it_deletes(tmp_path: Path) -> None:
    env = {"COLUMNS": "120"}
    kept = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--logs", "30", "--scale", "3000", "--out", str(kept)], env=env)
    assert result.exit_code == 0, result.output
    assert kept.exists() and f"kept in {kept}" in " ".join(result.stdout.split())
    result = CliRunner().invoke(app, ["demo", "--logs", "30", "--scale", "3000"], env=env)
    assert result.exit_code == 0, result.output
    for shown in re.findall(r"(/\S+\.db)\b", result.stdout):
        assert Path(shown).exists(), f"the demo printed {shown}, then deleted it"
    assert "temporary" in result.stdout and "--out" in result.stdout


def test_sandbox_verbose_logs_each_request(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "plumasync", "sandbox", "--port", "0", "--calls", "5", "-v"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"}, cwd=tmp_path)
    lines: list[str] = []
    seen = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "/ws/calls/logs/" in line:
                seen.set()

    try:
        assert proc.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            line = proc.stdout.readline()
            assert line, f"the sandbox exited: {proc.stderr.read() if proc.stderr else ''}"
            banner += line
        url = re.search(r"PLUM_CALLLOGS_URL=(\S+)", banner).group(1)  # type: ignore[union-attr]
        threading.Thread(target=read_stderr, daemon=True).start()
        for _ in range(100):
            try:
                httpx.get(f"{url}calls/logs/1/2", auth=("demo", "demo-password"))
                break
            except httpx.ConnectError:
                threading.Event().wait(0.05)
        assert seen.wait(15), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    line = next(text for text in lines if "/ws/calls/logs/" in text)
    assert re.search(r"GET /ws/calls/logs/1/2 -> \d{3}\s+remaining \d+/150", line), line


# -- the captured screens --------------------------------------------------------------------------------------------


ELISION = re.compile(r"…")


def _check_capture(path: Path) -> None:
    text = path.read_text()
    assert not ELISION.search(text), f"{path.name} cuts a value:\n{text}"
    assert not re.search(r"\d{4}-\d\d-(?!\d\d)", text), f"{path.name} cuts a date:\n{text}"


def test_the_committed_screens_cover_80_and_120_columns_piped_and_on_a_terminal() -> None:
    shots = sorted((ROOT / "docs" / "screens").glob("*.txt"))
    names = {p.name for p in shots}
    for screen in ("trends-performance", "trends-volume", "harvest", "budget"):
        for width in (80, 120):
            for mode in ("piped", "terminal"):
                assert f"{screen}-{width}-{mode}.txt" in names
    for path in shots:
        _check_capture(path)


@pytest.mark.slow
def test_screens_captured_now_have_no_elisions(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import capture  # docs/capture.py
    finally:
        sys.path.remove(str(ROOT / "docs"))
    written = capture.capture(tmp_path, widths=(80,), names=("trends-performance", "budget"))
    assert len(written) == 4
    for path in written:
        _check_capture(path)
