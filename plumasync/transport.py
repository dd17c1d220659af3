"""``GovernedTransport``: an httpx transport that asks the governor before every request.

It wraps the real transport (``httpx.AsyncHTTPTransport`` by default, or the user's):
acquire a permit → send → observe the response's ``X-RateLimit-*`` and ``Date`` headers.  Per-request
hints travel in ``request.extensions["plumasync"]``::

    {"group": "<group key>", "lane": Lane.BULK, "max_wait": 2.0}

A request without a group hint is routed by ``router(request)``; when that returns None the request is
sent ungoverned (it is not a Plum API call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx

from .governor import Governor, Lane, parse_rate_headers
from .governor.state import RateHeaders

__all__ = ["EXTENSION", "GovernedTransport", "hints"]

#: The key of ``request.extensions`` that carries plumasync's per-request hints.
EXTENSION = "plumasync"

_NO_HEADERS = RateHeaders()


def hints(group: str, lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None) -> dict[str, Any]:
    """The ``extensions`` entry for a governed request."""
    return {EXTENSION: {"group": group, "lane": lane, "max_wait": max_wait}}


class GovernedTransport(httpx.AsyncBaseTransport):
    """Wraps ``inner`` so that every governed request is admitted by ``governor`` first.

    Every attempt (retries included) passes through here, so every attempt is counted.  A request that
    fails without a response is observed as "status None" (the server may have counted it).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        governor: Governor,
        router: Callable[[httpx.Request], str | None] | None = None,
    ) -> None:
        self.inner = inner
        self.governor = governor
        self.router = router

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hint = request.extensions.get(EXTENSION)
        group = hint.get("group") if hint else (self.router(request) if self.router else None)
        if group is None:
            return await self.inner.handle_async_request(request)
        lane = Lane(hint.get("lane", Lane.INTERACTIVE)) if hint else Lane.INTERACTIVE
        max_wait = hint.get("max_wait") if hint else None
        permit = await self.governor.acquire(group, lane, max_wait)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.governor.observe(permit, None, _NO_HEADERS)
            raise
        with anyio.CancelScope(shield=True):
            await self.governor.observe(permit, response.status_code, parse_rate_headers(response.headers))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
