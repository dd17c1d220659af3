"""The SQLite store's shared values, leases and fleet counters (tables ``kv``, ``leases``, ``counters``).

Each operation is one short transaction run by :class:`~plumasync.governor.stores.sqlite.SQLiteStore`'s
``_run`` (on the event loop, never blocking on another process's lock), by the store's clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import TypeVar

__all__ = ["SQLiteValues"]

T = TypeVar("T")


class SQLiteValues:
    """Shared values with a time to live, leases and counters over one SQLite connection."""

    async def _run(self, fn: Callable[[sqlite3.Connection, float], T], *, write: bool = True) -> T:
        raise NotImplementedError  # pragma: no cover - SQLiteStore runs the transactions

    async def get_value(self, name: str) -> bytes | None:
        """The value, or None when absent or expired (by the store's clock)."""
        def txn(conn: sqlite3.Connection, now: float) -> bytes | None:
            row = conn.execute("SELECT value, expires FROM kv WHERE name = ?", (name,)).fetchone()
            if row is None or row[1] <= now:
                return None
            return bytes(row[0])

        return await self._run(txn, write=False)

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` clock seconds (and drop expired values)."""
        def txn(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM kv WHERE expires <= ?", (now,))
            conn.execute("INSERT OR REPLACE INTO kv(name, value, expires) VALUES (?, ?, ?)",
                         (name, sqlite3.Binary(value), now + ttl))

        await self._run(txn)

    async def delete_value(self, name: str) -> None:
        """Forget a value."""
        def txn(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM kv WHERE name = ?", (name,))

        await self._run(txn)

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the lease unless another owner holds an unexpired one."""
        def txn(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            conn.execute("INSERT OR REPLACE INTO leases(name, owner, expires) VALUES (?, ?, ?)",
                         (name, owner, now + ttl))
            return True

        return await self._run(txn)

    async def release(self, name: str, owner: str) -> None:
        """Drop the lease if ``owner`` holds it."""
        def txn(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

        await self._run(txn)

    async def add_counts(self, name: str, counts: Mapping[str, int]) -> None:
        """Add to the counters ``name`` for every process sharing the file (one transaction)."""
        rows = [(name, field, int(delta)) for field, delta in counts.items() if delta]
        if rows:
            await self._run(lambda conn, now: conn.executemany(
                "INSERT INTO counters(name, field, value) VALUES (?, ?, ?) ON CONFLICT(name, field) "
                "DO UPDATE SET value = value + excluded.value", rows))

    async def get_counts(self, name: str) -> dict[str, int]:
        """The counters ``name`` summed over every process sharing the file."""
        rows = await self._run(lambda conn, now: conn.execute(
            "SELECT field, value FROM counters WHERE name = ?", (name,)).fetchall(), write=False)
        return {str(f): int(v) for f, v in rows}
