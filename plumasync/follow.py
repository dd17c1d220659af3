"""Follow mode: a harvest that keeps running after it catches up, one listing per window.

Each cycle harvests ``[max(since, watermark - lookback), now)`` into the same sink: one calls/logs
request while the new calls fit in a page, then one calls/log per call not stored yet (calls the
look-back lists again are already stored and cost nothing).  When a cycle stores everything it listed,
the sink's watermark moves to the cycle's end (every call started before it is stored), so a follower
stopped or killed resumes from there.  The look-back catches calls the server lists late.  Between
cycles it sleeps until the budget's next window opens, so listing costs one request per window.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs

from .governor.core.arithmetic import until_reset
from .harvest import Harvest, HarvestSummary
from .sinkfiles import read_watermark, write_watermark

if TYPE_CHECKING:
    from .client import PlumClient

__all__ = ["Follow", "FollowTotals"]


@attrs.define
class FollowTotals:
    """What a follower did so far: cycles, listing pages, logs fetched/expired/failed, requests."""

    cycles: int = 0
    pages: int = 0
    fetched: int = 0
    expired: int = 0
    failed: int = 0
    requests: int = 0
    #: End of the last listing (calls started before it were listed).
    listed_until: int | None = None

    def add(self, summary: HarvestSummary) -> None:
        """Count one cycle's summary."""
        self.cycles += 1
        self.pages += summary.pages
        self.fetched += summary.fetched
        self.expired += summary.expired
        self.failed += summary.failed
        self.requests += summary.requests


class Follow:
    """Harvest ``since`` onwards into ``out`` (SQLite) or ``jsonl``, then keep following new calls.

    ``lookback``: seconds re-listed before the watermark for late listings (default one hour);
    ``cycles``: stop after that many cycles (None: until :meth:`stop`).  Other keywords go to each
    cycle's :class:`~plumasync.harvest.Harvest`.  Cost per cycle: the listing pages (usually one) plus
    one request per new call.  :meth:`stop` (e.g. on SIGTERM) ends the cycle in hand gracefully.
    """

    def __init__(self, client: PlumClient, since: float, *, out: str | os.PathLike[str] | None = None,
                 jsonl: str | os.PathLike[str] | None = None, lookback: float = 3600.0,
                 cycles: int | None = None, **harvest_options: object) -> None:
        self._client = client
        self.since = int(since)
        self._sink_spec = (out, jsonl)
        target = Path(jsonl if jsonl is not None else out if out is not None else "calls.db")
        self._mark_path = target.with_name(target.name + ".watermark")
        self.lookback = lookback
        self.cycles = cycles
        self._options = harvest_options
        self.totals = FollowTotals()
        self._stopping = False
        self._current: Harvest | None = None
        self._wake: anyio.Event | None = None

    def watermark(self) -> int | None:
        """The sink's watermark: every call started before it is stored (None: not yet)."""
        return read_watermark(self._mark_path)

    def stop(self) -> None:
        """Stop after the requests already sent are stored; no new cycle starts."""
        self._stopping = True
        if self._current is not None:
            self._current.stop()
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> FollowTotals:
        """Follow until :meth:`stop` (or ``cycles``); returns the totals."""
        clock = self._client.clock
        _, _, window = self._client.calllogs.budget_now()  # the window the budget is counted in
        while not self._stopping and (self.cycles is None or self.totals.cycles < self.cycles):
            mark = self.watermark()
            start = self.since if mark is None else max(self.since, int(mark - self.lookback))
            end = math.floor(clock.now())
            if end > start:
                await self._cycle(start, end)
            if self._stopping or (self.cycles is not None and self.totals.cycles >= self.cycles):
                break
            await self._sleep(until_reset(clock.now(), window))
        return self.totals

    async def _cycle(self, start: int, end: int) -> None:
        out, jsonl = self._sink_spec
        job = self._client.calllogs.harvest(start, end, sink=out, jsonl=jsonl, **self._options)  # type: ignore[arg-type]
        self._current = job
        try:
            summary = await job.run()
        finally:
            self._current = None
        self.totals.add(summary)
        self.totals.listed_until = end
        if summary.complete and not summary.failed:
            write_watermark(self._mark_path, end)  # everything started before `end` is stored

    async def _sleep(self, seconds: float) -> None:
        self._wake = anyio.Event()
        wake = self._wake
        async with anyio.create_task_group() as tg:
            async def nap() -> None:
                await self._client.clock.sleep(seconds)
                tg.cancel_scope.cancel()
            tg.start_soon(nap)
            await wake.wait()
            tg.cancel_scope.cancel()
