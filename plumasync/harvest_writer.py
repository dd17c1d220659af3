"""The harvest's writer: details stored in full batches, each acknowledged only once it is stored.

The workers hand fetched logs to one writer task.  With a sink, the writer gathers them into batches of
:data:`BATCH` and stores each in one call of :meth:`~plumasync.sinks.Sink.write` (one SQLite transaction,
one JSON Lines flush), on the event loop: a batch's write is a few milliseconds of C (SQLite) or JSON
encoding, less than one worker thread hop per batch plus the GIL handover would cost (measured in
benchmarks/README.md), and the SQLite budget store already works this way.

A batch that fills slowly (a follow cycle's trickle of new calls) is written anyway once its first log
has waited :data:`FLUSH_INTERVAL` clock seconds: a timer task wakes the writer with a ``None`` tick.

Durability: a log is counted as done and handed to the consumer only after its batch is stored, so no
progress (and no follow watermark, which needs a complete harvest) ever runs ahead of the sink.  A crash
loses at most the batch being gathered; its logs are not in the sink, so a rerun fetches them again.  A
harvest stopped or cancelled early still writes the batch in hand (shielded).  A failed write (a full
disk) raises out of the harvest: it is never dropped silently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .governor.clock import Clock
from .sinks import HarvestedLog, Sink

__all__ = ["BATCH", "FLUSH_INTERVAL", "BatchWriter"]

#: Logs per sink write (one SQLite transaction, one JSON Lines flush).
BATCH = 200
#: Clock seconds the first log of a batch may wait for the batch to fill before it is written anyway.
FLUSH_INTERVAL = 1.0

#: What the workers send the writer: a fetched log, or ``None`` from the timer (write what you hold).
Item = HarvestedLog | None


class BatchWriter:
    """Gathers fetched logs into batches, stores each in ``sink`` (None: nothing to store), then calls
    ``stored(batch)`` (counting and handing the logs on).  No request is sent here."""

    def __init__(self, sink: Sink | None, clock: Clock, stored: Callable[[list[HarvestedLog]], Awaitable[None]],
                 *, size: int = BATCH, interval: float = FLUSH_INTERVAL) -> None:
        self._sink = sink
        self._clock = clock
        self._stored = stored
        self.size = size
        self.interval = interval
        self._begun = anyio.Event()  # set when a batch gets its first log: the timer starts counting
        self._flush_due = False

    async def run(self, items: MemoryObjectReceiveStream[Item]) -> None:
        """Write what ``items`` brings until it ends; the batch in hand is written even when cancelled."""
        batch: list[HarvestedLog] = []
        try:
            async with items:
                async for item in items:
                    if item is not None:
                        if not batch:
                            self._begun.set()
                        batch.append(item)
                    elif not batch:
                        self._flush_due = False  # the timer's batch was written already
                    if batch and self._ready(batch, items):
                        pending, batch = batch, []
                        await self._flush(pending)
            if batch:
                pending, batch = batch, []
                await self._flush(pending)
        finally:
            if batch:  # cancelled (stopped early) with logs in hand: store them (no await), hand them to no one
                self._write(batch)

    def _ready(self, batch: list[HarvestedLog], items: MemoryObjectReceiveStream[Item]) -> bool:
        if len(batch) >= self.size or self._flush_due:
            return True
        # Without a sink there is nothing to amortise: pass logs on as soon as none are waiting.
        return self._sink is None and items.statistics().current_buffer_used == 0

    async def _flush(self, batch: list[HarvestedLog]) -> None:
        self._flush_due = False
        self._write(batch)
        await self._stored(batch)

    def _write(self, batch: list[HarvestedLog]) -> None:
        if self._sink is not None:
            self._sink.write(batch)

    async def tick(self, items: MemoryObjectSendStream[Item]) -> None:
        """The flush timer: once a batch has waited ``interval`` clock seconds, wake the writer.

        Sleeps only while a batch is gathering (so a fake clock sees no sleeper when nothing is held);
        run it in a task that is cancelled when the producers are done, so ``items`` closes."""
        async with items:
            while True:
                await self._begun.wait()
                self._begun = anyio.Event()
                await self._clock.sleep(self.interval)
                self._flush_due = True
                with contextlib.suppress(anyio.WouldBlock):  # full: a log is coming anyway
                    try:
                        items.send_nowait(None)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return  # the writer is gone
