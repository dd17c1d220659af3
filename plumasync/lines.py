"""Parsers for the Call Logs API's text lines.  They never raise: an unrecognised shape is an
:class:`~plumasync.models.UnknownLine` holding the raw text.

Formats (Plum's logging reference):

* session log — ``calltype ANI channum [timestamp] DNIS sessionID callStart callEnd callLength``,
  ``local ANI channum [timestamp] DNIS sessionID fetchurl: startURL`` and
  ``local ANI channum [timestamp] DNIS sessionID logTagLabel: logTagExpr``;
* error log — ``error ANI channum [timestamp] DNIS sessionID message``;
* a call's log ("last call log") — ``Timestamp [module] (sessionID) entry-type: message``.

Session and error lines are split with ``str.partition`` (one space between fields; the bracketed
timestamp, which holds spaces, found by its brackets), no regular expression; ``\\/`` (PHP's escaped
slash, left in XML bodies) is tolerated inside the timestamp, read when first used.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .logtime import ZONE_OFFSETS, parse_clf_timestamp, parse_detail_timestamp
from .models.loglines import (
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
    "plain_session_id",
]

DETAIL_MODULES = frozenset(
    {"client", "dxi", "inet", "jsi", "log", "prompt", "rec", "tel", "vxi", "dlg", "sip"}
)
"""Modules documented for call-log lines (others are still parsed)."""

DETAIL_ENTRY_TYPES = frozenset({"EVENT", "DEBUG", "LOCAL", "USAGE", "ERROR"})
"""Entry types documented for call-log lines (others are still parsed)."""

_UTC = timezone.utc
_S = re.ASCII | re.DOTALL  # messages may carry embedded newlines
_BAD_SERVER = re.compile(r"[\s();]")
_DETAIL = re.compile(
    r"(?P<ts>[^\[\]]*)\[(?P<module>[^\]\s]*)\][ \t]*\((?P<sid>[^)]*)\)[ \t]*"
    r"(?P<type>[A-Za-z_]+):[ \t]?(?P<msg>.*)",
    _S,
)
def parse_session_id(text: str) -> SessionId | None:
    """``serverid;channel;starttime`` (optionally in parentheses) → :class:`SessionId`, else None.

    ``raw`` keeps ``text`` unchanged.  Kept cheap: it runs once per entry of 10,000-entry pages, so it
    only checks the shape; the parts are split out when first read.
    """
    if plain_session_id(text):
        return _session_id(text)
    body = text[1:-1] if text[:1] == "(" and text[-1:] == ")" else text
    parts = body.split(";")
    if len(parts) == 3:
        server, chan, start = parts
        # isdecimal: exactly the digit strings int() reads (isdigit also takes "²", which it refuses)
        if chan.isdecimal() and start.isdecimal() and (server.isalnum() or _valid_server(server)):
            return _session_id(text) if _int_readable(chan, start) else None
    return None


def plain_session_id(text: str) -> bool:
    """True for the usual session id: an alphanumeric server, no parentheses, short decimal numbers.

    The cheap test the hot paths run first; an id it refuses may still be valid (see
    :func:`parse_session_id`).
    """
    parts = text.split(";")
    if len(parts) != 3:
        return False
    server, chan, start = parts
    return chan.isdecimal() and start.isdecimal() and server.isalnum() and len(text) < 64


def _int_readable(*digits: str) -> bool:
    """False when int() refuses one of these decimal strings as too long (sys.set_int_max_str_digits)."""
    try:
        for text in digits:
            int(text)
    except ValueError:
        return False
    return True


_session_id = SessionId.from_checked


def _valid_server(server: str) -> bool:
    return bool(server) and _BAD_SERVER.search(server) is None


_CONTROL_BLANKS = ("\t", "\n", "\r", "\x0b", "\x0c")  # the ASCII whitespace a field may not hold
_FIRST_EPOCH, _LAST_EPOCH = -62_135_596_800, 253_402_300_799  # the seconds a UTC datetime can hold


def _fields_clean(fields: str) -> bool:
    """True when no field (here joined) holds ASCII whitespace: fields are split on single spaces."""
    return fields.isprintable() or not any(blank in fields for blank in _CONTROL_BLANKS)


def _is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` alone also takes ``"٣"`` and ``"²"``), at least one."""
    return text.isascii() and text.isdigit()


def _split_head(text: str) -> tuple[list[str], str | None] | None:
    """``kind ANI channum [timestamp] DNIS sessionID[ rest]`` → ``([kind, ani, chan, ts, dnis, sid], rest)``.

    Fields are separated by exactly one space, so an empty ANI or DNIS (``inbound  3 [...]``) still
    parses; a field holding other whitespace, or a channel that is not ASCII digits, is no head.
    The timestamp holds anything but ``]``; ``rest`` (None when absent) anything at all.
    """
    kind, _, after = text.partition(" ")
    ani, _, after = after.partition(" ")
    chan, _, after = after.partition(" ")
    close = after.find("] ")
    if not (kind and chan.isascii() and chan.isdigit() and after[:1] == "[" and close > 0) or "]" in after[1:close]:
        return None
    ts = after[1:close]
    dnis, blank, after = after[close + 2 :].partition(" ")
    sid, blank2, rest = after.partition(" ")
    if not (blank and sid and _fields_clean(kind + ani + dnis + sid)):
        return None
    return [kind, ani, chan, ts, dnis, sid], rest if blank2 else None


