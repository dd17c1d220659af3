"""The lower layer of :class:`~plumasync.PlumClient`: one governed, retried request, and what it needs.

The resources (:mod:`plumasync.voicetrends`, :mod:`plumasync.calllogs`) are written against
:class:`BaseClient` only: they never import the front door (:mod:`plumasync.client`) that builds them.
:class:`BaseClient` holds the credentials, the clock, the budget store and its governor, the budget
groups and the HTTP client, and sends requests through them: build → retry policy → governed transport →
typed error.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .config import Api, Budget, Format, Tool, account_id
from .engine import Engine, EngineTransport
from .errors import (
    ConfigurationError,
    RateLimitExceeded,
    TransportError,
    basic_credentials,
    error_for_status,
    register_secret,
)
from .governor import GroupKey, GroupSnapshot, Lane
from .governor.admission import Governor
from .governor.clock import Clock
from .governor.core.shares import Consumer
from .governor.stores.base import Store
from .retry import RetryPolicy
from .transport import ClientTransport, GovernedTransport, current_drain, hints, paused_until
from .wire import error_text

__all__ = ["BaseClient"]

log = logging.getLogger("plumasync")

_Client = TypeVar("_Client", bound="BaseClient")
#: The consumer :meth:`BaseClient.as_consumer` charges requests to, in this task and the tasks it starts.
_CONSUMER: ContextVar[tuple[BaseClient, Consumer] | None] = ContextVar("plumasync_consumer", default=None)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process: building one costs ~30 ms, every client can share it."""
    return httpx.create_ssl_context()


