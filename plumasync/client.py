"""``PlumClient``: one governed HTTP client for both Plum APIs."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from .errors import (
    ConfigurationError,
    PlumError,
    RateLimitExceeded,
    TransportError,
    basic_credentials,
    error_for_status,
    register_secret,
)
from .governor import Budget, Clock, GroupKey, GroupSnapshot, Lane, SystemClock
from .governor.governor import Governor
from .governor.store import MemoryStore, Store
from .retry import RetryPolicy, is_retryable
from .storeurl import parse_store_url
from .transport import GovernedTransport, current_drain, hints

if TYPE_CHECKING:
    from .calllogs import CallLogs
    from .voicetrends import CachePolicy, CacheStats, VoiceTrends

log = logging.getLogger("plumasync")

__all__ = ["DEFAULT_CALLLOGS_URL", "DEFAULT_VOICETRENDS_URL", "PlumClient", "open_store"]

DEFAULT_VOICETRENDS_URL = "https://voicetrends.plumvoice.com/api/"
DEFAULT_CALLLOGS_URL = "https://hosting.plumvoice.com/ws/"
#: VoiceTrends authentication has its own budget: 15 per 15-minute window.
AUTH_BUDGET = Budget(limit=15, window=900.0, reserve=0)

Api = Literal["voicetrends", "calllogs"]
Tool = Literal["dev", "insight", "fuseplus"]


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


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one costs ~30 ms, every client can share it."""
    return httpx.create_ssl_context()


def open_store(spec: str | Store | None, clock: Clock) -> Store:
    """Build a store from ``None`` (memory), a store URL (see :mod:`plumasync.storeurl`) or a Store."""
    if isinstance(spec, Store):
        return spec
    kind = "memory" if spec is None else parse_store_url(spec).kind  # one parser for every store URL
    if spec is None or kind == "memory":
        return MemoryStore(clock)
    if kind == "sqlite":
        from .governor.sqlite import SQLiteStore

        return SQLiteStore.from_url(spec, clock=clock)
    from .governor.redis import RedisStore

    return RedisStore.from_url(spec, clock=clock)


