"""``GovernedTransport``: an httpx transport that asks the governor before every request.

It wraps the real transport (``httpx.AsyncHTTPTransport`` by default, or the user's):
acquire a permit → send → observe the response's ``X-RateLimit-*`` and ``Date`` headers.  Per-request
hints travel in ``request.extensions["plumasync"]``::

    {"group": "<group key>", "lane": Lane.BULK, "max_wait": 2.0, "consumer": Consumer("harvest-eu", 1)}

A request without the hint is sent ungoverned (it is not a Plum API call).  A response that paused its
group (a 429) says until when in ``response.extensions["plumasync"]["paused_until"]``, so the layer above
never asks the governor again.

Every governed attempt has an overall **deadline** (``deadline`` seconds, real time, from the moment the
permit is granted): sending the request *and reading the whole body* must fit in it.  httpx's own
timeouts bound each read, so a server trickling a byte every few seconds would never trip them; the
deadline turns such an attempt into a transport error (``httpx.ReadTimeout``), which the retry policy
retries.  It is checked as the response head and each piece of the body arrive, not by a cancel scope
per request (one costs more than the rest of the governor): a trickle is cut at its first piece after
the deadline, which httpx's read timeout bounds.  A body cut short (fewer bytes than ``Content-Length``,
or a close-delimited body that ends mid-document) is a transport error too, never a parse error: the
next attempt may get it whole.

The governor's decisions cost no ``await`` on the in-memory store when nothing waits (see
:meth:`Governor.try_acquire`); each response's headers are read in one pass.

A :class:`Drain` lets a batch of requests (a harvest) stop gracefully: requests still waiting for a
permit, or for a retry's backoff, are abandoned at once and cost nothing; requests already sent finish.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import anyio
import httpx

from .envelope import looks_truncated
from .errors import Abandoned
from .governor import Governor, GroupKey, Lane, Permit
from .governor.clock import Clock
from .governor.core.headers import RATE_HEADER_SLOTS, collect_headers, rate_headers
from .governor.core.model import RateHeaders
from .governor.core.shares import Consumer

__all__ = [
    "DEFAULT_DEADLINE",
    "EXTENSION",
    "ClientTransport",
    "Drain",
    "GovernedTransport",
    "current_drain",
    "hints",
    "paused_until",
]

#: Seconds one governed attempt may take in all (send + whole body) unless the client says otherwise.
DEFAULT_DEADLINE = 60.0

#: The key of ``request.extensions`` that carries plumasync's per-request hints.
EXTENSION = "plumasync"

_NO_HEADERS = RateHeaders()


def hints(group: GroupKey, lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None,
          consumer: Consumer | None = None) -> dict[str, Any]:
    """The ``extensions`` entry for a governed request (``consumer``: whose share it is charged to)."""
    return {EXTENSION: {"group": group, "lane": lane, "max_wait": max_wait, "consumer": consumer}}


def paused_until(response: httpx.Response) -> float | None:
    """Until when (clock time) the response's group is paused, as the governor recorded it; None: not paused."""
    facts = response.extensions.get(EXTENSION)
    return None if facts is None else facts.get("paused_until")


class Drain:
    """Graceful stop for the requests made inside :meth:`active`, in this task and the tasks it starts.

    After :meth:`stop`, a request waiting for the governor's permit or for a retry's backoff raises
    :class:`Abandoned` at once (its reservation is given back), and none starts; a request already sent
    runs to its response, so the budget it spent is not wasted.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._waiting: set[anyio.CancelScope] = set()

    def stop(self) -> None:
        """Abandon every wait now and every later one (idempotent; call it from the event loop)."""
        self.stopping = True
        for scope in self._waiting:
            scope.cancel()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Wrap a wait that :meth:`stop` may cut short: it then raises :class:`Abandoned`."""
        if self.stopping:
            raise Abandoned
        with anyio.CancelScope() as scope:
            self._waiting.add(scope)
            try:
                yield
            finally:
                self._waiting.discard(scope)
        if scope.cancelled_caught:
            raise Abandoned

    async def sleep(self, clock: Clock, seconds: float) -> None:
        """``clock.sleep(seconds)``, abandoned on :meth:`stop`."""
        with self.waiting():
            await clock.sleep(seconds)

    @contextmanager
    def active(self) -> Iterator[Drain]:
        """Apply this drain to the requests made in the block (and in tasks started from it)."""
        token = _DRAIN.set(self)
        try:
            yield self
        finally:
            _DRAIN.reset(token)


_DRAIN: ContextVar[Drain | None] = ContextVar("plumasync_drain", default=None)


def current_drain() -> Drain | None:
    """The :class:`Drain` applied to requests made here, if any."""
    return _DRAIN.get()


