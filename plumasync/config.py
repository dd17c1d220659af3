"""Configuration types and defaults: everything a caller can set, in one place, with no behaviour.

The client's front door (:mod:`plumasync.client`) resolves its keywords and environment variables into
these; the lower layers only read them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import date, datetime
from typing import Literal
from urllib.parse import urlsplit

import attrs

from .envelope import Format
from .errors import ConfigurationError
from .governor.admission import Budget

__all__ = [
    "AUTH_BUDGET",
    "DEFAULT_CALLLOGS_URL",
    "DEFAULT_VOICETRENDS_URL",
    "Api",
    "CachePolicy",
    "DateLike",
    "Format",
    "TimeLike",
    "Tool",
    "account_id",
    "check_base_url",
]

DEFAULT_VOICETRENDS_URL = "https://voicetrends.plumvoice.com/api/"
DEFAULT_CALLLOGS_URL = "https://hosting.plumvoice.com/ws/"
#: VoiceTrends authentication has its own budget: 15 per 15-minute window.
AUTH_BUDGET = Budget(limit=15, window=900.0, reserve=0)

#: Which of Plum's two APIs a request goes to.
Api = Literal["voicetrends", "calllogs"]
#: The VoiceTrends tool whose login authenticates.
Tool = Literal["dev", "insight", "fuseplus"]
#: A Call Logs instant: an aware datetime, a date (its midnight UTC) or Unix seconds.
TimeLike = datetime | date | int | float
#: A VoiceTrends day: a date, a datetime (its date), ``"YYYYMMDD"`` or an int of that form.
DateLike = date | datetime | str | int


@attrs.frozen
class CachePolicy:
    """How long VoiceTrends results are kept (seconds of the client's clock).

    ``past``: results whose period ended before today (in the account's time zone); ``today``: results
    whose period includes today.  ``enabled=False`` turns the cache off; ``coalesce=False`` turns off
    single-flight (every call then costs a request: useful only to measure what coalescing saves).
    """

    past: float = 24 * 3600.0
    today: float = 60.0
    enabled: bool = True
    coalesce: bool = True

    def __attrs_post_init__(self) -> None:
        if not (self.past >= 0 and self.today >= 0):
            raise ConfigurationError("CachePolicy durations must be >= 0")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, name: str) -> str:
    """Validate a base URL: https, or plain http only for loopback.  Returns it with a trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an absolute https:// URL, got {url!r}")
    if parts.username or parts.password:
        raise ConfigurationError(f"{name} must not carry credentials; pass login= and password=")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} uses plain http to {parts.hostname}: credentials would cross the network in clear; "
            "use https (plain http is allowed only for loopback addresses such as the sandbox)"
        )
    return url if url.endswith("/") else url + "/"


def account_id(login: str) -> str:
    """A stable, non-reversible account name for budget keys, logs and stores (never the login)."""
    return hashlib.sha256(login.encode()).hexdigest()[:12]
