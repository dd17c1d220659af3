"""A harvest killed with SIGKILL mid-run resumes with nothing lost and nothing fetched twice.

The CLI runs as a real process (``python -m plumasync harvest``) against a sandbox served by this test
process.  Once the SQLite file holds more than 300 logs the process is killed without warning; the same
command is then run again to completion.

The second run logs in as a second sandbox account sharing the same call data: the sandbox records the
login of every request, so the second run's detail requests are counted exactly, whatever requests the
killed process still had in flight when it died.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plumasync.sandbox import SandboxConfig, SandboxServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLS = 1500
PASSWORD = "kill-test-password"


def stored_ids(db: Path, *, read_only: bool) -> set[int] | None:
    """The log ids in ``db`` (None while the file or its table does not exist yet)."""
    uri = f"file:{db}?mode=ro" if read_only else f"file:{db}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=0.5)
    except sqlite3.OperationalError:
        return None
    try:
        return {row[0] for row in conn.execute("SELECT log_id FROM calls")}
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def test_sigkill_then_rerun_stores_every_log_once_and_refetches_only_the_missing(tmp_path: Path) -> None:
    config = SandboxConfig(calls_count=CALLS, latency=0.002,
                           accounts={"demo": PASSWORD, "demo-rerun": PASSWORD},
                           limits={"calllogs": (1_000_000, 900)})  # never binds
    start = config.start_of_calls
    end = start + int(CALLS * config.calls_spacing)
    db = tmp_path / "calls.db"
    with SandboxServer(config) as server:
        expected = set(server.app.expected_ids(start, end))
        assert len(expected) == CALLS
        command = [sys.executable, "-m", "plumasync", "harvest", "--start", str(start), "--end", str(end),
                   "--out", str(db), "--calllogs-url", server.calllogs_url,
                   "--voicetrends-url", server.voicetrends_url, "--concurrency", "8"]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PLUM_")}

        # -- run 1: killed without warning once more than 300 logs are stored --------------------------------
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**base_env, "PLUM_LOGIN": "demo", "PLUM_PASSWORD": PASSWORD})
        try:
            deadline = time.monotonic() + 60
            while True:
                ids = stored_ids(db, read_only=True)
                if ids is not None and len(ids) > 300:
                    break
                assert proc.poll() is None, f"the harvest ended before it could be killed: {proc.stderr}"
                assert time.monotonic() < deadline, "no progress within 60 s"
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            assert proc.stderr is not None
            proc.stderr.close()

        first_details = server.app.recorder.count(path_prefix="/ws/calls/log/", login="demo")
        after_kill = stored_ids(db, read_only=False)  # a writable connection recovers the WAL
        assert after_kill is not None and 300 < len(after_kill) < CALLS
        assert after_kill <= expected
        missing = expected - after_kill
        print(f"\nkilled after {first_details} detail requests with {len(after_kill)} logs stored; "
              f"{len(missing)} missing")

        # -- run 2: the same command, to completion ----------------------------------------------------------
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=120,
                               env={**base_env, "PLUM_LOGIN": "demo-rerun", "PLUM_PASSWORD": PASSWORD})
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert f"{len(missing)} fetched now, {len(after_kill)} already there" in rerun.stdout

        second = server.app.recorder.select(path_prefix="/ws/calls/log/", login="demo-rerun")
        fetched = [int(r.path.rstrip("/").rsplit("/", 1)[-1]) for r in second]
        assert len(second) == len(missing)  # zero detail requests spent on logs already stored
        assert set(fetched) == missing and len(set(fetched)) == len(fetched)
        assert server.app.recorder.statuses()[429] == 0

        with sqlite3.connect(db) as conn:
            count, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT log_id) FROM calls").fetchone()
            assert count == distinct == CALLS
            assert {row[0] for row in conn.execute("SELECT log_id FROM calls")} == expected
            sample = sorted(after_kill)[::97] + sorted(missing)[::97]
            for log_id in sample:  # stored before and after the kill alike
                (detail,) = conn.execute("SELECT detail FROM calls WHERE log_id = ?", (log_id,)).fetchone()
                assert detail == server.app.expected_log(log_id).detail()["log"]
