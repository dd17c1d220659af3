"""``PlumClient``: the front door.  It resolves keywords and environment, then builds the resources.

The governed requests themselves live one layer down, in :class:`~plumasync._base_client.BaseClient`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from ._base_client import BaseClient
from .cachestats import CacheStats
from .calllogs import CallLogs
from .config import (
    AUTH_BUDGET,
    DEFAULT_CALLLOGS_URL,
    DEFAULT_VOICETRENDS_URL,
    Budget,
    CachePolicy,
    Format,
    StalePolicy,
    Tool,
    check_base_url,
    consumers,
)
from .engine import Engine, check_engine
from .errors import ConfigurationError, register_secret
from .governor.clock import Clock, SystemClock
from .governor.stores.base import MemoryStore, Store
from .reportcache import check_stale
from .retry import RetryPolicy
from .storeurl import parse_store_url
from .voicetrends import VoiceTrends

__all__ = ["PlumClient", "open_store"]


def open_store(spec: str | Store | None, clock: Clock) -> Store:
    """Build a store from ``None`` (memory), a store URL (see :mod:`plumasync.storeurl`) or a Store."""
    if isinstance(spec, Store):
        return spec
    kind = "memory" if spec is None else parse_store_url(spec).kind  # one parser for every store URL
    if spec is None or kind == "memory":
        return MemoryStore(clock)
    if kind == "sqlite":
        from .governor.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(spec, clock=clock)
    from .governor.stores.redis import RedisStore

    return RedisStore.from_url(spec, clock=clock)


def _engine(engine: object, http_client: httpx.AsyncClient | None) -> Engine:
    """The engine keyword checked: a known name, installed, and not competing with a user's client."""
    checked = check_engine(engine)
    if http_client is not None and checked != "auto":
        raise ConfigurationError(
            f"engine={checked!r} chooses plumasync's own connection pool; with http_client= your client sends "
            "(for aiohttp, pass an httpx_aiohttp.HttpxAiohttpClient)")
    return checked


