"""The regex line parsers as they were before the partition-based ones (kept as the reference the
equivalence tests compare against): the session and error lines, session ids and the eager calls/logs
entry.  What did not change (timestamps, call-log detail lines) is imported from plumasync itself.

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
from typing import Any, TypedDict

from plumasync.logtime import parse_clf_timestamp
from plumasync.models import CallLogEntry
from plumasync.models.loglines import (
    ErrorLine,
    ErrorLogLine,
    LocalFetchLine,
    LocalLogLine,
    SessionId,
    SessionLine,
    SessionLogLine,
    UnknownLine,
)

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


# --- the calls/logs entry as it was built before: everything eagerly ------------------------------------------


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
