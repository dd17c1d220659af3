"""Budget state in one SQLite file: one host, many processes, no server.

``store="sqlite:///budget.db"`` (relative path) or ``"sqlite:////var/lib/app/budget.db"`` (absolute).
Every process (and every :class:`~plumasync.PlumClient`) that opens the same file shares one budget.

Layout (WAL mode, so readers never block the writer)::

    groups(key TEXT PRIMARY KEY, state TEXT)      -- GroupState.to_json() as JSON, one row per group
    kv(name TEXT PRIMARY KEY, value BLOB, expires REAL)      -- shared values (temporary credentials)
    leases(name TEXT PRIMARY KEY, owner TEXT, expires REAL)  -- "only one of us authenticates / fetches"
    counters(name TEXT, field TEXT, value INTEGER)           -- fleet cache statistics

Each transition is one short ``BEGIN IMMEDIATE`` transaction: load the state, apply the pure
:class:`~plumasync.governor.core.state.GroupState` transition, save it.  ``now`` is read from the injected
clock *after* the write lock is taken, so transitions from different processes apply in time order.
Nothing waits inside a transaction (the governor reserves, then sleeps holding no lock).  The row is
decoded only when another connection has committed since this one last wrote it (``PRAGMA data_version``
says so); otherwise the state this connection saved is still the truth and is used as it is.

How a transaction runs, and why (measured: ``python -m benchmarks.bench_stores``, see
``benchmarks/README.md``):

* **On the event loop, never blocking on a lock.**  The connection has ``busy_timeout = 0``: when
  another process holds the write lock, ``BEGIN IMMEDIATE`` fails at once and the task sleeps
  (``anyio.sleep``, 0.1 ms doubling to 2 ms, jittered; a transaction holds the lock for tens of µs)
  before trying again, so the loop never waits for another process.  The transaction itself is
  ~30 µs of CPU and page-cache I/O (in WAL mode with ``synchronous = NORMAL`` a commit does not
  fsync), less than handing it to a thread would cost.
* **Checkpoints off the loop.**  Automatic WAL checkpoints (which fsync) are disabled on the loop's
  connection; every ``checkpoint_every`` commits a passive checkpoint runs in a background thread on a
  connection of its own, and nobody waits for it.
* **Why not a thread per transaction.**  ``anyio.to_thread.run_sync`` per transaction measured ~170 µs
  median per acquire+observe (5 ms with 16 concurrent tasks queueing on the lock in worker threads; one
  connection per thread: 80 ms p99), against 60-110 µs median on the loop, at any concurrency.

The file (and SQLite's ``-wal``/``-shm`` files, which inherit its mode) is created ``0600``: it holds
shared temporary credentials.  SQLite locking needs a local file system (not NFS).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from ...errors import ConfigurationError, PlumError, StoreBusyError, StoreError
from ...storeurl import parse_store_url
from ..clock import Clock, SystemClock
from ..core.model import GroupKey, Policy
from ..core.state import GroupState
from .base import StateStore, dump_state, load_state
from .sqlite_values import SQLiteValues

__all__ = ["SQLiteStore"]

log = logging.getLogger("plumasync")

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS groups(key TEXT PRIMARY KEY, state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kv(name TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS leases(name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters(name TEXT, field TEXT, value INTEGER NOT NULL, PRIMARY KEY(name, field))",
)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


#: What to do about a store file that is not a usable database (it holds nothing that cannot be rebuilt).
_REMEDY = ("it holds only budget counters and shared temporary credentials, which rebuild themselves: "
           "stop the processes sharing it, then move it away or delete it")


def _damaged(path: str, exc: Exception) -> StoreError:
    return StoreError(f"SQLite store {path!r} cannot be used ({type(exc).__name__}: {exc}); if it is damaged "
                      f"or not a SQLite database, {_REMEDY}")


def _busy(path: str, timeout: float) -> StoreBusyError:
    return StoreBusyError(f"SQLite store {path!r} stayed locked for {timeout:g} s: another process holds its "
                          "lock (a stuck process, or a file on a network file system, where SQLite locking "
                          "does not work); stop it, or give a longer ?timeout=")


class _Busy(Exception):
    """Internal: the write lock is taken; try again shortly."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteStore(SQLiteValues, StateStore):
    """Budget state, shared values and leases in one SQLite file, shared by every process on the host.

    ``path`` is the database file (created mode 0600 if absent).  ``clock`` gives the time (default:
    the system clock; every process sharing the file must use the same time base).  ``timeout`` is
    how long (real seconds) one transition may wait for other processes' write lock before
    :class:`StoreBusyError`.  Every ``checkpoint_every`` commits a WAL checkpoint runs in a background thread.
    """

    shared = True
    #: First and longest sleep (real seconds) between attempts while another process holds the lock.
    backoff: tuple[float, float] = (0.0001, 0.002)

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None, timeout: float = 10.0,
                 checkpoint_every: int = 500) -> None:
        self.path = os.fspath(path)
        if not self.path or self.path == ":memory:" or self.path.startswith("file:"):
            raise ConfigurationError("SQLiteStore needs a file path shared by the processes, e.g. sqlite:///budget.db")
        self.clock: Clock = clock or SystemClock()
        self.timeout = float(timeout)
        self.checkpoint_every = max(1, int(checkpoint_every))
        self._conn: sqlite3.Connection | None = None  # used on the event loop, under _lock
        self._ckpt: sqlite3.Connection | None = None  # used in worker threads, under _ckpt_lock
        self._lock = threading.Lock()
        self._ckpt_lock = threading.Lock()
        self._commits = 0
        self._ckpt_running = False
        # Decoded group states as this connection last committed them, with the connection's data_version
        # then: valid while no other connection has committed (decoding the JSON was 35-40 % of a transaction).
        self._states: dict[str, tuple[int, GroupState]] = {}

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> SQLiteStore:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a bare path; ``?timeout=SECONDS``.

        Parsed by :func:`plumasync.storeurl.parse_store_url`; a missing directory is refused here, naming
        the absolute path the URL resolved to.
        """
        spec = parse_store_url(url)
        if spec.kind != "sqlite" or spec.path is None:
            raise ConfigurationError(f"not a SQLite store URL (sqlite:///path.db): {url!r}")
        spec.check_directory()
        return cls(spec.path, clock=clock, **spec.options)

    # -- connection management --------------------------------------------------------------------------

    def _connect(self, busy_ms: int) -> sqlite3.Connection:
        if not os.path.exists(self.path):
            # Create it private before SQLite does (SQLite would honour the umask, often 0644).
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=busy_ms / 1000)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_sync(self, deadline: float) -> None:
        """Open (first use) by ``deadline`` (``time.monotonic()``), retrying while other processes hold the
        lock.  Runs in a thread.

        Switching a new file to WAL takes an exclusive lock, and SQLite may answer "database is locked"
        at once (without its busy handler) when several processes open the same new file together.
        SQLite's own busy handler is off here (it would wait the whole timeout at each step), so the
        loop below is the only wait and the deadline holds.
        """
        delay = 0.005
        while True:
            try:
                self._open_once()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise _damaged(self.path, exc) from None
                if time.monotonic() + delay > deadline:
                    raise _busy(self.path, self.timeout) from None
                time.sleep(delay)  # a worker thread, not the event loop
                delay = min(0.1, delay * 2)
            except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
                raise _damaged(self.path, exc) from None

    def _open_once(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            conn = self._connect(0)
            try:
                for suffix in ("", "-wal", "-shm"):  # files left by an older run may be wider
                    with contextlib.suppress(OSError):  # absent, or somebody else's: its owner decides
                        os.chmod(self.path + suffix, 0o600)
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("COMMIT")
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints run in a thread instead
                conn.execute("PRAGMA busy_timeout = 0")  # never block the event loop on a lock
            except BaseException:
                conn.close()
                raise
            self._states.clear()  # data_version counts per connection
            self._conn = conn

    async def _ensure_open(self, deadline: float) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            await anyio.to_thread.run_sync(self._open_sync, deadline)
            conn = self._conn
            assert conn is not None
        return conn

    def _checkpoint_sync(self) -> None:
        try:
            with self._ckpt_lock:
                if self._conn is None:
                    return  # closed meanwhile
                if self._ckpt is None:
                    self._ckpt = self._connect(int(self.timeout * 1000))
                self._ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next checkpoint (or SQLite at close) will do it
            log.debug("SQLite store checkpoint failed: %s", exc)
        finally:
            self._ckpt_running = False

    def _start_checkpoint(self) -> None:
        """Checkpoint the WAL in a background thread (it fsyncs): nobody waits for it."""
        if self._ckpt_running:
            return
        self._ckpt_running = True
        threading.Thread(target=self._checkpoint_sync, name="plumasync-sqlite-checkpoint",
                         daemon=True).start()

    # -- one transaction ------------------------------------------------------------------------------------

    def _attempt(self, fn: Callable[[sqlite3.Connection, float], T], write: bool) -> T:
        if not self._lock.acquire(blocking=False):
            raise _Busy  # another thread is using the connection right now
        try:
            conn = self._conn
            if conn is None:
                raise _Busy  # closed meanwhile: _run reopens
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    raise _Busy from None
                raise
            try:
                result = fn(conn, self.clock.now())
                conn.execute("COMMIT")
            except BaseException as exc:
                self._states.clear()  # states changed by a transaction that did not commit
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise _Busy from None
                raise
            return result
        finally:
            self._lock.release()

    async def _run(self, fn: Callable[[sqlite3.Connection, float], T], *, write: bool = True) -> T:
        """Run ``fn(connection, now)`` in one transaction, retrying while other processes hold the lock."""
        # One deadline for the whole call, opening included: "timeout" is what the caller waits at most.
        deadline = time.monotonic() + self.timeout
        await self._ensure_open(deadline)
        delay = self.backoff[0]
        while True:
            try:
                result = self._attempt(fn, write)
                break
            except _Busy:
                pass
            except PlumError:
                raise
            except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
                # A damaged page or row ("malformed", a state that is not JSON): no retry can mend it.
                raise _damaged(self.path, exc) from None
            if self._conn is None:
                await self._ensure_open(deadline)
                continue
            if time.monotonic() >= deadline:
                raise _busy(self.path, self.timeout)
            # Real time, not the injected clock: the lock is held for real microseconds.
            await anyio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self.backoff[1])
        if write:
            self._commits += 1
            if self._commits % self.checkpoint_every == 0:
                self._start_checkpoint()
        return result

    # -- StateStore ---------------------------------------------------------------------------------------

    async def _transact(self, key: GroupKey, policy: Policy,
                        fn: Callable[[GroupState, float], object]) -> tuple[object, float]:
        name = str(key)

        def txn(conn: sqlite3.Connection, now: float) -> tuple[object, float]:
            version, state = self._load(conn, name, policy, key)
            result = fn(state, now)
            conn.execute("INSERT OR REPLACE INTO groups(key, state) VALUES (?, ?)", (name, dump_state(state)))
            self._states[name] = (version, state)  # _attempt forgets it unless the commit succeeds
            return result, now

        return await self._run(txn)

    def _load(self, conn: sqlite3.Connection, name: str, policy: Policy, key: GroupKey) -> tuple[int, GroupState]:
        """The group's state, inside the write transaction: the one this connection last committed while no
        other connection has committed since (``PRAGMA data_version`` unchanged), else decoded from its row."""
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        held = self._states.pop(name, None)
        if held is not None and held[0] == version:
            return version, held[1]
        row = conn.execute("SELECT state FROM groups WHERE key = ?", (name,)).fetchone()
        return version, load_state(None if row is None else row[0], policy, key)

    async def keys(self) -> list[GroupKey]:
        """Every group key in the file."""
        def txn(conn: sqlite3.Connection, now: float) -> list[GroupKey]:
            return [GroupKey.parse(str(r[0])) for r in conn.execute("SELECT key FROM groups ORDER BY key")]

        return await self._run(txn, write=False)

    async def state(self, key: GroupKey) -> GroupState | None:
        """The raw state of one group (for tests and diagnosis), or None."""
        def txn(conn: sqlite3.Connection, now: float) -> str | None:
            row = conn.execute("SELECT state FROM groups WHERE key = ?", (str(key),)).fetchone()
            return None if row is None else str(row[0])

        raw = await self._run(txn, write=False)
        return None if raw is None else GroupState.from_json(json.loads(raw))

    async def aclose(self) -> None:
        """Close the connections (the file stays; other processes may still use it)."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._states.clear()
        with self._ckpt_lock:
            ckpt, self._ckpt = self._ckpt, None
        for c in (conn, ckpt):
            if c is not None:
                c.close()

    def __repr__(self) -> str:
        return f"SQLiteStore(path={self.path!r})"
