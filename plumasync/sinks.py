"""Where a harvest puts what it fetched: SQLite (the default) or JSON Lines.

A sink tells the harvest which logs it already holds (so a rerun spends no request on them) and writes
batches atomically: SQLite in one transaction per batch (``INSERT OR IGNORE`` on the ``log_id`` primary
key, so nothing is ever stored twice), JSON Lines with one flush per batch (a line cut short by a crash
is dropped when the file is opened again).  A process killed mid-run loses at most the batch it was
writing, and the next run fetches exactly that again.
"""

from __future__ import annotations

import abc
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigurationError
from .models.calllogs import CallLogDetail, CallLogEntry

__all__ = ["HarvestedLog", "JSONLSink", "SQLiteSink", "Sink", "open_sink"]


@attrs.frozen
class HarvestedLog:
    """One harvested call: its calls/logs listing entry and its calls/log detail."""

    entry: CallLogEntry
    detail: CallLogDetail

    @property
    def log_id(self) -> int:
        """The call's log id."""
        return self.entry.log_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the listed fields plus ``detail``."""
        data = self.entry.to_dict()
        data["detail"] = self.detail.to_dict()
        return data


class Sink(abc.ABC):
    """Destination of a harvest.  Methods are blocking; the harvest calls them from a worker thread."""

    @abc.abstractmethod
    def stored(self, log_ids: Iterable[int]) -> set[int]:
        """Which of ``log_ids`` are already stored."""

    @abc.abstractmethod
    def write(self, batch: list[HarvestedLog]) -> None:
        """Store a batch atomically (all or nothing); logs already stored are left as they are."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many logs the sink holds."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    log_id      INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    dest        TEXT NOT NULL,
    type        TEXT NOT NULL,
    src         TEXT NOT NULL,
    start       INTEGER NOT NULL,
    "end"       INTEGER NOT NULL,
    location    TEXT,
    timestamp   INTEGER,
    detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_start ON calls(start);
"""


class SQLiteSink(Sink):
    """One row per call in table ``calls`` of a SQLite file: every listed field plus the detail text.

    Columns: ``log_id`` (primary key), ``session_id``, ``dest``, ``type``, ``src``, ``start``, ``end``
    (Unix seconds), ``location``, ``timestamp`` (from the detail) and ``detail`` (the log text).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        self._db.executescript(_SCHEMA)

    def stored(self, log_ids: Iterable[int]) -> set[int]:
        ids = list(log_ids)
        found: set[int] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self._db.execute(f"SELECT log_id FROM calls WHERE log_id IN ({marks})",
                                                            chunk))
        return found

    def write(self, batch: list[HarvestedLog]) -> None:
        rows = [(h.entry.log_id, h.entry.session_id.raw, h.entry.dest, h.entry.type, h.entry.src,
                 h.entry.start_ts, h.entry.end_ts, h.detail.location, h.detail.timestamp_ts, h.detail.log)
                for h in batch]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                'INSERT OR IGNORE INTO calls (log_id, session_id, dest, type, src, start, "end", location, '
                "timestamp, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row as a dict, by log_id."""
        cursor = self._db.execute('SELECT log_id, session_id, dest, type, src, start, "end", location, timestamp, '
                                  "detail FROM calls ORDER BY log_id")
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"


class JSONLSink(Sink):
    """One JSON object per line (:meth:`HarvestedLog.to_dict`), appended; resumable like SQLite.

    Opening the file reads the log ids it already holds (and drops a last line cut short by a crash).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._ids: set[int] = set()
        if self.path.exists():
            self._recover()
        self._file = self.path.open("a", encoding="utf-8")

    def _recover(self) -> None:
        good = 0
        with self.path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # cut short by a crash: dropped below
                try:
                    self._ids.add(int(json.loads(raw)["log_id"]))
                except (ValueError, KeyError, TypeError):
                    break
                good += len(raw)
        if good != self.path.stat().st_size:
            with self.path.open("r+b") as f:
                f.truncate(good)

    def stored(self, log_ids: Iterable[int]) -> set[int]:
        return {i for i in log_ids if i in self._ids}

    def write(self, batch: list[HarvestedLog]) -> None:
        fresh = [h for h in batch if h.log_id not in self._ids]
        if not fresh:
            return
        self._file.write("".join(json.dumps(h.to_dict(), separators=(",", ":")) + "\n" for h in fresh))
        self._file.flush()
        self._ids.update(h.log_id for h in fresh)

    def count(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"JSONLSink({str(self.path)!r})"


def open_sink(out: str | os.PathLike[str] | Sink | None = None, *, jsonl: str | os.PathLike[str] | None = None
              ) -> Sink | None:
    """A sink from a SQLite path (``out``), a JSON Lines path (``jsonl``), or an existing Sink."""
    if out is not None and jsonl is not None:
        raise ConfigurationError("choose one sink: a SQLite file or a JSON Lines file, not both")
    if isinstance(out, Sink):
        return out
    if jsonl is not None:
        return JSONLSink(jsonl)
    if out is not None:
        return SQLiteSink(out)
    return None
