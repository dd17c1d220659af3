"""Engines: the HTTP implementation under plumasync's own connection pool.

* ``"httpx"``: httpx's own transport (httpcore).  Runs on asyncio and on trio.
* ``"aiohttp"``: httpx's API over an aiohttp connection pool (the ``plumasync[aiohttp]`` extra, which
  installs ``httpx-aiohttp``).  asyncio only.  Several times less CPU per request than httpcore, which
  matters where the rate limit does not bind (a known-generous account, a mirror).
* ``"auto"`` (the default): aiohttp when the extra is installed and the running event loop is asyncio,
  httpx otherwise.

The engine is chosen when the client opens (``async with``) or, at the latest, before its first
request, because only then is the event loop known.  Whichever engine runs, the governed transport wraps
it: the same admission, deadline, truncation check and error mapping apply, and every engine's
failures reach the retry policy as ``httpx.TransportError`` (so as the same retried transport faults).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ssl
from typing import Literal

import httpx

from .errors import ConfigurationError

__all__ = ["ENGINES", "INSTALL_AIOHTTP", "Engine", "EngineTransport", "check_engine", "resolve_engine"]

#: The engine names ``PlumClient(engine=...)`` and ``--engine`` accept.
Engine = Literal["auto", "httpx", "aiohttp"]
ENGINES: tuple[Engine, ...] = ("auto", "httpx", "aiohttp")
#: How to get the aiohttp engine.
INSTALL_AIOHTTP = 'pip install "plumasync[aiohttp]"'


@functools.cache
def aiohttp_installed() -> bool:
    """True when the ``plumasync[aiohttp]`` extra (``httpx-aiohttp``, hence aiohttp) is importable."""
    return importlib.util.find_spec("httpx_aiohttp") is not None and importlib.util.find_spec("aiohttp") is not None


def check_engine(engine: object) -> Engine:
    """``engine`` if it can work here, else a :class:`ConfigurationError` (raised before any request).

    What only the running event loop can tell (trio cannot run aiohttp) is checked by
    :func:`resolve_engine` when the client opens.
    """
    if engine not in ENGINES:
        raise ConfigurationError(f"engine must be 'auto', 'httpx' or 'aiohttp', got {engine!r}")
    if engine == "aiohttp" and not aiohttp_installed():
        raise ConfigurationError(f"engine='aiohttp' needs the aiohttp extra: {INSTALL_AIOHTTP}")
    return engine


def _on_asyncio() -> bool:
    """True when called from a running asyncio event loop (trio runs none)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def resolve_engine(engine: Engine) -> Literal["httpx", "aiohttp"]:
    """The engine that runs for ``engine`` on the current event loop (call it from async code)."""
    if engine == "httpx":
        return "httpx"
    asyncio_loop = _on_asyncio()
    if engine == "aiohttp":
        if not asyncio_loop:
            raise ConfigurationError("engine='aiohttp' runs on asyncio only: under trio use engine='httpx' "
                                     "(or 'auto', which picks it)")
        return "aiohttp"
    return "aiohttp" if asyncio_loop and aiohttp_installed() else "httpx"


class EngineTransport(httpx.AsyncBaseTransport):
    """plumasync's own connection pool, on the engine resolved when it opens.

    ``limits`` and ``verify`` apply to either engine.  :meth:`open` is idempotent; a request opens it if
    the client did not.
    """

    def __init__(self, engine: Engine, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        self.requested: Engine = engine
        #: ``"httpx"`` or ``"aiohttp"`` once open; None before.
        self.name: Literal["httpx", "aiohttp"] | None = None
        self._verify = verify
        self._limits = limits
        self._inner: httpx.AsyncBaseTransport | None = None

    def open(self) -> Literal["httpx", "aiohttp"]:
        """Resolve the engine on the running event loop and build its pool (no I/O); return its name."""
        if self.name is None:
            name = resolve_engine(self.requested)
            self._inner = _aiohttp_transport(self._verify, self._limits) if name == "aiohttp" else \
                httpx.AsyncHTTPTransport(verify=self._verify, limits=self._limits, retries=0)
            self.name = name
        return self.name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self.open()
        assert self._inner is not None
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


def _aiohttp_transport(verify: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    from ._aiohttp_engine import AiohttpEngine  # imports aiohttp: only when that engine runs

    return AiohttpEngine(verify, limits)
