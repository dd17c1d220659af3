"""Typed log lines of the DEV Call Logs API, and the pages that carry them.

Every line keeps ``raw``, the text exactly as the server sent it (after JSON decoding).  A line whose
shape is not recognised becomes an :class:`UnknownLine` — parsing never fails on content.
Re-exported by :mod:`plumasync.models.calllogs`.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from ..logtime import parse_clf_timestamp
from .lazy import Lazy, slot_setter

__all__ = [
    "BaseSessionLine",
    "DetailLine",
    "DetailLogLine",
    "ErrorLine",
    "ErrorLogLine",
    "ErrorPage",
    "LinePage",
    "LocalFetchLine",
    "LocalLogLine",
    "SessionId",
    "SessionLine",
    "SessionLogLine",
    "SessionPage",
    "UnknownLine",
]


@attrs.frozen
class SessionId(Lazy):
    """A Plum session id ``serverid;channel;starttime``.

    ``server`` keeps its leading zeros (``"000020"``); ``start`` is Unix seconds and is *not* the call
    start (it can be seconds or hours earlier).  ``raw`` is the id exactly as sent; ``str()`` gives it back.
    Parsed from the wire, only ``raw`` is stored at first: the parts are split out on first read.
    """

    server: str
    channel: int
    start: int
    raw: str

    def __str__(self) -> str:
        return self.raw

    @classmethod
    def from_checked(cls, raw: str) -> "SessionId":
        """A session id from ``raw`` already checked to be ``server;channel;start`` (optionally in
        parentheses, channel and start decimal): its parts are split out on first read."""
        sid = _new(cls)
        _set_raw(sid, raw)
        return sid

    def _split(self) -> None:
        raw = self.raw
        body = raw[1:-1] if raw[:1] == "(" and raw[-1:] == ")" else raw
        server, channel, start = body.split(";")
        _set_server(self, server)
        _set_channel(self, int(channel))
        _set_start(self, int(start))

    @property
    def started(self) -> datetime:
        """``start`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.start, timezone.utc)


_new = object.__new__
_set_raw, _set_server, _set_channel, _set_start = (
    slot_setter(SessionId, name) for name in ("raw", "server", "channel", "start")
)
SessionId._lazy = dict.fromkeys(("server", "channel", "start"), SessionId._split)


@attrs.frozen
class UnknownLine:
    """A line whose shape was not recognised; ``reason`` says which part did not fit."""

    known: ClassVar[bool] = False
    raw: str
    reason: str = ""


_AnyLine = TypeVar("_AnyLine", bound="BaseSessionLine")


@attrs.frozen(kw_only=True)
class BaseSessionLine(Lazy):
    """Fields shared by session-log and error-log lines: ``kind ANI channum [timestamp] DNIS sessionID ...``.

    ``timestamp`` is the bracketed time as written (``timestamp_text`` keeps the literal); it can be an
    hour off, so prefer the epoch fields of :class:`SessionLine` when there are some.  It is None when the
    literal cannot be read.  ``dnis`` is the called number — for outbound calls it can hold a login.
    Parsed from the wire, ``timestamp`` is read from ``timestamp_text`` on first use.
    """

    known: ClassVar[bool] = True
    raw: str
    ani: str
    channel: int
    timestamp: datetime | None
    timestamp_text: str
    dnis: str
    session_id: SessionId

    @classmethod
    def from_checked(cls: type[_AnyLine], wire: Any = None, **fields: Any) -> _AnyLine:
        """A line from checked wire values: every field but the lazy ones (``timestamp``, and a
        :class:`SessionLine`'s ``start``/``end``, whose epoch seconds come as ``wire``)."""
        line = _new(cls)
        for name, value in fields.items():
            _set_field(line, name, value)
        if wire is not None:
            _set_wire(line, wire)
        return line

    def _fill_timestamp(self) -> None:
        _set_field(self, "timestamp", parse_clf_timestamp(self.timestamp_text))


@attrs.frozen(kw_only=True)
class SessionLine(BaseSessionLine):
    """``calltype ANI channum [timestamp] DNIS sessionID callStart callEnd callLength``.

    ``call_type`` is ``inbound``, ``outbound`` or ``transfer``; ``start``/``end`` are aware UTC datetimes
    from the epoch fields (the truth); ``length`` is ``callLength`` as a timedelta.
    """

    call_type: str
    start: datetime
    end: datetime
    length: timedelta

    def _fill_start(self) -> None:
        _set_field(self, "start", datetime.fromtimestamp(self._wire[0], timezone.utc))

    def _fill_end(self) -> None:
        _set_field(self, "end", datetime.fromtimestamp(self._wire[1], timezone.utc))

    @property
    def start_ts(self) -> int:
        """Call start, Unix seconds."""
        try:
            return self._wire[0]  # type: ignore[no-any-return]
        except AttributeError:  # built by the constructor
            return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        """Call end, Unix seconds."""
        try:
            return self._wire[1]  # type: ignore[no-any-return]
        except AttributeError:
            return int(self.end.timestamp())


@attrs.frozen(kw_only=True)
class LocalFetchLine(BaseSessionLine):
    """``local ANI channum [timestamp] DNIS sessionID fetchurl: startURL``."""

    url: str


@attrs.frozen(kw_only=True)
class LocalLogLine(BaseSessionLine):
    """``local ANI channum [timestamp] DNIS sessionID label: message`` (a ``<log>`` tag entry)."""

    label: str
    message: str


@attrs.frozen(kw_only=True)
class ErrorLine(BaseSessionLine):
    """``error ANI channum [timestamp] DNIS sessionID message`` (the message may contain spaces)."""

    message: str


_set_field = object.__setattr__  # frozen models: the fillers write past attrs' guard
_set_wire = slot_setter(Lazy, "_wire")
BaseSessionLine._lazy = {"timestamp": BaseSessionLine._fill_timestamp}
SessionLine._lazy = {**BaseSessionLine._lazy, "start": SessionLine._fill_start, "end": SessionLine._fill_end}


@attrs.frozen(kw_only=True)
class DetailLine:
    """One line of a call's log: ``Timestamp [module] (sessionID) entry-type: message``.

    ``timestamp_text`` is the literal (e.g. ``Wed 28 Aug 2002 10:16:58 AM EDT``); ``timestamp`` is it
    parsed when the zone is a known abbreviation or numeric offset, else None.  ``module`` is e.g.
    ``vxi``; ``entry_type`` e.g. ``EVENT``; ``session_id`` is None when the parentheses hold no valid id.
    """

    known: ClassVar[bool] = True
    raw: str
    timestamp_text: str
    timestamp: datetime | None
    module: str
    session_id: SessionId | None
    entry_type: str
    message: str


_Line = TypeVar("_Line")

SessionLogLine = SessionLine | LocalFetchLine | LocalLogLine | UnknownLine
"""One parsed line of ``calls/sessions``."""

ErrorLogLine = ErrorLine | UnknownLine
"""One parsed line of ``calls/errors``."""

DetailLogLine = DetailLine | UnknownLine
"""One parsed line of a single call's log (``calls/log``)."""


def following_offset(offset: int, count: int, total: int) -> int | None:
    """Offset of the page after one at ``offset`` holding ``count`` of ``total`` items; None if last."""
    following = offset + count
    return following if count and following < total else None


@attrs.frozen
class LinePage(Generic[_Line]):
    """A page of log lines: ``total`` matches in all, this page's parsed ``lines``, and the ``offset`` and
    ``limit`` the page was requested with."""

    total: int
    lines: tuple[_Line, ...]
    offset: int = 0
    limit: int = 1000

    def __iter__(self) -> Iterator[_Line]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None when this page is the last one."""
        return following_offset(self.offset, len(self.lines), self.total)


@attrs.frozen
class SessionPage(LinePage[SessionLogLine]):
    """One page of ``calls/sessions``."""


@attrs.frozen
class ErrorPage(LinePage[ErrorLogLine]):
    """One page of ``calls/errors``."""
