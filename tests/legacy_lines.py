"""The regex line parsers as they were before the partition-based ones (kept as the reference the
equivalence tests compare against).

Parsers for the Call Logs API's text lines.  They never raise: an unrecognised shape is an
:class:`~plumasync.models.UnknownLine` holding the raw text.

Formats (Plum's logging reference):

* session log — ``calltype ANI channum [timestamp] DNIS sessionID callStart callEnd callLength``,
  ``local ANI channum [timestamp] DNIS sessionID fetchurl: startURL`` and
  ``local ANI channum [timestamp] DNIS sessionID logTagLabel: logTagExpr``;
* error log — ``error ANI channum [timestamp] DNIS sessionID message``;
* a call's log ("last call log") — ``Timestamp [module] (sessionID) entry-type: message``.

The bracketed timestamp contains a space, so fields are matched, not split; ``\\/`` (PHP's escaped
slash, left in XML bodies) is tolerated inside it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, TypedDict

from plumasync.models import CallLogEntry
from plumasync.models.loglines import (
    DetailLine,
    DetailLogLine,
    ErrorLine,
    ErrorLogLine,
    LocalFetchLine,
    LocalLogLine,
    SessionId,
    SessionLine,
    SessionLogLine,
    UnknownLine,
)

__all__ = [
    "DETAIL_ENTRY_TYPES",
    "DETAIL_MODULES",
    "ZONE_OFFSETS",
    "parse_clf_timestamp",
    "parse_detail_line",
    "parse_detail_log",
    "parse_detail_timestamp",
    "parse_error_line",
    "parse_session_id",
    "parse_session_line",
]

DETAIL_MODULES = frozenset(
    {"client", "dxi", "inet", "jsi", "log", "prompt", "rec", "tel", "vxi", "dlg", "sip"}
)
"""Modules documented for call-log lines (others are still parsed)."""

DETAIL_ENTRY_TYPES = frozenset({"EVENT", "DEBUG", "LOCAL", "USAGE", "ERROR"})
"""Entry types documented for call-log lines (others are still parsed)."""

ZONE_OFFSETS: dict[str, int] = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600, "HDT": -540,
    "AST": -240, "ADT": -180, "NST": -210, "NDT": -150,
}  # fmt: skip
"""Zone abbreviations understood in call-log timestamps → fixed UTC offset in minutes (North America)."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}

_UTC = timezone.utc
_A = re.ASCII
_S = re.ASCII | re.DOTALL  # messages may carry embedded newlines

# kind ANI channum [timestamp] DNIS sessionID [rest].  Fields are separated by exactly one space, so an
# empty ANI or DNIS ("inbound  3 [...]") still parses and matching stays linear (with `[ \t]+` around
# the optional fields, a long run of blanks backtracks quadratically).
_HEAD = re.compile(
    r"(?P<kind>\S+) (?P<ani>\S*) (?P<chan>\d+) \[(?P<ts>[^\]]*)\] (?P<dnis>\S*) "
    r"(?P<sid>\(?(?P<server>[^;\s()]+);(?P<schan>\d+);(?P<sstart>\d+)\)?)(?: (?P<rest>.*))?",
    _S,
)
_BAD_SERVER = re.compile(r"[\s();]")
_CALL_TAIL = re.compile(r"(\d+)[ \t]+(\d+)[ \t]+(\d+):(\d+):(\d+)", _A)
_CLF = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{1,2}):(\d{2}):(\d{2})(?:[ \t]*([+-])(\d{2}):?(\d{2}))?", _A
)
_DETAIL = re.compile(
    r"(?P<ts>[^\[\]]*)\[(?P<module>[^\]\s]*)\][ \t]*\((?P<sid>[^)]*)\)[ \t]*"
    r"(?P<type>[A-Za-z_]+):[ \t]?(?P<msg>.*)",
    _S,
)
_DETAIL_TS = re.compile(
    r"(?:[A-Za-z]{3},?[ \t]+)?(\d{1,2})[ \t]+([A-Za-z]{3})[ \t]+(\d{4})[ \t]+(\d{1,2}):(\d{2}):(\d{2})"
    r"(?:[ \t]*([AaPp][Mm]))?(?:[ \t]+(?:([A-Za-z]{1,5})|([+-])(\d{2}):?(\d{2})))?",
    _A,
)


@lru_cache(maxsize=64)
def _fixed_zone(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def _month(name: str) -> int:
    return _MONTHS.get(name.lower(), 0)


def parse_session_id(text: str) -> SessionId | None:
    """``serverid;channel;starttime`` (optionally in parentheses) → :class:`SessionId`, else None.

    ``raw`` keeps ``text`` unchanged.  Kept cheap: it runs once per entry of 10,000-entry pages.
    """
    body = text[1:-1] if text[:1] == "(" and text[-1:] == ")" else text
    try:
        server, chan, start = body.split(";")
        if chan.isdigit() and start.isdigit() and (server.isalnum() or _valid_server(server)):
            return SessionId(server, int(chan), int(start), text)
    except ValueError:  # not three parts, or non-ASCII digits int() refuses
        pass
    return None


def _valid_server(server: str) -> bool:
    return bool(server) and _BAD_SERVER.search(server) is None


def parse_clf_timestamp(text: str) -> datetime | None:
    """``03/Nov/2017:00:10:42 -0500`` (``\\/`` tolerated) → aware datetime as written; None if unreadable."""
    m = _CLF.fullmatch(text.strip().replace("\\/", "/"))
    if m is None or m[7] is None:
        return None
    sign = -1 if m[7] == "-" else 1
    try:
        tz = _fixed_zone(sign * (int(m[8]) * 60 + int(m[9])))
        return datetime(int(m[3]), _month(m[2]), int(m[1]), int(m[4]), int(m[5]), int(m[6]), tzinfo=tz)
    except ValueError:
        return None


def parse_detail_timestamp(text: str) -> datetime | None:
    """``Wed 28 Aug 2002 10:16:58 AM EDT`` → aware datetime, or None.

    The zone must be an abbreviation in :data:`ZONE_OFFSETS` or a numeric offset (``-0400``); without
    one the instant is unknown and the result is None.
    """
    m = _DETAIL_TS.fullmatch(text.strip())
    if m is None:
        return None
    day, mon, year, hour, minute, sec, ampm, abbr, sign, oh, om = m.groups()
    if abbr is not None:
        offset = ZONE_OFFSETS.get(abbr.upper())
        if offset is None:
            return None
    elif sign is not None:
        offset = (-1 if sign == "-" else 1) * (int(oh) * 60 + int(om))
    else:
        return None
    h = int(hour)
    if ampm is not None:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if ampm.upper() == "PM" else 0)
    try:
        zone = _fixed_zone(offset)
        return datetime(int(year), _month(mon), int(day), h, int(minute), int(sec), tzinfo=zone)
    except ValueError:
        return None


