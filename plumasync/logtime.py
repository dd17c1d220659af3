"""Timestamps written in the Call Logs API's text lines: the session and error logs' bracketed
``03/Nov/2017:00:10:42 -0500`` and a call log's ``Wed 28 Aug 2002 10:16:58 AM EDT``.

Pure functions (no model imports), so the models can parse a line's timestamp when it is first read;
re-exported by :mod:`plumasync.lines`.  Both return None for text they cannot read: never an error.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

__all__ = ["ZONE_OFFSETS", "parse_clf_timestamp", "parse_detail_timestamp"]

ZONE_OFFSETS: dict[str, int] = {
    "UTC": 0, "UT": 0, "GMT": 0, "Z": 0,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600, "HDT": -540,
    "AST": -240, "ADT": -180, "NST": -210, "NDT": -150,
}  # fmt: skip
"""Zone abbreviations understood in call-log timestamps → fixed UTC offset in minutes (North America)."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_A = re.ASCII
_CLF = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{1,2}):(\d{2}):(\d{2})(?:[ \t]*([+-])(\d{2}):?(\d{2}))?", _A
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
