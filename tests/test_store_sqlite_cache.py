"""The SQLite store keeps the group state it last committed and decodes the stored document only when
another connection has written since (``PRAGMA data_version``): the shared file stays the truth."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plumasync import Budget, FakeClock
from plumasync.governor import GroupKey, GroupState, Lane, RateHeaders
from plumasync.governor.stores import sqlite as sqlite_module
from plumasync.governor.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

POLICY = Budget(limit=10, window=900.0, reserve=2, margin=1.0).policy()
KEY = GroupKey("host", "acct", "data")
T0 = 1_519_397_100.0


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The documents the SQLite store decoded (None: the group had no row yet)."""
    seen: list[object] = []
    original = sqlite_module.load_state

    def counting(raw: str | bytes | None, policy: object, key: GroupKey) -> GroupState:
        seen.append(raw)
        return original(raw, policy, key)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_module, "load_state", counting)
    return seen


def answer(clock: FakeClock, remaining: int) -> RateHeaders:
    return RateHeaders(limit=10, remaining=remaining, reset=clock.now() + 500, date=clock.now())


async def round_trip(store: SQLiteStore, clock: FakeClock, permit: str, remaining: int) -> None:
    assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, permit)).decision.granted
    await store.observe(KEY, POLICY, permit, 200, answer(clock, remaining))


async def test_one_connection_decodes_once_and_again_after_another_writes(tmp_path: Path,
                                                                          decodes: list[object]) -> None:
    clock = FakeClock(T0)
    a = SQLiteStore(tmp_path / "b.db", clock=clock)
    b = SQLiteStore(tmp_path / "b.db", clock=clock)
    try:
        for n in range(5):
            await round_trip(a, clock, f"a{n}", 9 - n)
        assert decodes == [None]  # ten transactions, one decoding (of no row at all)
        assert (await b.acquire(KEY, POLICY, Lane.INTERACTIVE, "b0")).decision.granted  # another connection
        assert len(decodes) == 2
        snap = await a.snapshot(KEY, POLICY)
        assert len(decodes) == 3 and snap.in_flight == 1 and snap.remaining == 5  # b's permit is seen
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_kept_state_is_the_stored_document(tmp_path: Path, decodes: list[object]) -> None:
    clock = FakeClock(T0)
    a = SQLiteStore(tmp_path / "b.db", clock=clock)
    try:
        for n in range(4):
            await round_trip(a, clock, f"a{n}", 9 - n)
            await clock.advance(7.25)
        assert (await a.acquire(KEY, POLICY, Lane.BULK, "held")).decision.granted
        kept = await a.snapshot(KEY, POLICY)
        stored = await a.state(KEY)
        assert stored is not None and stored.permits == {"held": clock.now()}
        fresh = SQLiteStore(tmp_path / "b.db", clock=clock)  # decodes the row
        try:
            assert await fresh.snapshot(KEY, POLICY) == kept
        finally:
            await fresh.aclose()
    finally:
        await a.aclose()


async def test_a_garbage_row_written_meanwhile_is_reset_by_the_same_store(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "b.db"
    a = SQLiteStore(path, clock=clock)
    try:
        await round_trip(a, clock, "a0", 9)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE groups SET state = '{not json'")
        with caplog.at_level("WARNING", logger="plumasync"):
            snap = await a.snapshot(KEY, POLICY)
        assert snap.mode == "cold" and snap.admitted == 0  # started afresh, not the kept state
        assert any("afresh" in r.getMessage() for r in caplog.records)
    finally:
        await a.aclose()


async def test_a_transaction_that_fails_leaves_no_trace_in_the_kept_state(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    a = SQLiteStore(tmp_path / "b.db", clock=clock)

    def breaks(state: GroupState, now: float) -> object:
        state.admitted += 100
        raise RuntimeError("a transition that fails half-way")

    try:
        await round_trip(a, clock, "a0", 9)
        with pytest.raises(RuntimeError):
            await a._transact(KEY, POLICY, breaks)
        snap = await a.snapshot(KEY, POLICY)
        assert snap.admitted == 1  # rolled back in the file, and not kept in memory either
    finally:
        await a.aclose()