class PlumClient:
    """An async client for VoiceTrends and the DEV Call Logs API, governed by one rate-limit budget.

    Every keyword falls back to an environment variable: ``PLUM_LOGIN``, ``PLUM_PASSWORD``,
    ``PLUM_VOICETRENDS_URL``, ``PLUM_CALLLOGS_URL``, ``PLUM_STORE``.  Use it as an async context manager
    (or call :meth:`aclose`).

    Budgets are kept per group: VoiceTrends ``auth`` (15 per 15 minutes), VoiceTrends ``data`` and Call
    Logs ``calllogs`` (``budget``, default 150 per 15 minutes) until the server's headers say otherwise.
    ``timeout`` (seconds, > 0) bounds each attempt in all: sending it and reading the whole body.
    """

    def __init__(
        self,
        *,
        login: str | None = None,
        password: str | None = None,
        tool: Tool = "dev",
        voicetrends_url: str | None = None,
        calllogs_url: str | None = None,
        budget: Budget | None = None,
        auth_budget: Budget | None = None,
        store: str | Store | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        timezone: str = "America/New_York",
        format: Literal["json", "xml"] = "json",
        timeout: float = 60.0,
        cache: CachePolicy | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._login = login if login is not None else env.get("PLUM_LOGIN")
        self._password = password if password is not None else env.get("PLUM_PASSWORD")
        if not self._login or self._password is None:
            raise ConfigurationError(
                "no Plum credentials: pass login= and password=, or set PLUM_LOGIN and PLUM_PASSWORD")
        register_secret(self._password, self._login)  # never in an exception's text, in any encoding
        if tool not in ("dev", "insight", "fuseplus"):
            raise ConfigurationError(f"tool must be 'dev', 'insight' or 'fuseplus', got {tool!r}")
        if format not in ("json", "xml"):
            raise ConfigurationError(f"format must be 'json' or 'xml', got {format!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if budget is not None and not isinstance(budget, Budget):
            raise ConfigurationError("budget must be a plumasync.Budget")
        from .voicetrends import CachePolicy

        self.cache_policy: CachePolicy = cache if cache is not None else CachePolicy()
        self.tool: Tool = tool
        self.format: Literal["json", "xml"] = format
        self.timezone = timezone
        self.voicetrends_url = check_base_url(
            voicetrends_url or env.get("PLUM_VOICETRENDS_URL") or DEFAULT_VOICETRENDS_URL, "voicetrends_url")
        self.calllogs_url = check_base_url(
            calllogs_url or env.get("PLUM_CALLLOGS_URL") or DEFAULT_CALLLOGS_URL, "calllogs_url")
        self.clock: Clock = clock or SystemClock()
        self.retry_policy = retry or RetryPolicy()
        self.store: Store = open_store(store if store is not None else env.get("PLUM_STORE"), self.clock)
        self.governor = Governor(store=self.store, clock=self.clock)
        self.account = account_id(self._login)
        budget = budget or Budget()
        vt_host = urlsplit(self.voicetrends_url).netloc
        cl_host = urlsplit(self.calllogs_url).netloc
        self.groups: dict[str, str] = {
            "auth": self.governor.register(GroupKey(vt_host, self.account, "auth"), auth_budget or AUTH_BUDGET),
            "data": self.governor.register(GroupKey(vt_host, self.account, "data"), budget),
            "calllogs": self.governor.register(GroupKey(cl_host, self.account, "calllogs"), budget),
        }
        self._owns_http = http_client is None
        if http_client is None:
            inner: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(
                verify=_ssl_context(), limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
                retries=0)
            self.http = httpx.AsyncClient(transport=GovernedTransport(inner, self.governor, deadline=timeout),
                                          timeout=timeout)
        else:
            # httpx has no public setter for a client's transport: wrap the one the user configured.
            http_client._transport = GovernedTransport(http_client._transport, self.governor, deadline=timeout)
            self.http = http_client
        self._voicetrends: VoiceTrends | None = None
        self._calllogs: CallLogs | None = None

    # -- resources ------------------------------------------------------------------------------------------

    @property
    def voicetrends(self) -> VoiceTrends:
        """The VoiceTrends resources (authentication is automatic)."""
        if self._voicetrends is None:
            from .voicetrends import VoiceTrends

            self._voicetrends = VoiceTrends(self)
        return self._voicetrends

    @property
    def calllogs(self) -> CallLogs:
        """The DEV Call Logs resources, pagination and harvest."""
        if self._calllogs is None:
            from .calllogs import CallLogs

            self._calllogs = CallLogs(self)
        return self._calllogs

    # -- governed requests ----------------------------------------------------------------------------------

    def dev_auth(self) -> httpx.BasicAuth:
        """HTTP Basic auth with the DEV login (Call Logs)."""
        assert self._login is not None and self._password is not None
        return httpx.BasicAuth(self._login, self._password)

    def auth_form(self) -> dict[str, str]:
        """The VoiceTrends authentication form (tool, login, password)."""
        assert self._login is not None and self._password is not None
        return {"tool": self.tool, "login": self._login, "password": self._password}

    async def request(
        self,
        api: Api,
        group: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        fmt: Literal["json", "xml"] | None = None,
        lane: Lane = Lane.INTERACTIVE,
        max_wait: float | None = None,
        error_text: Callable[[bytes, str], str] | None = None,
    ) -> httpx.Response:
        """Send one governed, retried request and return a successful response.

        ``group`` is ``"auth"``, ``"data"`` or ``"calllogs"``.  Costs one request of that group's budget
        per attempt.  Raises the typed error of :mod:`plumasync.errors` for error statuses (after the
        retry policy for 429, 5xx and transport errors).
        """
        base = self.voicetrends_url if api == "voicetrends" else self.calllogs_url
        url = base + path.lstrip("/")
        fmt = fmt or self.format
        headers = {"Accept": "application/xml" if fmt == "xml" else "application/json"}
        extensions = hints(self.groups[group], lane, max_wait)

        async def attempt() -> httpx.Response:
            request = self.http.build_request(method, url, params=params, data=data, headers=headers,
                                              extensions=extensions)
            try:
                response = await self.http.send(request, auth=auth)
            except httpx.TransportError as exc:
                raise TransportError(type(exc).__name__ + (f": {exc}" if str(exc) else ""),
                                     method=method, url=str(request.url)) from None
            if response.status_code >= 400:
                temporary = basic_credentials(response.request.headers.get("authorization"))
                if temporary is not None and temporary[0] != self._login:  # VoiceTrends' temporary pair
                    register_secret(temporary[1], temporary[0])
                    register_secret(temporary[0])
                text = error_text(response.content, fmt) if error_text else ""
                error = error_for_status(method=method, url=str(request.url), status=response.status_code,
                                         error=text)
                if isinstance(error, RateLimitExceeded):
                    # The governor has observed this 429 and paused the group: say until when.
                    snap = self.governor.peek(self.groups[group])
                    error.retry_at = snap.paused_until if snap is not None else None
                raise error
            return response

        # The first attempt runs without tenacity: the common case pays nothing for the retry policy.
        policy = self.retry_policy
        try:
            return await attempt()
        except PlumError as exc:
            if not is_retryable(exc) or policy.gives_up_after(exc):
                raise
            first = exc
        log.info("retrying after %s", type(first).__name__)
        drain = current_drain()  # a stopping harvest abandons its retries instead of waiting for them
        sleep = self.clock.sleep if drain is None else functools.partial(drain.sleep, self.clock)
        await sleep(policy.first_wait(first))
        async for retry in policy.retrying(self.clock, prior=first, sleep=sleep):
            with retry:
                return await attempt()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- state and lifecycle --------------------------------------------------------------------------------

    def budget_snapshot(self) -> dict[str, GroupSnapshot]:
        """Each budget group's state (limit, remaining, reset_at, in_flight, waiters), keyed by group name.

        Exact for the in-memory store; for shared stores, the state as of the last
        :meth:`fetch_budget_snapshot`.  Costs no request.
        """
        snaps = self.governor.snapshot_nowait()
        return {name: snaps[key] for name, key in self.groups.items() if key in snaps}

    def cache_stats(self) -> CacheStats:
        """VoiceTrends cache hits, misses and coalesced calls (beside :meth:`budget_snapshot`)."""
        return self.voicetrends.cache_stats

    async def fetch_budget_snapshot(self) -> dict[str, GroupSnapshot]:
        """Each group's state read from the store (shared stores included).  Costs no request."""
        snaps = await self.governor.snapshot()
        return {name: snaps[key] for name, key in self.groups.items()}

    async def aclose(self) -> None:
        """Close the HTTP client (if this client created it) and the store."""
        if self._owns_http:
            await self.http.aclose()
        await self.store.aclose()

    async def __aenter__(self) -> PlumClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (f"PlumClient(account={self.account!r}, voicetrends_url={self.voicetrends_url!r}, "
                f"calllogs_url={self.calllogs_url!r}, store={self.store!r})")
