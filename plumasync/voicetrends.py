"""The VoiceTrends resources: automatic authentication, the six data resources, coalescing and caching.

Authentication (``POST /api/auth``) returns temporary credentials that stay valid for 24 hours after
their last use; it has its own budget of 15 per 15-minute window.  So credentials are fetched once,
kept in the client's store (shared with other workers on a SQLite or Redis store) and reused; a 401 on a
data call refreshes them once, however many callers hit it at the same moment.

Every data resource costs one request of the ``data`` group (150 per 15 minutes, shared by all six), and
every repeated request is budget taken from everyone else.  So identical concurrent calls share one
request (single-flight), and results are cached (:class:`CachePolicy`): a period entirely in the past
cannot change and is kept long; one that touches today is kept briefly.  The cache lives in the client's
store, so workers on a SQLite or Redis store share it, and a miss costs one request for the whole fleet
(a lease on the entry: :mod:`plumasync.reportcache`, :mod:`plumasync.fleetcache`).  A cache hit touches
neither the governor nor the network.  A :class:`~plumasync.StalePolicy` answers with the last cached
result when the budget or the upstream cannot give a fresh one in time.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import anyio
import attrs
import httpx

from . import validation, wire
from ._base_client import BaseClient
from .cachestats import CacheStats
from .config import CachePolicy, DateLike, Format, StalePolicy
from .errors import AuthenticationError, ResponseParseError
from .governor import Lane
from .models.voicetrends import (
    EventsReport,
    GeographicReport,
    PathReport,
    PerformanceReport,
    ProfileReport,
    TemporaryCredentials,
    TrendReport,
    VolumeReport,
)
from .reportcache import Call, ReportCache

__all__ = ["CacheStats", "VoiceTrends"]  # CacheStats: re-exported from .cachestats

log = logging.getLogger("plumasync")

R = TypeVar("R")
TR = TypeVar("TR", bound=TrendReport)

#: Temporary credentials live 24 h after their last use; we replace them a little sooner.
CREDENTIALS_TTL = 23 * 3600.0
#: How long one worker may hold the "I am authenticating" lease before others step in.
AUTH_LEASE_TTL = 60.0


class VoiceTrends:
    """VoiceTrends analytics for one account (``plum.voicetrends``)."""

    def __init__(self, client: BaseClient, *, cache: CachePolicy, timezone: str,
                 stale: StalePolicy | None = None) -> None:
        self._client = client
        self._tz = ZoneInfo(timezone)
        self._creds: TemporaryCredentials | None = None
        self._lock = anyio.Lock()
        scope = f"{client.groups['auth']}|{client.tool}"
        self._value_name = f"vt-credentials|{scope}"
        self._lease_name = f"vt-auth|{scope}"
        # "vt-entry" (not the older raw-body "vt-cache"): entries now carry their fetch time.
        self._cache_prefix = f"vt-entry|{client.groups['data']}"
        self.cache_policy = cache
        self._reports = ReportCache(client.store, client.clock, cache, stale, str(client.groups["data"]))
        #: Number of POST /api/auth requests this client made.
        self.authentications = 0

    @property
    def cache_stats(self) -> CacheStats:
        """This process's cache hits, misses, coalesced calls, stale answers and upstream requests (a copy)."""
        return attrs.evolve(self._reports.counters.local)

    async def fetch_cache_stats(self) -> CacheStats:
        """The same counts summed over every worker sharing the store (each flushes in batches, every
        few seconds and on close; this one first).  Reads the store; costs no request."""
        return await self._reports.counters.fleet()

    async def aclose(self) -> None:
        """Stop background refreshes and flush the statistics (called by the client's ``aclose``)."""
        await self._reports.aclose()

    # -- authentication -------------------------------------------------------------------------------------

    async def authenticate(self) -> TemporaryCredentials:
        """``POST /api/auth``: exchange the tool login for temporary credentials.

        Costs one request of the ``auth`` group (15 per 15 minutes).  Normally automatic: call it only to
        check credentials up front.  Raises :class:`~plumasync.AuthenticationError` for a bad login.
        """
        self.authentications += 1
        response = await self._client.request(
            "voicetrends", "auth", "POST", "auth", data=self._client.auth_form(), fmt="json",
        )
        try:
            return wire.parse_credentials(response.content, "json")
        except ResponseParseError as exc:
            reason = "invalid JSON" if "invalid JSON" in str(exc) else "unexpected shape"
        # Raised outside the except block, with no snippet, cause or context: the body may hold the
        # temporary password, and no exception may carry a credential.
        raise ResponseParseError(
            f'{reason}: expected {{"login": ..., "password": ...}} '
            f"(HTTP {response.status_code}, {len(response.content)} bytes)", endpoint="auth")

    async def credentials(self) -> TemporaryCredentials:
        """The temporary credentials in use, authenticating (once, single-flight) when there are none."""
        creds = self._creds
        if creds is not None:
            return creds
        async with self._lock:
            if self._creds is None:
                self._creds = await self._obtain()
            return self._creds

    async def _obtain(self) -> TemporaryCredentials:
        store = self._client.store
        owner = uuid.uuid4().hex
        while True:
            shared = _decode(await store.get_value(self._value_name))
            if shared is not None:
                return shared
            if await store.claim(self._lease_name, owner, AUTH_LEASE_TTL):
                try:
                    shared = _decode(await store.get_value(self._value_name))
                    if shared is not None:
                        return shared
                    creds = await self.authenticate()
                    await store.set_value(self._value_name, _encode(creds), CREDENTIALS_TTL)
                    return creds
                finally:
                    with anyio.CancelScope(shield=True):
                        await store.release(self._lease_name, owner)
            # Another worker is authenticating for this account: wait for its credentials.
            await self._client.clock.sleep(0.2)

    async def _refresh(self, stale: TemporaryCredentials) -> None:
        async with self._lock:
            if self._creds is not None and self._creds != stale:
                return  # somebody refreshed while we waited
            self._creds = None
            store = self._client.store
            if _decode(await store.get_value(self._value_name)) == stale:
                await store.delete_value(self._value_name)
            log.info("VoiceTrends credentials were refused; authenticating again")
            self._creds = await self._obtain()

    # -- data -----------------------------------------------------------------------------------------------

    def _ttl(self, last: str) -> float:
        today = datetime.fromtimestamp(self._client.clock.now(), self._tz).date()
        ends = date(int(last[:4]), int(last[4:6]), int(last[6:8]))
        return self.cache_policy.past if ends < today else self.cache_policy.today

    async def _fetch(self, path: str, parse: Callable[[bytes, Format], R], *, fmt: Format | None, lane: Lane,
                     max_wait: float | None, last: str, cache: bool = True,
                     stale: StalePolicy | bool | None = None) -> R:
        fmt = fmt or self._client.format
        ttl = self._ttl(last) if self.cache_policy.enabled else 0.0
        call = Call(name=f"{self._cache_prefix}|{fmt}|{path}", fmt=fmt, lane=lane, max_wait=max_wait, ttl=ttl,
                    read=cache, stale=stale)

        async def upstream(lane: Lane, max_wait: float | None) -> bytes:
            for attempt in (1, 2):
                creds = await self.credentials()
                try:
                    response = await self._client.request(
                        "voicetrends", "data", "GET", path, auth=httpx.BasicAuth(creds.login, creds.password),
                        fmt=fmt, lane=lane, max_wait=max_wait,
                    )
                except AuthenticationError:
                    if attempt == 2:
                        raise
                    await self._refresh(creds)
                    continue
                return response.content
            raise AssertionError("unreachable")  # pragma: no cover

        return await self._reports.get(call, parse, upstream)

    async def _trend(self, resource: str, cls: type[TR], start: DateLike, end: DateLike, period: str, phone: str,
                     fmt: Format | None, lane: Lane, max_wait: float | None, cache: bool,
                     stale: StalePolicy | bool | None) -> TR:
        first, last = validation.vt_range(start, end)
        path = f"{resource}/{first}/{last}/{validation.period(period)}/{validation.phone(phone)}"
        return await self._fetch(path, lambda body, f: wire.parse_trend(body, f, cls, self._tz, endpoint=resource),
                                 fmt=fmt, lane=lane, max_wait=max_wait, last=last, cache=cache, stale=stale)

    async def volume(self, start: DateLike, end: DateLike, period: str = "day", phone: str = "ALL", *,
                     format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                     max_wait: float | None = None, cache: bool = True,
                     stale: StalePolicy | bool | None = None) -> VolumeReport:
        """Call Volume (``GET /api/volume/{start}/{end}/{period}/{phone}``): calls, minutes, transfers.

        ``start``/``end``: dates (inclusive; date, datetime or ``"YYYYMMDD"``); ``period``: day, week or
        month; ``phone``: one number or ``"ALL"``.  Costs one ``data`` request, none on a cache hit
        (``cache=False`` bypasses the cache for this call).  ``lane``/``max_wait``: see the governor.
        ``stale``: a :class:`~plumasync.StalePolicy` (or True / False; default: the client's) to answer
        with the last cached result, marked ``report.stale``, rather than wait past ``max_wait`` or fail.
        The other five resources take the same keywords.
        """
        return await self._trend("volume", VolumeReport, start, end, period, phone, format, lane, max_wait, cache,
                                 stale)

    async def events(self, start: DateLike, end: DateLike, period: str = "day", phone: str = "ALL", *,
                     format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                     max_wait: float | None = None, cache: bool = True,
                     stale: StalePolicy | bool | None = None) -> EventsReport:
        """Event Tracker (``GET /api/events/...``): log events, loops and form items.  One ``data`` request."""
        return await self._trend("events", EventsReport, start, end, period, phone, format, lane, max_wait, cache,
                                 stale)

    async def performance(self, start: DateLike, end: DateLike, period: str = "day", phone: str = "ALL", *,
                          format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                          max_wait: float | None = None, cache: bool = True,
                          stale: StalePolicy | bool | None = None) -> PerformanceReport:
        """Performance (``GET /api/performance/...``): JS and fetch errors, page load.  One ``data`` request."""
        return await self._trend("performance", PerformanceReport, start, end, period, phone, format, lane,
                                 max_wait, cache, stale)

    async def profile(self, start: DateLike, end: DateLike, period: str = "day", phone: str = "ALL", *,
                      format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                      max_wait: float | None = None, cache: bool = True,
                      stale: StalePolicy | bool | None = None) -> ProfileReport:
        """Caller Profile (``GET /api/profile/{start}/{end}/{period}/{phone}``): calls and unique callers.

        One ``data`` request.
        """
        return await self._trend("profile", ProfileReport, start, end, period, phone, format, lane, max_wait,
                                 cache, stale)

    async def geographic(self, start: DateLike, end: DateLike, phone: str = "ALL", *, format: Format | None = None,
                         lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None,
                         cache: bool = True, stale: StalePolicy | bool | None = None) -> GeographicReport:
        """Geographic (``GET /api/profile/{start}/{end}/{phone}``, as documented): calls per US state and abroad.

        One ``data`` request.
        """
        first, last = validation.vt_range(start, end)
        path = f"profile/{first}/{last}/{validation.phone(phone)}"
        return await self._fetch(path, lambda body, f: wire.parse_geographic(body, f), fmt=format, lane=lane,
                                 max_wait=max_wait, last=last, cache=cache, stale=stale)

    async def path(self, start: DateLike, end: DateLike, phone: str = "ALL", *, format: Format | None = None,
                   lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None, cache: bool = True,
                   stale: StalePolicy | bool | None = None) -> PathReport:
        """Diagnostic Flow (``GET /api/path/{start}/{end}/{phone}``): form-item nodes per application.

        One ``data`` request.
        """
        first, last = validation.vt_range(start, end)
        path = f"path/{first}/{last}/{validation.phone(phone)}"
        return await self._fetch(path, lambda body, f: wire.parse_path(body, f), fmt=format, lane=lane,
                                 max_wait=max_wait, last=last, cache=cache, stale=stale)


def _encode(creds: TemporaryCredentials) -> bytes:
    return json.dumps({"login": creds.login, "password": creds.password}).encode()


def _decode(raw: bytes | None) -> TemporaryCredentials | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return TemporaryCredentials(login=str(data["login"]), password=str(data["password"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable shared VoiceTrends credentials")
        return None

