"""The aiohttp engine: httpx-aiohttp's transport on a session made for plumasync, its failures httpx's.

Imported only when that engine runs (it imports aiohttp).  httpx-aiohttp maps most aiohttp errors to
httpx's, but a refused or reset connection comes out as ``ConnectTimeout`` and a few (a bare
``OSError``, an ``asyncio`` timeout while reading the body) not at all; here each becomes the error httpcore raises
for the same fault, so that the retry policy and the messages are the same on both engines.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["AiohttpEngine"]


class AiohttpEngine(AiohttpTransport):
    """An aiohttp connection pool under httpx's API: ``limits`` and ``verify`` as for httpx's own.

    The session is made on the event loop at the first request.  It keeps no cookies (httpx's client
    above keeps them, and a second jar would send them twice) and never resends a request on its own.
    """

    def __init__(self, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits, client=self._session)
        self._verify = verify

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._verify, limit=self.limits.max_connections or 0,
                                         keepalive_timeout=self.limits.keepalive_expiry or 15.0)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        # aiohttp sends an idempotent request a second time when its connection drops (reset, or closed
        # before the answer): one governed attempt would cost two requests of the budget, and only one
        # would be counted.  The retry policy above retries, through the governor.  (No public switch:
        # aiohttp's own test client turns it off the same way.)
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors():
            response = await super().handle_async_request(request)
        response.stream = _Body(response.stream)  # type: ignore[arg-type]
        return response


class _Body(httpx.AsyncByteStream):
    """A response body whose read errors are httpx's."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _as_httpx_errors():
            await self._stream.aclose()


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """The httpx error httpcore raises for the fault aiohttp reports (httpx attaches the request)."""
    try:
        yield
    except httpx.TransportError as exc:
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientConnectorError):  # refused, unreachable: not a timeout
            raise httpx.ConnectError(str(cause)) from cause
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            raise httpx.RemoteProtocolError(str(cause) or "server disconnected without sending a response") \
                from cause
        if isinstance(exc, httpx.ConnectTimeout) and not isinstance(cause, asyncio.TimeoutError):
            raise httpx.ReadError(str(cause)) from cause  # a connection reset, say: its fallback, not a timeout
        raise
    except (aiohttp.ClientError, OSError) as exc:
        raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
    except asyncio.TimeoutError as exc:
        raise httpx.ReadTimeout("timed out") from exc
