"""Argument checks run before any request, so a bad argument never spends budget.

Each function returns the canonical wire form of a value or raises
:class:`~plumasync.errors.ValidationError` naming the argument and the forms it accepts.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import TypeGuard

from .errors import ValidationError

__all__ = [
    "MAX_API_INT",
    "MAX_PAGE_SIZE",
    "MAX_PHONE_DIGITS",
    "MAX_TIMESTAMP",
    "PERIODS",
    "RETENTION_SECONDS",
    "cl_range",
    "cl_timestamp",
    "log_id",
    "number",
    "offset",
    "page_size",
    "period",
    "phone",
    "vt_date",
    "vt_range",
]

PERIODS = ("day", "week", "month")
"""VoiceTrends grouping periods."""

MAX_PAGE_SIZE = 10_000
#: Call logs are kept for the previous 5 days (seconds).
RETENTION_SECONDS = 5 * 86_400
"""The largest ``limit`` the Call Logs listings accept."""

MAX_PHONE_DIGITS = 15
"""E.164 numbers have at most 15 digits: anything longer is no phone number."""

MAX_TIMESTAMP = 253_402_300_799
"""The last second of year 9999 (Unix seconds): the API's times are 4-digit-year instants."""

MAX_API_INT = 2**63 - 1
"""Offsets and log ids travel as signed 64-bit integers: a larger one can only be a mistake."""

_DATE_FORMS = "a date, a datetime, a 'YYYYMMDD' or 'YYYY-MM-DD' string or a YYYYMMDD int"
_TIME_FORMS = "an aware datetime, Unix seconds (int or float) or a date (midnight UTC)"
_YMD = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})", re.ASCII)
_PHONE_NOISE = re.compile(r"[\s\-.()]+")
_DIGITS = re.compile(r"\d+", re.ASCII)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def vt_date(value: date | datetime | str | int, name: str = "date") -> date:
    """A VoiceTrends date (``start``/``end``, inclusive) → :class:`datetime.date`.

    Accepts a date, a datetime (its own calendar date, time zone untouched), ``"YYYYMMDD"``,
    ``"YYYY-MM-DD"`` or the int ``YYYYMMDD``.
    """
    if isinstance(value, datetime):
        return _four_digit_year(value.date(), name, value)
    if isinstance(value, date):
        return _four_digit_year(value, name, value)
    if _is_int(value) or isinstance(value, str):
        text = str(value).strip()
        m = _YMD.fullmatch(text)
        if m is not None and (len(text) == 8 or text.count("-") == 2):
            try:
                return _four_digit_year(date(int(m[1]), int(m[2]), int(m[3])), name, value)
            except ValueError as exc:
                if isinstance(exc, ValidationError):
                    raise
        raise ValidationError(f"{name}={value!r} is not a valid calendar date; expected {_DATE_FORMS}")
    raise ValidationError(f"{name} must be {_DATE_FORMS}, got {type(value).__name__} {value!r}")


def _four_digit_year(day: date, name: str, value: object) -> date:
    # The wire form is YYYYMMDD: a year before 1000 would not fill its four digits
    # (strftime("%Y") gives "999", so 0999-01-01 would be sent as "9990101").
    if day.year < 1000:
        raise ValidationError(f"{name}={value!r} has a year before 1000; dates need a 4-digit year")
    return day


def vt_range(start: date | datetime | str | int, end: date | datetime | str | int) -> tuple[str, str]:
    """VoiceTrends ``start``/``end`` (both inclusive, ``start <= end``) → ``("YYYYMMDD", "YYYYMMDD")``."""
    first, last = vt_date(start, "start"), vt_date(end, "end")
    if first > last:
        raise ValidationError(f"start ({first.isoformat()}) must not be after end ({last.isoformat()})")
    return _ymd(first), _ymd(last)


def _ymd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"  # strftime("%Y") does not zero-pad


def period(value: str) -> str:
    """A VoiceTrends period: ``day``, ``week`` or ``month`` (any case) → lower case."""
    if isinstance(value, str) and value.strip().lower() in PERIODS:
        return value.strip().lower()
    raise ValidationError(f"period must be one of 'day', 'week', 'month' (any case), got {value!r}")


