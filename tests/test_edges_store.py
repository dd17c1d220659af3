"""A budget store that cannot work fails clearly: a garbage file or a lock held too long is a typed
PlumError naming the store and what to do, within the configured timeout; one damaged group row is reset
with a warning."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from plumasync import Budget, FakeClock, PlumError
from plumasync.governor import GroupKey, Lane
from plumasync.governor.admission import Governor
from plumasync.governor.core.model import RateHeaders
from plumasync.governor.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def acquire_once(path: Path, timeout: float = 1.0) -> None:
    store = SQLiteStore(path, clock=FakeClock(1_000_000.0), timeout=timeout)
    governor = Governor(store=store, clock=store.clock)
    key = governor.register(GroupKey("h", "a", "calllogs"), Budget(limit=10, window=60).policy())
    try:
        permit = await governor.acquire(key, Lane.INTERACTIVE)
        await governor.observe(permit, 200, RateHeaders())
    finally:
        await store.aclose()


async def test_a_garbage_file_is_a_typed_error_naming_the_store(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    path.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(PlumError) as caught:
        await acquire_once(path)
    assert str(path) in str(caught.value) and "delete" in str(caught.value)


async def test_a_damaged_budget_row_is_reset_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # One group's unreadable state is recoverable: that group starts afresh (cold: one probe first), with a
    # WARNING naming it; the store and the other groups go on.  Before, a JSONDecodeError escaped untyped.
    path = tmp_path / "budget.db"
    await acquire_once(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE groups SET state = '{not json'")
    with caplog.at_level("WARNING", logger="plumasync"):
        await acquire_once(path)
    assert any("calllogs" in r.getMessage() and "afresh" in r.getMessage() for r in caplog.records)
    with sqlite3.connect(path) as db:
        (state,) = db.execute("SELECT state FROM groups").fetchone()
    assert state.startswith("{") and "not json" not in state  # the damaged row was replaced


async def test_a_store_locked_by_another_process_fails_within_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    await acquire_once(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")  # a rollback journal: an exclusive lock stops readers too
    holder.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        with pytest.raises(PlumError) as caught:
            await acquire_once(path, timeout=2.0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    elapsed = time.monotonic() - started
    assert str(path) in str(caught.value) and "locked" in str(caught.value)
    assert elapsed < 3.6  # the timeout (2 s) with a generous margin, not once per step (that took 2x)


def test_the_cli_names_a_garbage_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from plumasync.cli import app

    path = tmp_path / "budget.db"
    path.write_bytes(b"{}" * 1000)
    result = CliRunner().invoke(app, ["budget"], env={"PLUM_LOGIN": "demo", "PLUM_PASSWORD": "pw",
                                                      "PLUM_STORE": f"sqlite:///{path}",
                                                      "PLUM_CALLLOGS_URL": "http://127.0.0.1:9/ws/",
                                                      "PLUM_VOICETRENDS_URL": "http://127.0.0.1:9/api/"})
    assert "unexpected error" not in result.output
    assert "budget.db" in " ".join(result.output.split())