def _epoch_utc(digits: str) -> datetime:
    return datetime.fromtimestamp(int(digits), _UTC)


class _Head(TypedDict):
    raw: str
    ani: str
    channel: int
    timestamp: datetime | None
    timestamp_text: str
    dnis: str
    session_id: SessionId


def _head(m: re.Match[str], raw: str) -> _Head:
    ts = m["ts"]
    return {
        "raw": raw,
        "ani": m["ani"],
        "channel": int(m["chan"]),
        "timestamp": parse_clf_timestamp(ts),
        "timestamp_text": ts,
        "dnis": m["dnis"],
        "session_id": SessionId(m["server"], int(m["schan"]), int(m["sstart"]), m["sid"]),
    }


def parse_session_line(line: str) -> SessionLogLine:
    """One ``calls/sessions`` line → :class:`SessionLine`, :class:`LocalFetchLine`, :class:`LocalLogLine`
    or :class:`UnknownLine`.  Never raises."""
    m = _HEAD.fullmatch(line.strip())
    if m is None:
        return UnknownLine(line, "not a session-log line")
    rest = m["rest"] or ""
    try:
        if m["kind"] == "local":
            label, sep, message = rest.partition(": ")
            if not sep:
                label, message = (rest[:-1], "") if rest.endswith(":") else ("", rest)
            if label.lower() == "fetchurl":
                return LocalFetchLine(url=message, **_head(m, line))
            return LocalLogLine(label=label, message=message, **_head(m, line))
        tail = _CALL_TAIL.fullmatch(rest.rstrip())
        if tail is None:
            return UnknownLine(line, "call line without 'callStart callEnd HH:MM:SS'")
        start, end, hh, mm, ss = tail.groups()
        return SessionLine(
            call_type=m["kind"],
            start=_epoch_utc(start),
            end=_epoch_utc(end),
            length=timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss)),
            **_head(m, line),
        )
    except (ValueError, OverflowError, OSError) as exc:  # epochs or durations out of range
        return UnknownLine(line, f"value out of range: {exc}")


def parse_error_line(line: str) -> ErrorLogLine:
    """One ``calls/errors`` line → :class:`ErrorLine` (message keeps its spaces) or :class:`UnknownLine`."""
    m = _HEAD.fullmatch(line.strip())
    if m is None or m["kind"] != "error":
        return UnknownLine(line, "not an error-log line")
    try:
        return ErrorLine(message=m["rest"] or "", **_head(m, line))
    except (ValueError, OverflowError) as exc:
        return UnknownLine(line, f"value out of range: {exc}")


def parse_detail_line(line: str) -> DetailLogLine:
    """One line of a call's log → :class:`DetailLine` or :class:`UnknownLine`.  Never raises."""
    m = _DETAIL.fullmatch(line.strip())
    if m is None:
        return UnknownLine(line, "not a call-log line")
    ts = m["ts"].strip()
    return DetailLine(
        raw=line,
        timestamp_text=ts,
        timestamp=parse_detail_timestamp(ts),
        module=m["module"],
        session_id=parse_session_id(m["sid"].strip()),
        entry_type=m["type"],
        message=m["msg"],
    )


def parse_detail_log(text: str) -> tuple[DetailLogLine, ...]:
    """A call's whole log text → one parsed value per non-blank line."""
    return tuple(parse_detail_line(line) for line in text.splitlines() if line.strip())


# --- the calls/logs entry as main built it: everything eagerly ------------------------------------------


def structure_entry(d: Any) -> CallLogEntry:
    """A ``calls/logs`` record → entry, every field built at once (the former converter hook)."""
    from plumasync.converter import to_int, to_str

    dest, kind, src = d["dest"], d["type"], d["src"]
    if not (type(dest) is str and type(kind) is str and type(src) is str):
        dest, kind, src = to_str(dest), to_str(kind), to_str(src)
    log_id, start, end = d["log_id"], d["start"], d["end"]
    if not (type(log_id) is str and type(start) is str and type(end) is str):
        log_id, start, end = to_int(log_id), to_int(start), to_int(end)

    def session_id(value: Any) -> SessionId:
        sid = parse_session_id(to_str(value))
        if sid is None:
            raise ValueError(f"not a session id (server;channel;start): {value!r}")
        return sid

    return CallLogEntry(int(log_id), session_id(d["session_id"]), dest, kind, src,
                        datetime.fromtimestamp(int(start), _UTC), datetime.fromtimestamp(int(end), _UTC))
