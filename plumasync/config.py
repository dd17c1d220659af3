"""Configuration types and defaults: everything a caller can set, in one place.

The client's front door (:mod:`plumasync.client`) resolves its keywords and environment variables into
these; the lower layers only read them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from .envelope import Format
from .errors import ConfigurationError
from .governor.core.model import Policy
from .governor.core.shares import Consumer, check_name, check_weight

__all__ = [
    "AUTH_BUDGET",
    "DEFAULT_CALLLOGS_URL",
    "DEFAULT_VOICETRENDS_URL",
    "Api",
    "Budget",
    "CachePolicy",
    "DateLike",
    "Format",
    "StalePolicy",
    "TimeLike",
    "Tool",
    "account_id",
    "check_base_url",
    "consumers",
]

def _positive(name: str) -> Any:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ConfigurationError(f"Budget {name} must be a positive number, got {value!r}")

    return check


_BUDGET_TEXT = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smhSMH]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


@attrs.frozen
class Budget:
    """A group's default budget, used until the server's rate-limit headers say otherwise.

    ``limit`` requests per ``window`` seconds (Plum: 150 per 900 for data, 15 per 900 for
    authentication).  ``reserve`` requests of each window are kept for the interactive lane (default:
    10% of ``limit``, rounded up).  ``margin`` seconds are waited past each reset for the server's clock
    resolution and skew.
    """

    limit: int = attrs.field(default=150, validator=_positive("limit"))
    window: float = attrs.field(default=900.0, validator=_positive("window"))
    reserve: int | None = None
    margin: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.limit, int):
            raise ConfigurationError(f"Budget limit must be an integer, got {self.limit!r}")
        if self.reserve is not None and not (isinstance(self.reserve, int) and 0 <= self.reserve < self.limit):
            raise ConfigurationError(f"Budget reserve must be an integer in [0, limit), got {self.reserve!r}")
        if not (isinstance(self.margin, (int, float)) and 0 <= self.margin < self.window):
            raise ConfigurationError(f"Budget margin must be in [0, window), got {self.margin!r}")

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"150/900"`` (LIMIT requests per WINDOW seconds) → ``Budget(150, 900.0)``.

        The window may carry a unit: ``150/900s``, ``150/15m``, ``1000/1h``.  Anything else (``"150"``,
        ``"0/900"``, ``"abc"``) raises :class:`~plumasync.errors.ConfigurationError` (also a ValueError),
        so a command line can refuse it before any request.  Costs nothing.
        """
        match = _BUDGET_TEXT.fullmatch(text.strip())
        if match is None:
            raise ConfigurationError(
                f"budget {text!r} is not LIMIT/WINDOW: give requests per window in seconds, e.g. 150/900 "
                "(or 150/15m)")
        limit, amount, unit = match.groups()
        window = float(amount) * _UNITS[unit.lower()]
        # The reset margin must stay inside the window: a one-second margin would forbid short windows.
        return cls(limit=int(limit), window=window, margin=min(1.0, window / 10))

    def policy(self) -> Policy:
        """The sans-I/O policy of this budget."""
        reserve = self.reserve if self.reserve is not None else math.ceil(self.limit * 0.10)
        return Policy(limit=self.limit, window=float(self.window), reserve=min(reserve, self.limit - 1),
                      margin=float(self.margin))


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
    single-flight, in the process and across the workers of a shared store (every call then costs a
    request: useful only to measure what coalescing saves).

    ``keep_stale``: how long the last good result is kept after it stops being fresh, so that a
    :class:`StalePolicy` can answer with it (0: not kept).  ``refresh_ahead``: a hit on an entry this
    close to the end of its freshness renews it in the background, in the interactive lane, so readers
    never wait (0: off; asyncio only, one worker of the fleet renews).
    """

    past: float = 24 * 3600.0
    today: float = 60.0
    enabled: bool = True
    coalesce: bool = True
    keep_stale: float = 24 * 3600.0
    refresh_ahead: float = 0.0

    def __attrs_post_init__(self) -> None:
        for name in ("past", "today", "keep_stale", "refresh_ahead"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigurationError(f"CachePolicy {name} must be a number of seconds >= 0, got {value!r}")


@attrs.frozen
class StalePolicy:
    """When a VoiceTrends call answers with the last cached result instead of waiting or failing.

    The result comes back with ``report.stale = True`` and its ``report.fetched_at``.
    ``on_rate_limit``: the budget cannot admit the call within its ``max_wait``
    (:class:`~plumasync.RateLimitExceeded`).  ``on_error``: the upstream still fails after the retry
    policy (5xx, 429, timeouts and transport errors; never a refused login or a bad request).
    ``max_age``: the oldest result served, in seconds since it was fetched (None: whatever the cache
    keeps, see ``CachePolicy.keep_stale``).  Without a cached result the error is raised as usual.
    Serving a stale result costs no request.
    """

    on_rate_limit: bool = True
    on_error: bool = True
    max_age: float | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.on_rate_limit, bool) or not isinstance(self.on_error, bool):
            raise ConfigurationError("StalePolicy on_rate_limit and on_error must be True or False")
        if not (self.on_rate_limit or self.on_error):
            raise ConfigurationError("StalePolicy serves nothing with on_rate_limit and on_error both False: "
                                     "pass stale=False to turn stale answers off")
        age = self.max_age
        if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float))
                                or not 0 < age < math.inf):
            raise ConfigurationError(f"StalePolicy max_age must be a positive number of seconds, got {age!r}")

    @staticmethod
    def resolve(value: object, default: StalePolicy | None = None) -> StalePolicy | None:
        """A ``stale=`` argument as a policy: None → ``default``, False → off, True → ``StalePolicy()``."""
        if value is None:
            return default
        if value is True:
            return StalePolicy()
        if value is False:
            return None
        if isinstance(value, StalePolicy):
            return value
        raise ConfigurationError(f"stale must be a StalePolicy, True, False or None, got {value!r}")


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


def consumers(consumer: str | None, weights: Mapping[str, float] | None) -> tuple[Consumer | None, dict[str, Consumer]]:
    """The client's own consumer and every named one, from ``consumer=`` and ``consumer_weights=``.

    Weights must be finite numbers > 0 under non-empty names, and ``consumer`` one of those names (without
    weights, any non-empty name, of weight 1); anything else raises
    :class:`~plumasync.errors.ConfigurationError` before any request.  Costs nothing.
    """
    if weights is None:
        return (None if consumer is None else Consumer(consumer)), {}
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigurationError(f"consumer_weights must be a non-empty mapping of names to weights, got {weights!r}")
    named = {check_name(name): Consumer(name, check_weight(name, weight)) for name, weight in weights.items()}
    if consumer is not None and check_name(consumer) not in named:
        raise ConfigurationError(f"consumer {consumer!r} is not one of consumer_weights: {sorted(named)}")
    return (None if consumer is None else named[consumer]), named
