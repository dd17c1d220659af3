"""Reading ``X-RateLimit-*``, ``Retry-After`` and ``Date`` headers: malformed values are ignored with a
debug log (whether a well-formed value is *believed* is :mod:`plumasync.governor.core.judge`'s business).

Two doors, one reading: :func:`parse_rate_headers` looks the five names up in a case-insensitive mapping;
:func:`parse_raw_rate_headers` takes a response's raw ``(name, value)`` byte pairs in one pass (each lookup
in ``httpx.Headers`` is a scan of its own), which the governed transport does for every response.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime

from .model import RateHeaders

__all__ = [
    "RATE_HEADER_SLOTS",
    "HeaderSlots",
    "collect_headers",
    "parse_rate_headers",
    "parse_raw_rate_headers",
    "rate_headers",
]

log = logging.getLogger("plumasync")

class HeaderSlots:
    """Header names (lower case) that :func:`collect_headers` reads in one pass, in their order."""

    __slots__ = ("index", "lengths", "names")

    def __init__(self, *names: bytes) -> None:
        self.names = names
        self.index = {name: position for position, name in enumerate(names)}
        self.lengths = frozenset(len(name) for name in names)  # most names are skipped by their length

    def extend(self, *names: bytes) -> HeaderSlots:
        """These slots, then ``names``."""
        return HeaderSlots(*self.names, *names)


#: The names read, in the order of :func:`rate_headers`' arguments.
RATE_HEADER_SLOTS = HeaderSlots(b"x-ratelimit-limit", b"x-ratelimit-remaining", b"x-ratelimit-reset", b"date",
                                b"retry-after")

_NO_HEADERS = RateHeaders()

Raw = str | bytes


def _int(raw: Raw | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)  # int() skips surrounding whitespace, and reads ASCII digits from bytes too
    except ValueError:
        log.debug("ignoring malformed %s header: %r", name, raw[:40])
        return None
    if value < 0:
        log.debug("ignoring negative %s header: %r", name, raw[:40])
        return None
    return value


def _text(raw: Raw) -> str:
    return raw if isinstance(raw, str) else raw.decode("latin-1")


@functools.lru_cache(maxsize=8)  # responses of the same second repeat the same Date: parse it once
def _parse_date(raw: Raw) -> float | None:
    try:
        parsed = parsedate_to_datetime(_text(raw))
    except (TypeError, ValueError, IndexError):
        log.debug("ignoring malformed Date header: %r", raw[:40])
        return None
    if parsed.tzinfo is None:  # RFC 7231 dates are GMT; "-0000" parses naive
        parsed = parsed.replace(tzinfo=timezone.utc)
    stamp = parsed.timestamp()
    return stamp if math.isfinite(stamp) else None


def _retry_after(raw: Raw | None) -> tuple[float | None, float | None]:
    """``Retry-After`` as (seconds, None) or (None, HTTP-date in server Unix time); (None, None) if absent."""
    if raw is None:
        return None, None
    text = raw.strip()
    if text.isdigit():
        return float(int(text)), None
    stamp = _parse_date(text) if text[:1].isalpha() else None
    if stamp is None:
        log.debug("ignoring malformed Retry-After header: %r", raw[:40])
    return None, stamp


def rate_headers(limit: Raw | None, remaining: Raw | None, reset: Raw | None, date: Raw | None,
                 retry_after: Raw | None) -> RateHeaders:
    """The facts of the five raw header values (text or bytes; None: absent), validated.

    A Reset that looks like a duration rather than a Unix time (smaller than one year of seconds) is
    ignored: the documented form is absolute.  A Limit of 0 is ignored too.
    """
    if limit is None and remaining is None and reset is None and date is None and retry_after is None:
        return _NO_HEADERS
    lim = _int(limit, "x-ratelimit-limit")
    left = _int(remaining, "x-ratelimit-remaining")
    at = _int(reset, "x-ratelimit-reset")
    if lim == 0:
        log.debug("ignoring X-RateLimit-Limit of 0")
        lim = None
    if at is not None and at < 365 * 86400:
        log.debug("ignoring X-RateLimit-Reset that is not a Unix time: %r", at)
        at = None
    seconds, retry_at = _retry_after(retry_after)
    return RateHeaders(limit=lim, remaining=left, reset=None if at is None else float(at),
                       date=None if date is None else _parse_date(date), retry_after=seconds, retry_at=retry_at)


def parse_rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """Extract Limit, Remaining, Reset (absolute Unix seconds), Date and Retry-After from response headers.

    ``headers`` must look names up case-insensitively (``httpx.Headers`` does).
    """
    return rate_headers(headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining"),
                        headers.get("x-ratelimit-reset"), headers.get("date"), headers.get("retry-after"))


def collect_headers(raw: Iterable[tuple[bytes, bytes]], slots: HeaderSlots) -> list[bytes | None]:
    """One pass over raw ``(name, value)`` pairs: the value of each name of ``slots`` at its position, None
    when absent.  A repeated name reads as its values joined by ``", "``, as a lookup in ``httpx.Headers``
    would."""
    values: list[bytes | None] = [None] * len(slots.names)
    index, lengths = slots.index, slots.lengths
    for name, value in raw:
        if len(name) not in lengths:
            continue  # not one of ours: no lower-cased copy of its name
        slot = index.get(name.lower())
        if slot is not None:
            seen = values[slot]
            values[slot] = value if seen is None else seen + b", " + value
    return values


def parse_raw_rate_headers(raw: Iterable[tuple[bytes, bytes]]) -> RateHeaders:
    """:func:`parse_rate_headers` in one pass over raw ``(name, value)`` pairs (``httpx.Headers.raw``)."""
    v = collect_headers(raw, RATE_HEADER_SLOTS)
    return rate_headers(v[0], v[1], v[2], v[3], v[4])
