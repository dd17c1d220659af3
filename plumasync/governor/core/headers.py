"""Reading ``X-RateLimit-*``, ``Retry-After`` and ``Date`` headers: malformed values are ignored with a
debug log (whether a well-formed value is *believed* is :mod:`plumasync.governor.core.judge`'s business)."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from .model import RateHeaders

__all__ = ["parse_rate_headers"]

log = logging.getLogger("plumasync")


def _int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        log.debug("ignoring malformed %s header: %r", name, raw[:40])
        return None
    if value < 0:
        log.debug("ignoring negative %s header: %r", name, raw[:40])
        return None
    return value


def _date(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("date")
    return None if raw is None else _parse_date(raw)


@functools.lru_cache(maxsize=8)  # responses of the same second repeat the same Date: parse it once
def _parse_date(raw: str) -> float | None:
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        log.debug("ignoring malformed Date header: %r", raw[:40])
        return None
    if parsed.tzinfo is None:  # RFC 7231 dates are GMT; "-0000" parses naive
        from datetime import timezone

        parsed = parsed.replace(tzinfo=timezone.utc)
    stamp = parsed.timestamp()
    return stamp if math.isfinite(stamp) else None


def _retry_after(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """``Retry-After`` as (seconds, None) or (None, HTTP-date in server Unix time); (None, None) if absent."""
    raw = headers.get("retry-after")
    if raw is None:
        return None, None
    text = raw.strip()
    if text.isdigit():
        return float(int(text)), None
    stamp = _parse_date(text) if text[:1].isalpha() else None
    if stamp is None:
        log.debug("ignoring malformed Retry-After header: %r", raw[:40])
    return None, stamp


def parse_rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """Extract Limit, Remaining, Reset (absolute Unix seconds), Date and Retry-After from response headers.

    ``headers`` must look names up case-insensitively (``httpx.Headers`` does).  A Reset that looks
    like a duration rather than a Unix time (smaller than one year of seconds) is ignored: the
    documented form is absolute.
    """
    limit = _int(headers, "x-ratelimit-limit")
    remaining = _int(headers, "x-ratelimit-remaining")
    reset = _int(headers, "x-ratelimit-reset")
    if limit == 0:
        log.debug("ignoring X-RateLimit-Limit of 0")
        limit = None
    if reset is not None and reset < 365 * 86400:
        log.debug("ignoring X-RateLimit-Reset that is not a Unix time: %r", reset)
        reset = None
    retry_after, retry_at = _retry_after(headers)
    return RateHeaders(limit=limit, remaining=remaining, reset=None if reset is None else float(reset),
                       date=_date(headers), retry_after=retry_after, retry_at=retry_at)
