"""The DEV Call Logs resources: ``calls/logs``, ``calls/log``, ``calls/sessions``, ``calls/errors``.

Authentication is HTTP Basic with the DEV login itself.  Every page or log costs one request of the
``calllogs`` group.  Listings paginate with ``offset``/``limit``; the page size defaults to the API's
maximum (10,000) so that a listing spends as few requests as possible.  Call logs are kept for 5 days,
session logs for a year.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import attrs

from . import validation, wire
from ._base_client import BaseClient
from .config import Format, TimeLike
from .governor import Lane, Usage
from .governor.clock import Clock
from .harvest import Harvest
from .harvest_plan import budget_now
from .models.calllogs import CallLogDetail, CallLogEntry, CallLogPage
from .models.loglines import ErrorPage, SessionPage
from .sinks import Sink
from .validation import MAX_PAGE_SIZE, RETENTION_SECONDS

__all__ = ["MAX_PAGE_SIZE", "RETENTION_SECONDS", "CallLogs", "LogListing", "RetentionWarning", "before_retention"]

log = logging.getLogger("plumasync")

P = TypeVar("P", CallLogPage, SessionPage, ErrorPage)
LP = TypeVar("LP", SessionPage, ErrorPage)
Item = TypeVar("Item")


def before_retention(start: float, now: float) -> bool:
    """True when a calls/logs range starting at ``start`` (Unix seconds) reaches past the 5-day retention."""
    return start < now - RETENTION_SECONDS


class RetentionWarning(UserWarning):
    """A calls/logs range starts before the 5-day retention: older calls will not be listed."""


@attrs.frozen
class LogListing:
    """A checked ``calls/logs`` query (from :meth:`CallLogs.listing`): its pages, one request each.

    Iterating it yields every call of the range, page after page, until the listing's total is reached.
    """

    _calllogs: CallLogs
    path: str
    params: dict[str, str | int]
    format: Format | None
    lane: Lane
    max_wait: float | None

    async def page(self, offset: int) -> CallLogPage:
        """The page at ``offset``.  Costs one ``calllogs`` request."""
        params = {**self.params, "offset": validation.offset(offset)}
        return await self._calllogs._logs_page(self.path, params, self.format, self.lane, self.max_wait)

    def __aiter__(self) -> AsyncIterator[CallLogEntry]:
        return _paginate(self.page, lambda p: p.entries)


class CallLogs:
    """The DEV Call Logs API for one account (``plum.calllogs``)."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    @property
    def clock(self) -> Clock:
        """The client's clock: the time the budget is counted in."""
        return self._client.clock

    def usage(self) -> Usage:
        """Requests this process sent to the Call Logs API so far, and 429 answers among them (a copy)."""
        return self._client.governor.usage(self._client.groups["calllogs"])

    def eta(self, requests: int, lane: Lane = Lane.BULK) -> float:
        """The least clock time ``requests`` more Call Logs requests can take, from the window arithmetic."""
        return self._client.governor.eta(self._client.groups["calllogs"], requests, lane)

    def budget_now(self) -> tuple[int, int, float]:
        """``(remaining now, per window, window seconds)`` of the Call Logs budget for the bulk lane, as
        the governor knows it without I/O (no request)."""
        key = self._client.groups["calllogs"]
        return budget_now(self._client.governor.policy(key), self._client.governor.peek(key))

    async def _get(self, path: str, params: dict[str, str | int] | None, fmt: Format, lane: Lane,
                   max_wait: float | None) -> tuple[bytes, dict[str, Any]]:
        """One governed GET; returns the body and the context a failure envelope's error names."""
        response = await self._client.request(
            "calllogs", "calllogs", "GET", path, params=params, auth=self._client.dev_auth(),
            fmt=fmt, lane=lane, max_wait=max_wait,
        )
        return response.content, {"method": "GET", "url": str(response.request.url), "status": response.status_code}

    def _listing(self, service: str, start: TimeLike, end: TimeLike, number: str | None, offset: int,
                 limit: int) -> tuple[str, dict[str, str | int]]:
        first, last = validation.cl_range(start, end)
        params: dict[str, str | int] = {"offset": validation.offset(offset), "limit": validation.page_size(limit)}
        canonical = validation.number(number)
        if canonical is not None:
            params["number"] = canonical
        return f"calls/{service}/{first}/{last}", params

    def _check_retention(self, start: TimeLike, stacklevel: int = 3) -> None:
        if before_retention(validation.cl_timestamp(start, "start"), self._client.clock.now()):
            warnings.warn(
                "calls/logs keeps only the previous 5 days: calls before that are not listed",
                RetentionWarning, stacklevel=stacklevel,
            )

    # -- calls/logs -----------------------------------------------------------------------------------------

    def listing(self, start: TimeLike, end: TimeLike, *, number: str | None = None, page_size: int = MAX_PAGE_SIZE,
                format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                max_wait: float | None = None) -> LogListing:
        """The ``calls/logs`` query for ``[start, end)``, checked now (before any request); costs nothing.

        Warns :class:`RetentionWarning` once, here, when the range starts before the 5-day retention.
        Fetch its pages with :meth:`LogListing.page` or iterate it (one ``calllogs`` request per page).
        """
        return self._new_listing(start, end, number, page_size, format, lane, max_wait)

    def _new_listing(self, start: TimeLike, end: TimeLike, number: str | None, page_size: int,
                     format: Format | None, lane: Lane, max_wait: float | None) -> LogListing:
        path, params = self._listing("logs", start, end, number, 0, page_size)
        self._check_retention(start, stacklevel=4)  # once, attributed to the caller's line (not once per page)
        return LogListing(self, path, params, format, lane, max_wait)

    async def logs_page(self, start: TimeLike, end: TimeLike, *, number: str | None = None, offset: int = 0,
                        limit: int = MAX_PAGE_SIZE, format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                        max_wait: float | None = None) -> CallLogPage:
        """One page of ``GET /ws/calls/logs/{start}/{end}``: calls starting in ``[start, end)``.

        ``start``/``end``: aware datetimes or Unix seconds; ``number``: only calls to that number;
        ``limit``: 1..10000.  Costs one ``calllogs`` request.
        """
        path, params = self._listing("logs", start, end, number, offset, limit)
        self._check_retention(start)
        return await self._logs_page(path, params, format, lane, max_wait)

    async def _logs_page(self, path: str, params: dict[str, str | int], format: Format | None, lane: Lane,
                         max_wait: float | None) -> CallLogPage:
        fmt = format or self._client.format
        body, ctx = await self._get(path, params, fmt, lane, max_wait)
        return wire.parse_log_page(body, fmt, int(params["offset"]), int(params["limit"]), **ctx)

    def logs(self, start: TimeLike, end: TimeLike, *, number: str | None = None, page_size: int = MAX_PAGE_SIZE,
             format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
             max_wait: float | None = None) -> AsyncIterator[CallLogEntry]:
        """Every call in ``[start, end)``, page after page, until ``total_logs`` is reached.

        Arguments are checked now (before any request); each page costs one ``calllogs`` request.
        """
        return aiter(self._new_listing(start, end, number, page_size, format, lane, max_wait))

    async def log(self, log_id: int | str, *, format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                  max_wait: float | None = None) -> CallLogDetail:
        """``GET /ws/calls/log/{log_id}``: one call's log (``log_id`` from :meth:`logs`).

        Costs one ``calllogs`` request.
        """
        ident = validation.log_id(log_id)
        fmt: Format = format or self._client.format
        body, ctx = await self._get(f"calls/log/{ident}", None, fmt, lane, max_wait)
        return wire.parse_log_detail(body, fmt, **ctx)

    # -- calls/sessions and calls/errors --------------------------------------------------------------------

    async def _line_page(self, service: str, parse: Callable[..., P], start: TimeLike, end: TimeLike,
                         number: str | None, offset: int, limit: int, format: Format | None, lane: Lane,
                         max_wait: float | None) -> P:
        """One page of ``calls/sessions`` or ``calls/errors`` (they differ only in name and line parser)."""
        path, params = self._listing(service, start, end, number, offset, limit)
        fmt = format or self._client.format
        body, ctx = await self._get(path, params, fmt, lane, max_wait)
        return parse(body, fmt, int(params["offset"]), int(params["limit"]), **ctx)

    def _line_listing(self, service: str, parse: Callable[..., LP], start: TimeLike,
                      end: TimeLike, number: str | None, page_size: int, format: Format | None, lane: Lane,
                      max_wait: float | None) -> AsyncIterator[object]:
        self._listing(service, start, end, number, 0, page_size)  # checked now, before any request

        def page(offset: int) -> Awaitable[LP]:
            return self._line_page(service, parse, start, end, number, offset, page_size, format, lane, max_wait)

        return _paginate(page, lambda p: p.lines)

    async def sessions_page(self, start: TimeLike, end: TimeLike, *, number: str | None = None, offset: int = 0,
                            limit: int = MAX_PAGE_SIZE, format: Format | None = None,
                            lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None) -> SessionPage:
        """One page of ``GET /ws/calls/sessions/{start}/{end}``: session-log lines, parsed.

        Session logs are kept for a year.  Costs one ``calllogs`` request.
        """
        return await self._line_page("sessions", wire.parse_session_page, start, end, number, offset, limit,
                                     format, lane, max_wait)

    def sessions(self, start: TimeLike, end: TimeLike, *, number: str | None = None,
                 page_size: int = MAX_PAGE_SIZE, format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                 max_wait: float | None = None) -> AsyncIterator[object]:
        """Every session line in the range, page after page (one ``calllogs`` request per page)."""
        return self._line_listing("sessions", wire.parse_session_page, start, end, number, page_size, format, lane,
                                  max_wait)

    async def errors_page(self, start: TimeLike, end: TimeLike, *, number: str | None = None, offset: int = 0,
                          limit: int = MAX_PAGE_SIZE, format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
                          max_wait: float | None = None) -> ErrorPage:
        """One page of ``GET /ws/calls/errors/{start}/{end}``: error-log lines, parsed.

        Costs one ``calllogs`` request.
        """
        return await self._line_page("errors", wire.parse_error_page, start, end, number, offset, limit, format,
                                     lane, max_wait)

    def errors(self, start: TimeLike, end: TimeLike, *, number: str | None = None, page_size: int = MAX_PAGE_SIZE,
               format: Format | None = None, lane: Lane = Lane.INTERACTIVE,
               max_wait: float | None = None) -> AsyncIterator[object]:
        """Every error line in the range, page after page (one ``calllogs`` request per page)."""
        return self._line_listing("errors", wire.parse_error_page, start, end, number, page_size, format, lane,
                                  max_wait)

    # -- harvest --------------------------------------------------------------------------------------------

    def harvest(self, start: TimeLike, end: TimeLike, *, number: str | None = None, concurrency: int = 8,
                sink: Sink | str | os.PathLike[str] | None = None, jsonl: str | os.PathLike[str] | None = None,
                page_size: int = MAX_PAGE_SIZE, format: Format | None = None,
                retention: float = RETENTION_SECONDS) -> Harvest:
        """List every call in ``[start, end)`` and fetch each one's log, concurrently, in the bulk lane.

        Arguments are checked now, before any request.  See :class:`plumasync.harvest.Harvest` for what
        each option does and what the harvest costs.  ``retention``: seconds the server keeps a log
        (default 5 days); a log older than that is counted as expired and costs no request.
        """
        return Harvest(self, start, end, number=number, concurrency=concurrency, sink=sink, jsonl=jsonl,
                       page_size=page_size, format=format, retention=retention)


async def _paginate(fetch: Callable[[int], Awaitable[P]], items: Callable[[P], tuple[Item, ...]]
                    ) -> AsyncIterator[Item]:
    """Every item of a listing: the one stop rule is the page's own ``next_offset``."""
    offset: int | None = 0
    while offset is not None:
        page = await fetch(offset)
        for item in items(page):
            yield item
        offset = page.next_offset
