"""Bulk harvest: every call log of a period, calls/logs → calls/log, as fast as the budget allows.

The pipeline (all in the ``bulk`` lane, so dashboards keep the reserve)::

    lister ──(bounded queue)──▶ K detail workers ──(bounded queue)──▶ writer ──▶ your ``async for``

* The **lister** reads one calls/logs page at a time (10,000 entries: the fewest requests) and skips
  logs the sink already holds: a rerun spends no request on them.  It blocks when the workers are
  behind, so memory stays bounded whatever the size of the period.
* **Workers** fetch details; each request goes through the governor and the retry policy (429, 5xx,
  dropped connections).  An item that still fails is reported in :attr:`Harvest.failures` and logged;
  the rest go on.
* The **writer** (:mod:`plumasync.harvest_writer`) stores full batches of 200 atomically in the sink
  before counting them and handing them to you, so what you saw is stored, and a crash loses at most
  the batch being gathered (a rerun fetches it); a batch that fills slowly is written a clock second
  after its first log arrived.

:meth:`Harvest.stop` ends a harvest gracefully: nothing new is listed or fetched, requests still waiting
for the budget are dropped (they cost nothing), and requests already sent finish and are stored, so no
request spent is wasted.  A rerun into the same sink fetches the rest.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import metrics
from .config import Format, TimeLike
from .errors import Abandoned, ConfigurationError, HarvestError, PlumError, RateLimitExceeded
from .governor import Lane, Usage
from .harvest_order import ListedCalls
from .harvest_plan import HarvestPlan, plan_of
from .harvest_progress import HarvestProgress, HarvestSummary
from .harvest_source import CallLogSource
from .harvest_writer import BatchWriter, Item
from .models.calllogs import CallLogEntry
from .sinks import HarvestedLog, Sink, open_sink
from .transport import Drain
from .validation import MAX_PAGE_SIZE, RETENTION_SECONDS

if sys.version_info < (3, 11):  # pragma: no cover - the backport anyio depends on
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["Harvest", "HarvestProgress", "HarvestSummary", "HarvestedLog"]

log = logging.getLogger("plumasync")

#: Clock seconds before its expiry a log is given up: a request sent closer than that races the
#: server's deletion and is likely to buy only "log not found".
EXPIRY_MARGIN = 60.0


class Harvest:
    """A harvest of ``[start, end)``: iterate it, or ``await harvest.run()`` to just fill the sink.

    Arguments (checked before any request): ``number`` (only calls to that number), ``concurrency``
    (detail requests in flight, default 8), ``sink`` (a :class:`~plumasync.sinks.Sink`, or a SQLite path),
    ``jsonl`` (a JSON Lines path instead), ``page_size`` (1..10000, default 10000), ``format``,
    ``retention`` (seconds the server keeps a log, default 5 days: an older log is counted as expired).

    Cost: ``ceil(listed / page_size)`` listing requests plus one request per call not already stored.
    A listing page that still fails after every retry ends the harvest with that error (a
    :class:`~plumasync.errors.PlumError`: ``TransportError``, ``ServerError``, ...), never an exception
    group; a sink that cannot work is refused with ``ConfigurationError`` before any request.
    Use ``async with`` for deterministic clean-up (required on trio when breaking out early)::

        async with plum.calllogs.harvest(start, end, sink="calls.db") as harvest:
            async for item in harvest:
                ...
    """

    def __init__(self, calllogs: CallLogSource, start: TimeLike, end: TimeLike, *, number: str | None = None,
                 concurrency: int = 8, sink: Sink | str | os.PathLike[str] | None = None,
                 jsonl: str | os.PathLike[str] | None = None, page_size: int = MAX_PAGE_SIZE,
                 format: Format | None = None, retention: float = RETENTION_SECONDS) -> None:
        self._calllogs = calllogs
        if format not in (None, "json", "xml"):
            raise ConfigurationError(f"format must be 'json' or 'xml', got {format!r}")
        #: Seconds the server keeps a log (Plum: 5 days); older logs are counted as expired.
        self.retention = float(retention)
        #: The forecast, once the whole period is listed (also logged at INFO).
        self.forecast: HarvestPlan | None = None
        #: Called with the forecast as soon as it is known, before any detail request.
        self.on_forecast: Callable[[HarvestPlan], None] | None = None
        metrics.watch_harvest(self)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency must be a positive integer, got {concurrency!r}")
        self.concurrency = concurrency
        self._format = format
        if sink is not None and jsonl is not None:
            raise ConfigurationError("choose one sink: a SQLite file (sink=) or a JSON Lines file (jsonl=)")
        # Validates the range, number and page size (and warns of the retention, once) before any request.
        self._pages = calllogs.listing(start, end, number=number, page_size=page_size, format=format, lane=Lane.BULK)
        self._sink_spec = (sink, jsonl)
        self.sink: Sink | None = None
        self.progress = HarvestProgress()
        #: Calls that failed after every retry, with the error.
        self.failures: list[HarvestError] = []
        self._stack: AsyncExitStack | None = None
        self._results: MemoryObjectReceiveStream[HarvestedLog] | None = None
        self._base_usage = Usage()
        self._drain = Drain()
        self._dropped = False  # an entry was left unfetched because of stop()
        self._deliver = True  # hand stored logs to an iterating consumer (run() does not iterate)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Harvest:
        if self._stack is not None:
            raise RuntimeError("a Harvest runs once")
        sink_arg, jsonl = self._sink_spec
        self.sink = await anyio.to_thread.run_sync(lambda: open_sink(sink_arg, jsonl=jsonl))
        self._base_usage = self._calllogs.usage()
        self.progress.started = self._calllogs.clock.now()
        stack = AsyncExitStack()
        self._stack = stack
        try:
            tg = await stack.enter_async_context(anyio.create_task_group())
            send, receive = anyio.create_memory_object_stream[HarvestedLog](self.concurrency * 2)
            self._results = receive
            stack.callback(receive.close)
            tg.start_soon(self._pipeline, send)
            self._tg = tg
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._stack is not None
        if not self.progress.finished:
            self._tg.cancel_scope.cancel()  # stopped early: in-flight batches are written (shielded)
        try:
            await self._stack.aclose()
        except BaseExceptionGroup as group:
            # The pipeline's task groups wrap what failed; callers catch PlumError, not a group.
            leaf = _plain_error(group)
            if leaf is None:
                raise
            raise leaf from None
        finally:
            self._update_requests()
            if self.sink is not None:
                sink = self.sink
                await anyio.to_thread.run_sync(sink.close)

    def __aiter__(self) -> AsyncIterator[HarvestedLog]:
        if self._stack is None:
            return self._standalone()
        return self._iterate()

    async def _standalone(self) -> AsyncIterator[HarvestedLog]:
        async with self:
            async for item in self._iterate():
                yield item

    async def _iterate(self) -> AsyncIterator[HarvestedLog]:
        assert self._results is not None
        async for item in self._results:
            yield item

    async def run(self) -> HarvestSummary:
        """Harvest everything into the sink and return the summary (without yielding items)."""
        self._deliver = False  # nobody reads the logs: the writer only counts them
        async with self:
            async for _ in self._iterate():
                pass
        return self.summary()

    def stop(self) -> None:
        """Stop gracefully; iteration then ends on its own.

        No listing page or detail request starts after this; requests still waiting for the budget (or
        for a retry) are dropped at once and cost nothing; requests already sent run to their response
        and are stored.  So every request spent is kept, and a rerun into the same sink fetches only the
        rest.  :meth:`summary` then says ``complete=False`` (unless nothing was left).  Idempotent; call it
        from a task of the harvest's event loop (a signal handler task, a web endpoint, ...).
        """
        self.progress.stopping = True
        self._drain.stop()

    async def plan(self) -> HarvestPlan:
        """List the period (``ceil(listed / page_size)`` calls/logs requests, nothing else) and forecast
        the harvest: calls listed, already stored, detail requests needed, finish time from the window
        arithmetic and the budget's current state, logs that will expire first.  Writes nothing; the
        Harvest can still be run afterwards (it lists again)."""
        sink_arg, jsonl = self._sink_spec
        self.sink = await anyio.to_thread.run_sync(lambda: open_sink(sink_arg, jsonl=jsonl))
        calls = ListedCalls()
        try:
            with self._drain.active():
                await self._list_all(calls)
            self._update_requests()
            return await anyio.to_thread.run_sync(self._forecast, calls)
        finally:
            calls.close()
            if self.sink is not None and not isinstance(sink_arg, Sink):
                await anyio.to_thread.run_sync(self.sink.close)
            self.sink = None
            self.progress = HarvestProgress()

    def _forecast(self, calls: ListedCalls) -> HarvestPlan:
        p, source = self.progress, self._calllogs
        return plan_of(calls.starts(), listed=p.total or 0, stored=p.skipped, pages=p.pages,
                       now=source.clock.now(), budget=source.budget_now(), eta=source.eta,
                       retention=self.retention - EXPIRY_MARGIN)

    def summary(self) -> HarvestSummary:
        """The counters so far, as a :class:`HarvestSummary`."""
        self._update_requests()
        p = self.progress
        return HarvestSummary(total=p.total or 0, fetched=p.done, skipped=p.skipped, failed=p.failed,
                              pages=p.pages, requests=p.requests, throttled=p.throttled,
                              elapsed=self._calllogs.clock.now() - p.started, complete=p.finished,
                              expired=p.expired)

    def eta(self) -> float | None:
        """Clock seconds the remaining work needs at least, from the window arithmetic (None: unknown)."""
        left = self.progress.left
        if left is None:
            return None
        pages_left = 0 if self.progress.finished else 1
        return self._calllogs.eta(left + pages_left, Lane.BULK)

    def _update_requests(self) -> None:
        usage = self._calllogs.usage()
        self.progress.requests = usage.sent - self._base_usage.sent
        self.progress.throttled = usage.throttled - self._base_usage.throttled

    # -- the pipeline ---------------------------------------------------------------------------------------

    async def _pipeline(self, out: MemoryObjectSendStream[HarvestedLog]) -> None:
        todo_send, todo_receive = anyio.create_memory_object_stream[CallLogEntry](self.concurrency * 2)
        done_send, done_receive = anyio.create_memory_object_stream[Item](self.concurrency * 2)
        writer = BatchWriter(self.sink, self._calllogs.clock, partial(self._stored_batch, out))
        try:
            with self._drain.active():  # the lister and the workers inherit it
                listed = anyio.Event()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._lister, todo_send, listed)
                    tg.start_soon(self._fetch, todo_receive, done_send, writer)
                    await writer.run(done_receive)
            self.progress.finished = listed.is_set() and not self._dropped
            self._update_requests()
        finally:
            out.close()  # ends the consumer's iteration, after `finished` is set

    async def _fetch(self, todo: MemoryObjectReceiveStream[CallLogEntry], done: MemoryObjectSendStream[Item],
                     writer: BatchWriter) -> None:
        """The detail workers, and the writer's flush timer while any of them runs."""
        async with todo, done, anyio.create_task_group() as timer:
            if self.sink is not None:
                timer.start_soon(writer.tick, done.clone())
            async with anyio.create_task_group() as workers:
                for _ in range(self.concurrency):
                    workers.start_soon(self._worker, todo.clone(), done.clone())
            timer.cancel_scope.cancel()  # closes the timer's stream: the writer sees the end

    async def _stored_batch(self, out: MemoryObjectSendStream[HarvestedLog], batch: list[HarvestedLog]) -> None:
        """A batch is in the sink: count it, then hand it to the consumer (if anyone iterates)."""
        self.progress.done += len(batch)
        self._update_requests()  # once a batch, not once a log: the counters a progress display reads
        if self._deliver:
            for item in batch:
                await out.send(item)

    async def _lister(self, todo: MemoryObjectSendStream[CallLogEntry], listed: anyio.Event) -> None:
        calls = ListedCalls()
        try:
            async with todo:
                if not await self._list_all(calls):
                    return
                listed.set()
                self.forecast = await anyio.to_thread.run_sync(self._forecast, calls)
                log.info("harvest: %s", self.forecast.describe())
                if self.on_forecast is not None:
                    self.on_forecast(self.forecast)
                await self._dispatch_oldest_first(calls, todo)
        finally:
            calls.close()

    async def _list_all(self, calls: ListedCalls) -> bool:
        """Every listing page into ``calls`` (what the sink holds is skipped); False: stopped first."""
        offset = 0
        while not self._drain.stopping:
            try:
                page = await self._pages.page(offset)
            except Abandoned:
                return False
            self.progress.pages += 1
            self.progress.total = page.total
            self._update_requests()
            stored = await self._stored([e.log_id for e in page.entries])
            fresh = [e for e in page.entries if e.log_id not in stored]
            self.progress.skipped += len(page.entries) - len(fresh)
            await anyio.to_thread.run_sync(calls.add, fresh)  # a shifted listing never fetches twice
            if page.next_offset is None:  # the listing's one stop rule
                return True
            offset = page.next_offset
        return False

    async def _dispatch_oldest_first(self, calls: ListedCalls, todo: MemoryObjectSendStream[CallLogEntry]
                                     ) -> None:
        """Hand the listed calls to the workers in ascending start; a log already past retention is
        counted as expired and costs no request."""
        after: tuple[int, int] | None = None
        while chunk := await anyio.to_thread.run_sync(calls.chunk_after, after):
            after = (chunk[-1].start_ts, chunk[-1].log_id)
            for entry in chunk:
                if self._drain.stopping:
                    self._dropped = True
                    return
                if self._is_expired(entry):
                    self.progress.expired += 1
                    continue
                try:
                    await todo.send(entry)
                except anyio.BrokenResourceError:  # every worker has stopped
                    self._dropped = True
                    return

    def _is_expired(self, entry: CallLogEntry) -> bool:
        return entry.start_ts + self.retention - EXPIRY_MARGIN <= self._calllogs.clock.now()

    async def _stored(self, ids: list[int]) -> set[int]:
        sink = self.sink
        if sink is None or not ids:
            return set()
        return await anyio.to_thread.run_sync(sink.stored, ids)

    async def _worker(self, todo: MemoryObjectReceiveStream[CallLogEntry], done: MemoryObjectSendStream[Item]
                      ) -> None:
        async with todo, done:
            async for entry in todo:
                if self._drain.stopping:
                    self._dropped = True
                    return
                try:
                    # Waiting past the log's expiry would buy a "log not found": give up the wait instead.
                    left = entry.start_ts + self.retention - EXPIRY_MARGIN - self._calllogs.clock.now()
                    detail = await self._calllogs.log(entry.log_id, format=self._format, lane=Lane.BULK,
                                                      max_wait=max(0.0, left))
                except Abandoned:  # stop() came while it waited for the budget: it cost nothing
                    self._dropped = True
                    return
                except PlumError as exc:
                    if _gone(exc) or self._is_expired(entry):  # retention takes it first: not a failure
                        self.progress.expired += 1
                        continue
                    failure = HarvestError(f"log {entry.log_id}: {exc}", log_id=entry.log_id, cause=exc)
                    self.failures.append(failure)
                    self.progress.failed += 1
                    log.warning("harvest: giving up on log %d after retries: %s", entry.log_id, exc)
                    continue
                await done.send(HarvestedLog(entry=entry, detail=detail))


def _gone(exc: PlumError) -> bool:
    """The governor refused the wait locally (no request sent): the log expires before its turn."""
    return isinstance(exc, RateLimitExceeded) and exc.status is None


def _plain_error(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The error to raise instead of ``group``: its first PlumError, else its only other error (None:
    keep the group, e.g. when it holds only cancellations)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)
    errors = [e for e in leaves if isinstance(e, Exception)]
    plum = [e for e in errors if isinstance(e, PlumError)]
    if plum:
        return plum[0]
    return errors[0] if len(errors) == 1 else None