def _http_client(governor: Governor, user: httpx.AsyncClient | None, timeout: float,
                 engine: Engine) -> tuple[httpx.AsyncClient, EngineTransport | None]:
    """Our HTTP client: governed, sending either on its own pool (on ``engine``) or through the user's client.

    A user's client is wrapped from the outside (its mounts, proxies, TLS settings and event hooks keep
    working, and it is never closed by us), not by replacing its private transport.  ``timeout`` is also
    each attempt's overall deadline (sending and reading the whole body).  Also returns our own pool, whose
    engine is chosen when the client opens (None: the user's client sends).
    """
    if user is None:
        pool = EngineTransport(engine, verify=_ssl_context(),
                               limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
        governed = GovernedTransport(pool, governor, deadline=timeout)
        return httpx.AsyncClient(transport=governed, timeout=timeout), pool
    return httpx.AsyncClient(transport=GovernedTransport(ClientTransport(user), governor, deadline=timeout),
                             timeout=user.timeout, headers=user.headers), None


class BaseClient:
    """Governed requests to both Plum APIs for one account, and the state they share.

    Built by :class:`~plumasync.PlumClient`, which resolves its keywords and environment first.  Budget
    groups: VoiceTrends ``auth`` and ``data``, Call Logs ``calllogs``.
    """

    def __init__(self, *, login: str, password: str, tool: Tool, voicetrends_url: str, calllogs_url: str,
                 format: Format, clock: Clock, store: Store, retry: RetryPolicy, budget: Budget,
                 auth_budget: Budget, http_client: httpx.AsyncClient | None, timeout: float,
                 consumer: Consumer | None = None, consumers: Mapping[str, Consumer] | None = None,
                 engine: Engine = "auto") -> None:
        self._login = login
        self._password = password
        self.tool: Tool = tool
        self.format: Format = format
        self.voicetrends_url = voicetrends_url
        self.calllogs_url = calllogs_url
        self.clock = clock
        self.retry_policy = retry
        self.store = store
        self.governor = Governor(store=store, clock=clock)
        self.account = account_id(login)
        #: Whose share of the budget this client's requests are charged to (None: nobody's).
        self.consumer = consumer
        self.consumers: dict[str, Consumer] = dict(consumers or {})
        vt_host = urlsplit(voicetrends_url).netloc
        cl_host = urlsplit(calllogs_url).netloc
        self.groups: dict[str, GroupKey] = {
            "auth": self.governor.register(GroupKey(vt_host, self.account, "auth"), auth_budget.policy()),
            "data": self.governor.register(GroupKey(vt_host, self.account, "data"), budget.policy()),
            "calllogs": self.governor.register(GroupKey(cl_host, self.account, "calllogs"), budget.policy()),
        }
        self.http, self._pool = _http_client(self.governor, http_client, timeout, engine)

    @property
    def engine(self) -> str | None:
        """The engine sending our requests: ``"httpx"`` or ``"aiohttp"`` once the client is open (``async
        with``, or its first request); ``None`` before, and when a user's ``http_client`` sends."""
        return None if self._pool is None else self._pool.name

    def open_engine(self) -> None:
        """Choose the engine on the running event loop (no I/O, no budget): ``engine="aiohttp"`` under trio
        raises :class:`~plumasync.errors.ConfigurationError` here, before any request."""
        if self._pool is not None and self._pool.name is None:
            self._pool.open()

    # -- credentials ----------------------------------------------------------------------------------------

    def dev_auth(self) -> httpx.BasicAuth:
        """HTTP Basic auth with the DEV login (Call Logs)."""
        return httpx.BasicAuth(self._login, self._password)

    def auth_form(self) -> dict[str, str]:
        """The VoiceTrends authentication form (tool, login, password)."""
        return {"tool": self.tool, "login": self._login, "password": self._password}

    # -- governed requests ----------------------------------------------------------------------------------

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
        fmt: Format | None = None,
        lane: Lane = Lane.INTERACTIVE,
        max_wait: float | None = None,
    ) -> httpx.Response:
        """Send one governed, retried request and return a successful response.

        ``group`` is ``"auth"``, ``"data"`` or ``"calllogs"``.  Costs one request of that group's budget
        per attempt.  Raises the typed error of :mod:`plumasync.errors` for error statuses (after the
        retry policy for 429, 5xx and transport errors).
        """
        self.open_engine()  # a client used without ``async with`` chooses its engine before any budget
        url = (self.voicetrends_url if api == "voicetrends" else self.calllogs_url) + path.lstrip("/")
        headers = {"Accept": "application/xml" if (fmt or self.format) == "xml" else "application/json"}
        scoped = _CONSUMER.get()
        consumer = scoped[1] if scoped is not None and scoped[0] is self else self.consumer
        extensions = hints(self.groups[group], lane, max_wait, consumer)

        async def attempt() -> httpx.Response:
            request = self.http.build_request(method, url, params=params, data=data, headers=headers,
                                              extensions=extensions)
            try:
                response = await self.http.send(request, auth=auth)
            except httpx.TransportError as exc:
                raise TransportError(type(exc).__name__ + (f": {exc}" if str(exc) else ""),
                                     method=method, url=str(request.url)) from None
            if response.status_code >= 400:
                self._register_temporary(response.request)
                error = error_for_status(method=method, url=str(request.url), status=response.status_code,
                                         error=error_text(response.content))
                if isinstance(error, RateLimitExceeded):
                    error.retry_at = paused_until(response)  # recorded by the transport with the 429
                raise error
            return response

        drain = current_drain()  # a stopping harvest abandons its retries instead of waiting for them
        sleep = self.clock.sleep if drain is None else functools.partial(drain.sleep, self.clock)
        return await self.retry_policy.call(attempt, sleep=sleep, what=f"{method} {url}")

    def _register_temporary(self, request: httpx.Request) -> None:
        """VoiceTrends' temporary credentials, once seen on a failed request, are masked like the login's."""
        temporary = basic_credentials(request.headers.get("authorization"))
        if temporary is not None and temporary[0] != self._login:
            register_secret(temporary[1], temporary[0])
            register_secret(temporary[0])

    @contextmanager
    def as_consumer(self, name: str) -> Iterator[Consumer]:
        """Charge the requests made inside (in this task and the tasks it starts) to consumer ``name``'s share.

        With ``consumer_weights``, ``name`` must be one of them; without, any non-empty name (weight 1).  A
        :class:`~plumasync.errors.ConfigurationError` otherwise, before any request.  Costs nothing.
        """
        if self.consumers:
            if name not in self.consumers:
                raise ConfigurationError(f"consumer {name!r} is not one of consumer_weights: {sorted(self.consumers)}")
            consumer = self.consumers[name]
        else:
            consumer = Consumer(name)
        token = _CONSUMER.set((self, consumer))
        try:
            yield consumer
        finally:
            _CONSUMER.reset(token)

    # -- state and lifecycle --------------------------------------------------------------------------------

    def budget_snapshot(self) -> dict[str, GroupSnapshot]:
        """Each budget group's state (limit, remaining, reset_at, in_flight, waiters), keyed by group name.

        Exact for the in-memory store; for shared stores, the state as of the last
        :meth:`fetch_budget_snapshot`.  Costs no request.
        """
        snaps = self.governor.snapshot_nowait()
        return {name: snaps[key] for name, key in self.groups.items() if key in snaps}

    async def fetch_budget_snapshot(self) -> dict[str, GroupSnapshot]:
        """Each group's state read from the store (shared stores included).  Costs no request."""
        snaps = await self.governor.snapshot()
        return {name: snaps[key] for name, key in self.groups.items()}

    async def aclose(self) -> None:
        """Close our HTTP client (never a client the user passed in) and the store."""
        await self.http.aclose()
        await self.store.aclose()

    async def __aenter__(self: _Client) -> _Client:
        self.open_engine()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
