"""The SQLite store: one budget shared by the processes of one host through one file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import anyio
import pytest
from store_worker import run_workers, t_min
from timing import assert_near_t_min

from plumasync import Budget, FakeClock
from plumasync.errors import ConfigurationError
from plumasync.governor import GroupKey, Lane, Mode, Policy, RateHeaders
from plumasync.governor.stores.sqlite import SQLiteStore

POLICY = Budget(limit=10, window=900.0, reserve=2, margin=1.0).policy()
KEY = GroupKey("host", "acct", "data")
T0 = 1_519_397_100.0


def hdr(clock: FakeClock, remaining: int, limit: int = 10) -> RateHeaders:
    return RateHeaders(limit=limit, remaining=remaining, reset=clock.now() + 500, date=clock.now())


async def warm(store: SQLiteStore, clock: FakeClock, remaining: int, policy: Policy = POLICY) -> None:
    """Headers mode with ``remaining`` left in the window and nothing in flight."""
    timed = await store.acquire(KEY, policy, Lane.INTERACTIVE, "probe")
    assert timed.decision.granted
    await store.observe(KEY, policy, "probe", 200, hdr(clock, remaining, policy.limit))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "budget.db"


@pytest.mark.anyio
async def test_transitions_round_trip_through_the_file(db: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStore(db, clock=clock)
    try:
        await warm(store, clock, remaining=3)
        grants = [(await store.acquire(KEY, POLICY, Lane.INTERACTIVE, f"p{i}")).decision.granted
                  for i in range(4)]
        assert grants == [True, True, True, False]
        snap = await store.snapshot(KEY, POLICY, waiters=2)
        assert (snap.mode, snap.remaining, snap.in_flight, snap.waiters) == ("headers", 3, 3, 2)
        assert snap.group == "data"
        assert await store.keys() == [KEY]
        # A second store on the same file (another process, as far as SQLite can tell) sees the same state.
        other = SQLiteStore(db, clock=clock)
        state = await other.state(KEY)
        assert state is not None and state.mode == Mode.HEADERS.value and len(state.permits) == 3
        await other.aclose()
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_cancel_gives_the_permit_back(db: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStore(db, clock=clock)
    await warm(store, clock, remaining=1)
    assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "a")).decision.granted
    assert not (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "b")).decision.granted
    await store.cancel(KEY, POLICY, "a")
    assert (await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "b")).decision.granted
    await store.aclose()


@pytest.mark.anyio
async def test_crashed_holder_releases_its_permits_after_one_window(db: Path) -> None:
    clock = FakeClock(T0)
    dead = SQLiteStore(db, clock=clock)
    await warm(dead, clock, remaining=10)
    for i in range(10):  # the holder takes the whole window, then dies without a word
        assert (await dead.acquire(KEY, POLICY, Lane.INTERACTIVE, f"dead{i}")).decision.granted
    await dead.aclose()
    survivor = SQLiteStore(db, clock=clock)
    await clock.advance(POLICY.window - 1)
    assert (await survivor.snapshot(KEY, POLICY)).in_flight == 10  # still held within the window
    await clock.advance(1)
    assert (await survivor.snapshot(KEY, POLICY)).in_flight == 0
    assert (await survivor.acquire(KEY, POLICY, Lane.INTERACTIVE, "alive")).decision.granted
    await survivor.aclose()


@pytest.mark.anyio
async def test_values_expire_by_the_store_clock(db: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStore(db, clock=clock)
    assert await store.get_value("cred") is None
    await store.set_value("cred", b"\x00secret\xff", ttl=60)
    assert await store.get_value("cred") == b"\x00secret\xff"
    await clock.advance(59.9)
    assert await store.get_value("cred") == b"\x00secret\xff"
    await clock.advance(0.1)
    assert await store.get_value("cred") is None
    await store.set_value("cred", b"v2", ttl=60)
    await store.delete_value("cred")
    assert await store.get_value("cred") is None
    await store.aclose()


@pytest.mark.anyio
async def test_leases_have_one_owner_until_released_or_expired(db: Path) -> None:
    clock = FakeClock(T0)
    a, b = SQLiteStore(db, clock=clock), SQLiteStore(db, clock=clock)
    assert await a.claim("auth", "A", ttl=30)
    assert not await b.claim("auth", "B", ttl=30)
    assert await a.claim("auth", "A", ttl=30)  # renewal by the owner
    await b.release("auth", "B")  # not the owner: no effect
    assert not await b.claim("auth", "B", ttl=30)
    await a.release("auth", "A")
    assert await b.claim("auth", "B", ttl=30)
    await clock.advance(30)
    assert await a.claim("auth", "A", ttl=30)  # B's lease expired
    await a.aclose()
    await b.aclose()


@pytest.mark.anyio
async def test_file_is_private(db: Path) -> None:
    store = SQLiteStore(db, clock=FakeClock(T0))
    await store.set_value("cred", b"x", 60)
    modes = {suffix: stat.S_IMODE(os.stat(str(db) + suffix).st_mode) for suffix in ("", "-wal", "-shm")}
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    await store.aclose()


def test_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert SQLiteStore.from_url("sqlite:///rel.db").path == str(tmp_path / "rel.db")  # resolved, absolute
    assert SQLiteStore.from_url(f"sqlite:///{tmp_path}/b.db?timeout=3").path == f"{tmp_path}/b.db"
    assert SQLiteStore.from_url(f"sqlite:///{tmp_path}/b.db?timeout=3").timeout == 3.0
    with pytest.raises(ConfigurationError, match="/abs/dir does not exist"):
        SQLiteStore.from_url("sqlite:////abs/dir/b.db")
    assert SQLiteStore.from_url("sqlite:///x.db").shared
    for bad in ("sqlite://host/x.db", "sqlite:///:memory:", "sqlite:///x.db?mode=ro", "sqlite:///x.db?timeout=z"):
        with pytest.raises(ConfigurationError):
            SQLiteStore.from_url(bad)
    assert "rel.db" in repr(SQLiteStore.from_url("sqlite:///rel.db"))


def test_open_store_builds_it(tmp_path: Path) -> None:
    from plumasync.client import open_store

    store = open_store(f"sqlite:///{tmp_path}/c.db", FakeClock(T0))
    assert isinstance(store, SQLiteStore) and store.path == f"{tmp_path}/c.db"


@pytest.mark.anyio
async def test_concurrent_acquires_from_threads_never_exceed_remaining(db: Path) -> None:
    """Eight threads, each with its own store (own connection, own event loop) on one file."""
    clock = FakeClock(T0)
    seed = SQLiteStore(db, clock=clock)
    policy = Budget(limit=100, window=900.0, reserve=0).policy()
    await warm(seed, clock, remaining=37, policy=policy)
    await seed.aclose()
    grants: list[int] = []

    def worker(i: int) -> None:
        async def run() -> int:
            store = SQLiteStore(db, clock=clock)
            n = 0
            for j in range(25):
                n += (await store.acquire(KEY, policy, Lane.INTERACTIVE, f"t{i}-{j}")).decision.granted
            await store.aclose()
            return n

        grants.append(anyio.run(run))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(grants) == 37


def test_concurrent_acquires_from_processes_never_exceed_remaining(db: Path) -> None:
    clock = FakeClock(T0)
    policy = Budget(limit=100, window=900.0, reserve=0).policy()

    async def prepare() -> None:
        store = SQLiteStore(db, clock=clock)
        await warm(store, clock, remaining=53, policy=policy)
        await store.aclose()

    anyio.run(prepare)
    script = textwrap.dedent(f"""
        import anyio, sys
        from plumasync import FakeClock
        from plumasync.governor import GroupKey, Lane, Policy
        from plumasync.governor.stores.sqlite import SQLiteStore
        async def main():
            store = SQLiteStore({str(db)!r}, clock=FakeClock({T0!r}))
            policy = Policy(limit=100, window=900.0, reserve=0, margin=1.0)
            n = 0
            for j in range(40):
                timed = await store.acquire({KEY!r}, policy, Lane.INTERACTIVE, sys.argv[1] + str(j))
                n += timed.decision.granted
            await store.aclose()
            print(n)
        anyio.run(main)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, f"proc{i}-"], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0
        total += int(out.strip())
    assert total == 53


