"""Typed results of the DEV Call Logs API (no wire details: see :mod:`plumasync.wire`).

The log-line models live in :mod:`plumasync.models.loglines` and are re-exported here.

Times: every field named ``start``/``end``/``timestamp`` built from a Unix epoch is a timezone-aware
datetime in UTC; the ``*_ts`` properties give the epoch back as an ``int``.  Phone numbers and ids stay
strings (leading zeros matter: server ``"000020"``).
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import attrs

from .loglines import DetailLogLine, SessionId, following_offset

__all__ = ["CallLogDetail", "CallLogEntry", "CallLogPage"]


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


@attrs.frozen
class CallLogEntry:
    """One call listed by ``calls/logs``; fetch its log with ``calls/log/{log_id}``.

    ``start``/``end`` are aware UTC datetimes (``start_ts``/``end_ts`` give the epochs).
    ``dest`` is the called number, ``src`` the calling one, ``type`` ``"inbound"``/``"outbound"``.
    """

    log_id: int
    session_id: SessionId
    dest: str
    type: str
    src: str
    start: datetime
    end: datetime

    @property
    def start_ts(self) -> int:
        """Call start, Unix seconds."""
        return _epoch(self.start)

    @property
    def end_ts(self) -> int:
        """Call end, Unix seconds."""
        return _epoch(self.end)

    @property
    def duration(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (ISO timestamps; the session id as its raw string)."""
        return {
            "log_id": self.log_id,
            "session_id": self.session_id.raw,
            "dest": self.dest,
            "type": self.type,
            "src": self.src,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


@attrs.frozen
class CallLogPage:
    """One page of ``calls/logs``.

    ``total`` counts every match ignoring ``offset``/``limit``; ``offset`` and ``limit`` are the values
    the page was requested with.
    """

    total: int
    entries: tuple[CallLogEntry, ...]
    offset: int
    limit: int

    def __iter__(self) -> Iterator[CallLogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None when this page is the last one."""
        return following_offset(self.offset, len(self.entries), self.total)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return {
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "entries": [e.to_dict() for e in self.entries],
        }


@attrs.frozen
class CallLogDetail:
    """One call's log (``calls/log/{log_id}``).

    ``log`` is the log text as sent; :meth:`lines` parses it into :class:`DetailLine` (or
    :class:`UnknownLine`) values.  ``timestamp`` is an aware UTC datetime.
    """

    dest: str
    src: str
    type: str
    timestamp: datetime
    location: str
    log: str

    @property
    def timestamp_ts(self) -> int:
        """``timestamp`` in Unix seconds."""
        return _epoch(self.timestamp)

    def lines(self) -> tuple[DetailLogLine, ...]:
        """The log text parsed line by line (blank lines skipped; never raises)."""
        from ..lines import parse_detail_log  # parsing lives with the wire layer; imported lazily

        return parse_detail_log(self.log)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return {
            "dest": self.dest,
            "src": self.src,
            "type": self.type,
            "timestamp": self.timestamp.isoformat(),
            "location": self.location,
            "log": self.log,
        }