class GovernedTransport(httpx.AsyncBaseTransport):
    """Wraps ``inner`` so that every governed request is admitted by ``governor`` first.

    Every attempt (retries included) passes through here, so every attempt is counted.  A request that
    fails without a response is observed as "status None" (the server may have counted it).  The body of
    a governed response is read here, within ``deadline`` seconds of sending (see the module docstring).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, governor: Governor,
                 deadline: float = DEFAULT_DEADLINE) -> None:
        self.inner = inner
        self.governor = governor
        self.deadline = deadline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hint = request.extensions.get(EXTENSION)
        group = hint.get("group") if hint else None
        if hint is None or group is None:
            return await self.inner.handle_async_request(request)
        lane = hint.get("lane", Lane.INTERACTIVE)
        if lane.__class__ is not Lane:
            lane = Lane(lane)
        consumer = hint.get("consumer")
        governor = self.governor
        drain = _DRAIN.get()
        if drain is not None and drain.stopping:
            raise Abandoned
        permit = governor.try_acquire(group, lane, consumer)  # no await, no cancel scope: nobody waits ahead
        if permit is None:
            permit = await self._wait_for_permit(group, lane, hint.get("max_wait"), drain, consumer)
        try:
            response = await self._send_and_read(request)
            rate, close_delimited = _read_headers(response.headers.raw)
            if close_delimited and response.status_code < 300 and \
                    looks_truncated(response.content, request.headers.get("accept", "")):
                raise httpx.RemoteProtocolError("connection closed before the end of the body (truncated)",
                                                request=request)
        except BaseException:
            await self._observe(permit, None, _NO_HEADERS)
            raise
        if governor.immediate:  # recorded without awaiting: nothing can cancel it half-way
            pause = governor.observe_nowait(permit, response.status_code, rate)
        else:
            pause = await self._observe(permit, response.status_code, rate)
        if response.status_code == 429 and pause is not None:
            response.extensions[EXTENSION] = {"paused_until": pause}
        return response

    async def _wait_for_permit(self, group: GroupKey, lane: Lane, max_wait: float | None,
                               drain: Drain | None, consumer: Consumer | None) -> Permit:
        """Wait in line for the governor's permit, under the current :class:`Drain` if any."""
        if drain is None:
            return await self.governor.acquire(group, lane, max_wait, consumer)
        with drain.waiting():
            return await self.governor.acquire(group, lane, max_wait, consumer)

    async def _observe(self, permit: Permit, status: int | None, rate: RateHeaders) -> float | None:
        """Tell the governor.  The outcome must be recorded even when the task is being cancelled: a store
        that does I/O is awaited under a shield; the memory store records it without awaiting."""
        if self.governor.immediate:
            return self.governor.observe_nowait(permit, status, rate)
        with anyio.CancelScope(shield=True):
            pause = await self.governor.observe(permit, status, rate)
        return pause

    async def _send_and_read(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read its whole body within the deadline (see the module docstring)."""
        at = time.monotonic() + self.deadline
        response = await self.inner.handle_async_request(request)
        try:
            if time.monotonic() > at:
                raise self._late(request)
            response.stream = _Deadline(cast(httpx.AsyncByteStream, response.stream), at, self, request)
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _late(self, request: httpx.Request) -> httpx.ReadTimeout:
        return httpx.ReadTimeout(f"no complete response within the {self.deadline:g} s deadline", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ClientTransport(httpx.AsyncBaseTransport):
    """Sends through a user's own ``httpx.AsyncClient``, so that its mounts, proxies, TLS settings and event
    hooks apply to every request; the governed transport wraps this one.  Never closes the user's client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # auth=None: the request already carries ours, the user's client must not add its own.
        response = await self.client.send(request, stream=True, auth=None, follow_redirects=False)
        return httpx.Response(response.status_code, headers=response.headers, stream=response.stream,
                              extensions=response.extensions)

    async def aclose(self) -> None:
        """Nothing to close: the user's client belongs to the user."""


#: What one pass over a response's headers collects: the rate-limit facts, then the body's framing.
_SLOTS = RATE_HEADER_SLOTS.extend(b"content-length", b"transfer-encoding")


def _read_headers(raw: list[tuple[bytes, bytes]]) -> tuple[RateHeaders, bool]:
    """One pass: the response's rate-limit facts, and whether only the connection's close marks the end of
    its body (no length, not chunked)."""
    v = collect_headers(raw, _SLOTS)
    close_delimited = v[5] is None and (v[6] is None or b"chunked" not in v[6].lower())
    return rate_headers(v[0], v[1], v[2], v[3], v[4]), close_delimited


class _Deadline(httpx.AsyncByteStream):
    """A response body whose every piece must arrive before the attempt's deadline (``at``, monotonic)."""

    __slots__ = ("_at", "_owner", "_request", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, at: float, owner: GovernedTransport,
                 request: httpx.Request) -> None:
        self._stream, self._at, self._owner, self._request = stream, at, owner, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            if time.monotonic() > self._at:
                raise self._owner._late(self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()
