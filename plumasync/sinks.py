"""Where a harvest puts what it fetched: SQLite (the default) or JSON Lines.

A sink tells the harvest which logs it already holds (so a rerun spends no request on them) and writes
batches atomically: SQLite in one transaction per batch (``INSERT OR IGNORE`` on the ``log_id`` primary
key, so nothing is ever stored twice), JSON Lines with one flush per batch (a line cut short by a crash
is dropped when the file is opened again).  A process killed mid-run loses at most the batch it was
writing, and the next run fetches exactly that again.

Nothing here ever deletes a stored log: a damaged JSON Lines line is skipped in place, never cut.  What a
sink refuses up front (before the harvest spends a request), and its one-harvest-per-file lock, are in
:mod:`plumasync.sinkfiles`; the README's "sink guarantees" table states all of it for users.
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigurationError
from .models.calllogs import CallLogDetail, CallLogEntry
from .sinkfiles import (
    check_regular,
    check_writable,
    lock_file,
    open_locked,
    read_watermark,
    scan_jsonl,
    write_watermark,
)

__all__ = ["HarvestedLog", "JSONLSink", "SQLiteSink", "Sink", "open_sink"]

log = logging.getLogger("plumasync")


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

    def watermark(self) -> int | None:
        """The follow mode's watermark: calls started before it are all stored (None: never set)."""
        return read_watermark(self.watermark_path())

    def set_watermark(self, start: int) -> None:
        """Record the watermark (atomically, beside the data)."""
        write_watermark(self.watermark_path(), start)

    def watermark_path(self) -> Path:
        """Where the watermark lives (a small sidecar file)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no watermark")


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

    Refused up front with :class:`~plumasync.errors.ConfigurationError` (before any request): a path that
    is not a regular file, a file or directory this process cannot write, a file that is not a SQLite
    database, a file another harvest holds.  A file this sink created and stored nothing in is removed
    on :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_regular(self.path)
        self._created = not self.path.exists()
        self._lock_fd = open_locked(self.path, "SQLite")
        try:
            self._db = self._connect()
        except BaseException:
            self._release(remove=self._created)
            raise

    def _connect(self) -> sqlite3.Connection:
        check_writable(self.path)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {str(self.path)!r} as a SQLite sink: {exc}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
            db.executescript(_SCHEMA)
            # Prove now that writes are possible (a read-only database answers only to a write), so a
            # sink that cannot store is refused before any request is spent.
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            db.close()
            raise ConfigurationError(f"cannot write the SQLite sink {str(self.path)!r}: {exc} "
                                     "(is it a SQLite database this process may write?)") from None
        return db

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
        if self._lock_fd < 0:
            return
        empty = self._created and self.count() == 0
        self._db.close()
        self._release(remove=empty)  # a run that stored nothing leaves no empty file behind

    def _release(self, *, remove: bool) -> None:
        if remove:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")
        # Closed last: SQLite's own locks on the file must be gone before this descriptor is.
        os.close(self._lock_fd)
        self._lock_fd = -1

    def watermark_path(self) -> Path:
        return self.path.with_name(self.path.name + ".watermark")

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"


class JSONLSink(Sink):
    """One JSON object per line (:meth:`HarvestedLog.to_dict`), appended; resumable like SQLite.

    Opening the file reads the log ids it already holds.  A last line cut short by a crash is dropped
    (it is the only line ever removed).  A damaged line elsewhere is left in place and skipped: its line
    number is in :attr:`damaged` and logged, and since its log is not counted as stored, the harvest
    fetches it again and appends it, so a rerun heals the file.  Refused up front
    (:class:`~plumasync.errors.ConfigurationError`): a path that is not a regular file, a file in which
    no line is a plumasync record (someone else's data), a file another harvest holds.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_regular(self.path)
        created = not self.path.exists()
        self._ids: set[int] = set()
        #: Line numbers (1-based) of damaged lines that were skipped.
        self.damaged: list[int] = []
        self._created = created
        try:
            self._file = self.path.open("ab")
        except OSError as exc:
            raise ConfigurationError(f"cannot write the JSON Lines sink {str(self.path)!r}: {exc}") from None
        try:
            lock_file(self._file.fileno(), self.path)
            if not created:
                self._recover()
        except BaseException:
            self._file.close()
            if created:
                self.path.unlink(missing_ok=True)
            raise

    def _recover(self) -> None:
        scan = scan_jsonl(self.path)
        if scan.foreign():
            raise ConfigurationError(
                f"{str(self.path)!r} holds no plumasync record (line {(scan.damaged or [1])[0]} is not one): "
                "refusing to append to someone else's file; choose another --jsonl path")
        self._ids = scan.ids
        self.damaged = scan.damaged
        if scan.damaged:
            shown = ", ".join(map(str, scan.damaged[:10])) + (", ..." if len(scan.damaged) > 10 else "")
            log.warning("%s: %d damaged line(s) (not plumasync records) left in place and skipped: line %s; "
                        "their logs are fetched again", self.path, len(scan.damaged), shown)
        if scan.tail_is_record:
            self._file.write(b"\n")  # whole record, only its newline missing: keep it
            self._file.flush()
        elif scan.end < scan.size:
            self._file.truncate(scan.end)  # a final line cut short by a crash: the only line dropped
            log.warning("%s: dropped a final line cut short by a crash (line %d)", self.path, scan.lines)

    def stored(self, log_ids: Iterable[int]) -> set[int]:
        return {i for i in log_ids if i in self._ids}

    def write(self, batch: list[HarvestedLog]) -> None:
        fresh = [h for h in batch if h.log_id not in self._ids]
        if not fresh:
            return
        text = "".join(json.dumps(h.to_dict(), separators=(",", ":")) + "\n" for h in fresh)
        self._file.write(text.encode("utf-8"))
        self._file.flush()
        self._ids.update(h.log_id for h in fresh)

    def count(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        if self._file.closed:
            return
        empty = self._created and self._file.tell() == 0
        self._file.close()
        if empty:
            self.path.unlink(missing_ok=True)

    def watermark_path(self) -> Path:
        return self.path.with_name(self.path.name + ".watermark")

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