def _digits(value: object, name: str, forms: str) -> str:
    text: str | None = None
    if _is_int(value) and value >= 0:
        text = str(value)
    elif isinstance(value, str) and len(value) <= 64:
        text = _PHONE_NOISE.sub("", value)
        text = text[1:] if text.startswith("+") else text
    if text is not None and _DIGITS.fullmatch(text) and len(text) <= MAX_PHONE_DIGITS:
        return text
    raise ValidationError(f"{name} must be {forms} of 1 to {MAX_PHONE_DIGITS} digits, got {value!r:.80}")


def phone(value: str | int) -> str:
    """A VoiceTrends phone: a number, or ``"ALL"`` (any case) to merge all numbers.

    Formatting is stripped: a leading ``+``, spaces, dashes, dots and parentheses
    (``"+1 (617) 712-3000"`` → ``"16177123000"``).
    """
    if isinstance(value, str) and value.strip().upper() == "ALL":
        return "ALL"
    forms = "'ALL' or a phone number (digits, optionally with +, spaces, dashes, dots, parentheses)"
    return _digits(value, "phone", forms)


def number(value: str | int | None) -> str | None:
    """The optional Call Logs ``number`` filter → digits only, or None for no filter.

    Formatting is stripped as for :func:`phone`; ``"ALL"`` is not accepted here.
    """
    if value is None:
        return None
    forms = "None or a phone number (digits, optionally with +, spaces, dashes, dots, parentheses)"
    return _digits(value, "number", forms)


def cl_timestamp(value: datetime | date | int | float, name: str = "timestamp") -> int:
    """A Call Logs time → Unix seconds (``int``, fractions dropped).

    Accepts an aware datetime, Unix seconds as int or float, or a date (midnight UTC).  A naive datetime
    is refused: it is ambiguous (local time? UTC?).
    """
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValidationError(
                f"{name}={value!r} is a naive datetime, which is ambiguous; give it a tzinfo "
                "(e.g. datetime(..., tzinfo=timezone.utc)) or pass Unix seconds"
            )
        return _bounded_seconds(value.timestamp(), name, value)
    if isinstance(value, date):
        return _bounded_seconds(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp(),
                                name, value)
    if _is_int(value):
        seconds: float = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number of seconds, got {value!r}")
        seconds = value
    else:
        raise ValidationError(f"{name} must be {_TIME_FORMS}, got {type(value).__name__} {value!r}")
    return _bounded_seconds(seconds, name, value)


def _bounded_seconds(seconds: float, name: str, value: object) -> int:
    if seconds < 0:
        raise ValidationError(f"{name} must not be before 1970 (Unix seconds >= 0), got {value!r:.80}")
    if seconds > MAX_TIMESTAMP:
        raise ValidationError(f"{name} must not be after year 9999 (Unix seconds <= {MAX_TIMESTAMP}), "
                              f"got {value!r:.80}")
    return math.floor(seconds)


def cl_range(start: datetime | date | int | float, end: datetime | date | int | float) -> tuple[int, int]:
    """Call Logs ``[start, end)`` → ``(start_seconds, end_seconds)``; ``end`` must be after ``start``."""
    first, last = cl_timestamp(start, "start"), cl_timestamp(end, "end")
    if last <= first:
        raise ValidationError(f"end ({last}) must be after start ({first}) in Unix seconds")
    return first, last


def page_size(limit: int) -> int:
    """A Call Logs ``limit``: an int from 1 to 10000 (bool refused)."""
    if _is_int(limit) and 1 <= limit <= MAX_PAGE_SIZE:
        return limit
    raise ValidationError(f"limit must be an int from 1 to {MAX_PAGE_SIZE}, got {limit!r}")


def offset(n: int) -> int:
    """A Call Logs ``offset``: an int from 0 to 2**63 - 1 (bool refused)."""
    if _is_int(n) and 0 <= n <= MAX_API_INT:
        return n
    raise ValidationError(f"offset must be an int >= 0 and at most {MAX_API_INT}, got {n!r:.80}")


def log_id(value: int | str) -> int:
    """A ``calls/log`` id: a positive int or a string of digits, at most 2**63 - 1 → int."""
    if _is_int(value) and 0 < value <= MAX_API_INT:
        return value
    if isinstance(value, str) and len(value) <= 40 and _DIGITS.fullmatch(value.strip()) \
            and 0 < int(value) <= MAX_API_INT:
        return int(value)
    raise ValidationError(f"log_id must be a positive int or a string of digits up to {MAX_API_INT}, "
                          f"got {value!r:.80}")