@pytest.mark.anyio
async def test_a_held_write_lock_makes_callers_wait_not_fail(db: Path) -> None:
    import sqlite3

    clock = FakeClock(T0)
    store = SQLiteStore(db, clock=clock)
    await warm(store, clock, remaining=5)
    blocker = sqlite3.connect(str(db), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process in the middle of a transaction
    released = anyio.Event()

    async def release_soon() -> None:
        await anyio.sleep(0.05)
        blocker.execute("COMMIT")
        released.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_soon)
        timed = await store.acquire(KEY, POLICY, Lane.INTERACTIVE, "x")
        assert released.is_set() and timed.decision.granted
    blocker.close()
    await store.aclose()


# -- four OS processes, one sandbox account, one SQLite file ---------------------------------------------

PER_WORKER, WORKERS, LIMIT, WINDOW = 20, 4, 30, 300


@pytest.mark.e2e
def test_four_processes_share_one_budget(db: Path) -> None:
    out = run_workers(f"sqlite:///{db}", processes=WORKERS, per_worker=PER_WORKER, limit=LIMIT, window=WINDOW)
    best = t_min(WORKERS * PER_WORKER, go=out.go, limit=LIMIT, window=WINDOW)
    print(f"\n[sqlite x{WORKERS}] elapsed {out.elapsed:.1f} clock-s, T_min {best:.1f}, "
          f"ratio {out.elapsed / best:.3f}, statuses {dict(out.statuses)}")
    assert out.statuses.get(429, 0) == 0
    assert out.ok == WORKERS * PER_WORKER
    assert_near_t_min(out.elapsed, best)


@pytest.mark.e2e
def test_a_sigkilled_process_holds_the_budget_at_most_one_window(db: Path) -> None:
    out = run_workers(f"sqlite:///{db}", processes=WORKERS, per_worker=PER_WORKER, limit=LIMIT, window=WINDOW,
                      kill_one=True)
    survivors = (WORKERS - 1) * PER_WORKER
    best = t_min(survivors, go=out.go, limit=LIMIT, window=WINDOW)
    print(f"\n[sqlite x{WORKERS}, one SIGKILLed holding {out.held} permits] "
          f"elapsed {out.elapsed:.1f} clock-s, T_min {best:.1f} (+ one window {best + WINDOW:.1f}), "
          f"statuses {dict(out.statuses)}")
    assert out.killed == 1 and out.held >= 1
    assert out.statuses.get(429, 0) == 0
    assert out.ok == survivors
    assert_near_t_min(out.elapsed, best + WINDOW)