class PlumClient(BaseClient):
    """An async client for VoiceTrends and the DEV Call Logs API, governed by one rate-limit budget.

    Every keyword falls back to an environment variable: ``PLUM_LOGIN``, ``PLUM_PASSWORD``,
    ``PLUM_VOICETRENDS_URL``, ``PLUM_CALLLOGS_URL``, ``PLUM_STORE``.  Use it as an async context manager
    (or call :meth:`aclose`).

    Budgets are kept per group: VoiceTrends ``auth`` (15 per 15 minutes), VoiceTrends ``data`` and Call
    Logs ``calllogs`` (``budget``, default 150 per 15 minutes) until the server's headers say otherwise.
    A user's ``http_client`` is sent through (its mounts and hooks apply) and is never closed by us.
    ``timeout`` (seconds, > 0) bounds each attempt in all: sending it and reading the whole body.
    ``cache`` (:class:`CachePolicy`) and ``stale`` (:class:`StalePolicy`, True or False) set how
    VoiceTrends results are cached, shared by the workers of one store, and served stale.

    Several programs on one account can share its budget fairly: ``consumer="dashboard"`` names this
    client's share, ``consumer_weights={"dashboard": 2, "harvest-eu": 1}`` weighs the named consumers.
    While several want more than a window holds, each gets its weighted share and lends what it does not
    use (:mod:`plumasync.governor.core.shares`); :meth:`as_consumer` charges a block of calls to another.

    ``engine`` (env ``PLUM_ENGINE``) picks the HTTP implementation of our own pool: ``"httpx"`` (httpx's
    own, asyncio and trio), ``"aiohttp"`` (asyncio only; ``pip install "plumasync[aiohttp]"``: several
    times less CPU per request) or ``"auto"`` (the default: aiohttp when installed and the loop is
    asyncio, httpx otherwise).  It is chosen when the client opens; :attr:`engine` then says which runs.
    The governor, deadline and retries are the same on both.  Tests mocking httpx with respx need
    ``engine="httpx"`` (respx patches httpx's own transport only).
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
        format: Format = "json",
        timeout: float = 60.0,
        cache: CachePolicy | None = None,
        stale: StalePolicy | bool | None = None,
        consumer: str | None = None,
        consumer_weights: Mapping[str, float] | None = None,
        env: Mapping[str, str] | None = None,
        engine: Engine | None = None,
    ) -> None:
        env = os.environ if env is None else env
        login = login if login is not None else env.get("PLUM_LOGIN")
        password = password if password is not None else env.get("PLUM_PASSWORD")
        if not login or password is None:
            raise ConfigurationError(
                "no Plum credentials: pass login= and password=, or set PLUM_LOGIN and PLUM_PASSWORD")
        register_secret(password, login)  # never in an exception's text, in any encoding
        if tool not in ("dev", "insight", "fuseplus"):
            raise ConfigurationError(f"tool must be 'dev', 'insight' or 'fuseplus', got {tool!r}")
        if format not in ("json", "xml"):
            raise ConfigurationError(f"format must be 'json' or 'xml', got {format!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if budget is not None and not isinstance(budget, Budget):
            raise ConfigurationError("budget must be a plumasync.Budget")
        own, named = consumers(consumer, consumer_weights)
        if engine is None:  # PLUM_ENGINE chooses for our own pool: not for a user's client
            engine = "auto" if http_client is not None else env.get("PLUM_ENGINE") or "auto"  # type: ignore[assignment]
        engine = _engine(engine, http_client)
        self.cache_policy = cache if cache is not None else CachePolicy()
        #: The default stale policy of VoiceTrends calls (``stale=``; None: raise or wait as usual).
        self.stale_policy = check_stale(StalePolicy.resolve(stale), self.cache_policy)
        self.timezone = timezone
        clock = clock or SystemClock()
        super().__init__(
            login=login, password=password, tool=tool, format=format, clock=clock,
            voicetrends_url=check_base_url(
                voicetrends_url or env.get("PLUM_VOICETRENDS_URL") or DEFAULT_VOICETRENDS_URL, "voicetrends_url"),
            calllogs_url=check_base_url(
                calllogs_url or env.get("PLUM_CALLLOGS_URL") or DEFAULT_CALLLOGS_URL, "calllogs_url"),
            store=open_store(store if store is not None else env.get("PLUM_STORE"), clock),
            retry=retry or RetryPolicy(), budget=budget or Budget(), auth_budget=auth_budget or AUTH_BUDGET,
            http_client=http_client, timeout=timeout, consumer=own, consumers=named, engine=engine,
        )
        self._voicetrends: VoiceTrends | None = None
        self._calllogs: CallLogs | None = None

    @property
    def voicetrends(self) -> VoiceTrends:
        """The VoiceTrends resources (authentication is automatic)."""
        if self._voicetrends is None:
            self._voicetrends = VoiceTrends(self, cache=self.cache_policy, timezone=self.timezone,
                                            stale=self.stale_policy)
        return self._voicetrends

    @property
    def calllogs(self) -> CallLogs:
        """The DEV Call Logs resources, pagination and harvest."""
        if self._calllogs is None:
            self._calllogs = CallLogs(self)
        return self._calllogs

    def cache_stats(self) -> CacheStats:
        """This process's VoiceTrends cache counts: hits, misses, coalesced, stale served, upstream requests.

        Beside :meth:`budget_snapshot`; :meth:`fetch_cache_stats` sums them over every worker.  No I/O.
        """
        return self.voicetrends.cache_stats

    async def fetch_cache_stats(self) -> CacheStats:
        """The VoiceTrends cache counts summed over every worker sharing this client's store.

        Each worker adds its counts to the store in batches (every few seconds, every few hundred calls
        and when it closes); this one flushes its own first.  Reads the store; costs no request.
        """
        return await self.voicetrends.fetch_cache_stats()

    async def aclose(self) -> None:
        """Stop VoiceTrends' background refreshes, flush its statistics, then close as :class:`BaseClient`."""
        if self._voicetrends is not None:
            await self._voicetrends.aclose()
        await super().aclose()

    def __repr__(self) -> str:
        return (f"PlumClient(account={self.account!r}, voicetrends_url={self.voicetrends_url!r}, "
                f"calllogs_url={self.calllogs_url!r}, store={self.store!r})")