def _session_token(token: str) -> list[str] | None:
    """The session id field's ``[server, channel, start]``: ``server;channel;start``, a parenthesis
    allowed on either side; None if it is no session id."""
    body = token[1:] if token[:1] == "(" else token
    body = body[:-1] if body[-1:] == ")" else body
    parts = body.split(";")
    if len(parts) != 3:
        return None
    server, chan, start = parts
    if not (server and chan and start and _is_digits(chan + start)) or "(" in server or ")" in server:
        return None
    return parts


class _Head:
    """A line's shared fields as text, shape checked; :meth:`fields` converts them."""

    __slots__ = ("ani", "chan", "dnis", "kind", "parts", "rest", "token", "ts")

    def __init__(self, fields: list[str], rest: str | None, parts: list[str]) -> None:
        self.kind, self.ani, self.chan, self.ts, self.dnis, self.token = fields
        self.rest, self.parts = rest, parts

    def fields(self, raw: str) -> dict[str, Any]:
        """The shared model fields; ValueError for a number int() refuses (over 4,300 digits)."""
        channel, token = int(self.chan), self.token
        if (token[:1] == "(") == (token[-1:] == ")") and len(token) < 64:  # as SessionId splits it lazily
            session_id = _session_id(token)
        else:
            server, chan, start = self.parts
            session_id = SessionId(server, int(chan), int(start), token)
        return {"raw": raw, "ani": self.ani, "channel": channel, "timestamp_text": self.ts, "dnis": self.dnis,
                "session_id": session_id}


def _head(text: str) -> _Head | None:
    split = _split_head(text)
    parts = None if split is None else _session_token(split[0][5])
    return None if split is None or parts is None else _Head(*split, parts)


def _epoch(digits: str) -> int:
    """Unix seconds a UTC datetime can hold, else the error building that datetime raises."""
    seconds = int(digits)
    if not _FIRST_EPOCH <= seconds <= _LAST_EPOCH:
        datetime.fromtimestamp(seconds, _UTC)
    return seconds


def _call_tail(rest: str) -> list[str] | None:
    """``callStart callEnd HH:MM:SS`` (blanks and tabs between) → ``[start, end, hh, mm, ss]``."""
    fields = rest.rstrip().replace("\t", " ").split(" ")
    if fields[0] == "":
        return None
    fields = [field for field in fields if field]
    if len(fields) != 3:
        return None
    found = [fields[0], fields[1], *fields[2].split(":")]
    return found if len(found) == 5 and all(found) and _is_digits("".join(found)) else None


def _local_line(line: str, head: _Head) -> SessionLogLine:
    rest = head.rest or ""
    label, sep, message = rest.partition(": ")
    if not sep:
        label, message = (rest[:-1], "") if rest.endswith(":") else ("", rest)
    if label.lower() == "fetchurl":
        return LocalFetchLine.from_checked(url=message, **head.fields(line))
    return LocalLogLine.from_checked(label=label, message=message, **head.fields(line))


def parse_session_line(line: str) -> SessionLogLine:
    """One ``calls/sessions`` line → :class:`SessionLine`, :class:`LocalFetchLine`, :class:`LocalLogLine`
    or :class:`UnknownLine`.  Never raises."""
    head = _head(line.strip())
    if head is None:
        return UnknownLine(line, "not a session-log line")
    try:
        if head.kind == "local":
            return _local_line(line, head)
        tail = _call_tail(head.rest or "")
        if tail is None:
            return UnknownLine(line, "call line without 'callStart callEnd HH:MM:SS'")
        start, end, hh, mm, ss = tail
        epochs = (_epoch(start), _epoch(end))  # checked now, datetimes on first read
        length = timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss))
        return SessionLine.from_checked(epochs, call_type=head.kind, length=length, **head.fields(line))
    except (ValueError, OverflowError, OSError) as exc:  # epochs or durations out of range
        return UnknownLine(line, f"value out of range: {exc}")


def parse_error_line(line: str) -> ErrorLogLine:
    """One ``calls/errors`` line → :class:`ErrorLine` (message keeps its spaces) or :class:`UnknownLine`."""
    head = _head(line.strip())
    if head is None or head.kind != "error":
        return UnknownLine(line, "not an error-log line")
    try:
        return ErrorLine.from_checked(message=head.rest or "", **head.fields(line))
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
