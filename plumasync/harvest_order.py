"""Oldest first: the listed calls of a harvest, spilled to disk and handed out in ascending call start.

Plum lists calls newest first, and retention deletes the oldest first, so fetching in listing order
loses exactly the logs about to expire.  The harvest therefore lists the whole period before fetching
(``ceil(listed / page_size)`` requests, the same as before) and fetches in ascending start, whatever the
server's order.  The listing lives in a private temporary SQLite file (deleted when closed), not in
memory: a page in hand plus SQLite's small page cache is all a harvest of a million calls holds, and the
``log_id`` primary key drops an entry listed twice when the listing shifts under us.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterable, Iterator

from .models.calllogs import CallLogEntry

__all__ = ["ListedCalls"]

CHUNK = 500


class ListedCalls:
    """Calls listed but not stored, keyed by ``log_id``, read back by ``(start, log_id)``.

    Blocking and cheap (no request): call from a worker thread when the batch is large.
    """

    def __init__(self) -> None:
        # "" = a private on-disk temporary database, deleted by SQLite on close.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA cache_size = -2048")  # KiB: the memory bound, whatever the count
        self._db.execute("CREATE TABLE listed (log_id INTEGER PRIMARY KEY, start INTEGER NOT NULL, "
                         "entry BLOB NOT NULL)")
        self._db.execute("CREATE INDEX listed_start ON listed(start, log_id)")

    def add(self, entries: Iterable[CallLogEntry]) -> int:
        """Keep ``entries`` (an id already kept is ignored); returns how many were new."""
        rows = [(e.log_id, e.start_ts, pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL)) for e in entries]
        before = self._db.total_changes
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO listed (log_id, start, entry) VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")
        return self._db.total_changes - before

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM listed").fetchone()[0])

    def chunk_after(self, after: tuple[int, int] | None, size: int = CHUNK) -> list[CallLogEntry]:
        """The next ``size`` entries in ascending ``(start, log_id)`` after the key ``after``."""
        if after is None:
            cursor = self._db.execute("SELECT entry FROM listed ORDER BY start, log_id LIMIT ?", (size,))
        else:
            cursor = self._db.execute("SELECT entry FROM listed WHERE (start, log_id) > (?, ?) "
                                      "ORDER BY start, log_id LIMIT ?", (*after, size))
        return [pickle.loads(row[0]) for row in cursor]  # our own rows, written by this process

    def starts(self) -> Iterator[int]:
        """Every start time, ascending (for the plan: one int at a time)."""
        after: tuple[int, int] = (-(2 ** 62), -(2 ** 62))
        while True:
            rows = self._db.execute("SELECT start, log_id FROM listed WHERE (start, log_id) > (?, ?) "
                                    "ORDER BY start, log_id LIMIT 5000", after).fetchall()
            if not rows:
                return
            for start, _ in rows:
                yield int(start)
            after = (int(rows[-1][0]), int(rows[-1][1]))

    def close(self) -> None:
        """Delete the temporary file."""
        self._db.close()
