"""Typed results of the DEV Call Logs API (no wire details: see :mod:`plumasync.wire`).

The log-line models live in :mod:`plumasync.models.loglines` and are re-exported here.

Times: every field named ``start``/``end``/``timestamp`` built from a Unix epoch is a timezone-aware
datetime in UTC; the ``*_ts`` properties give the epoch back as an ``int``.  Phone numbers and ids stay
strings (leading zeros matter: server ``"000020"``).
"""

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from .lazy import Lazy, slot_setter
from .loglines import DetailLogLine, SessionId, following_offset

__all__ = ["CallLogDetail", "CallLogEntry", "CallLogPage"]


_UTC = timezone.utc
_new = object.__new__
_utc_datetime = datetime.fromtimestamp


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


@attrs.frozen
class CallLogEntry(Lazy):
    """One call listed by ``calls/logs``; fetch its log with ``calls/log/{log_id}``.

    ``start``/``end`` are aware UTC datetimes (``start_ts``/``end_ts`` give the epochs).
    ``dest`` is the called number, ``src`` the calling one, ``type`` ``"inbound"``/``"outbound"``.
    Parsed from the wire, ``start``/``end`` are built on first read (a harvest reads only the epochs).
    """

    log_id: int
    session_id: SessionId
    dest: str
    type: str
    src: str
    start: datetime
    end: datetime

    @classmethod
    def from_checked(
        cls, log_id: int, session_id: str, dest: str, type: str, src: str, start: int | str, end: int | str
    ) -> "CallLogEntry":
        """An entry from wire values already checked: ``session_id`` a valid id's text, ``start`` and
        ``end`` Unix seconds (int or decimal text) within years 1 to 9999.  Those three become a
        :class:`SessionId` and datetimes on first read."""
        entry = _new(cls)
        _set_log_id(entry, log_id)
        _set_dest(entry, dest)
        _set_type(entry, type)
        _set_src(entry, src)
        _set_wire(entry, (session_id, start, end))
        return entry

    def _fill_session_id(self) -> None:
        _set_session_id(self, SessionId.from_checked(self._wire[0]))

    def _fill_start(self) -> None:
        _set_start(self, _utc_datetime(int(self._wire[1]), _UTC))

    def _fill_end(self) -> None:
        _set_end(self, _utc_datetime(int(self._wire[2]), _UTC))

    @property
    def start_ts(self) -> int:
        """Call start, Unix seconds."""
        try:
            return int(self._wire[1])
        except AttributeError:  # built by the constructor: no wire values
            return _epoch(self.start)

    @property
    def end_ts(self) -> int:
        """Call end, Unix seconds."""
        try:
            return int(self._wire[2])
        except AttributeError:
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


_set_log_id, _set_session_id, _set_dest, _set_type, _set_src, _set_start, _set_end = (
    slot_setter(CallLogEntry, name) for name in ("log_id", "session_id", "dest", "type", "src", "start", "end")
)
_set_wire = slot_setter(Lazy, "_wire")
CallLogEntry._lazy = {
    "session_id": CallLogEntry._fill_session_id, "start": CallLogEntry._fill_start, "end": CallLogEntry._fill_end
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
class CallLogDetail(Lazy):
    """One call's log (``calls/log/{log_id}``).

    ``log`` is the log text as sent; :meth:`lines` parses it into :class:`DetailLine` (or
    :class:`UnknownLine`) values.  ``timestamp`` is an aware UTC datetime (built on first read when
    parsed from the wire).
    """

    dest: str
    src: str
    type: str
    timestamp: datetime
    location: str
    log: str

    @classmethod
    def from_checked(
        cls, dest: str, src: str, type: str, timestamp_ts: int, location: str, log: str
    ) -> "CallLogDetail":
        """A detail from wire values already checked (``timestamp_ts`` within years 1 to 9999)."""
        detail = _new(cls)
        for setter, value in zip(_DETAIL_SETTERS, (dest, src, type, location, log, timestamp_ts), strict=True):
            setter(detail, value)
        return detail

    def _fill_timestamp(self) -> None:
        _set_timestamp(self, _utc_datetime(self._wire, _UTC))

    @property
    def timestamp_ts(self) -> int:
        """``timestamp`` in Unix seconds."""
        try:
            return self._wire  # type: ignore[no-any-return]
        except AttributeError:
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


_set_timestamp = slot_setter(CallLogDetail, "timestamp")
CallLogDetail._lazy = {"timestamp": CallLogDetail._fill_timestamp}
_DETAIL_SETTERS = (*(slot_setter(CallLogDetail, n) for n in ("dest", "src", "type", "location", "log")), _set_wire)
