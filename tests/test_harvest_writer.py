"""The harvest's plumbing: full batches, a flush timer for a trickle, nothing counted before it is stored,
and no per-id memory for the listing's dedupe.

A fake Call Logs source (no HTTP, a fake clock) drives :class:`plumasync.harvest.Harvest`, so batch sizes
and the timer are exact: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest
from fakes import entry

from plumasync import FakeClock
from plumasync.governor import Lane, Usage
from plumasync.harvest import Harvest
from plumasync.harvest_order import ListedCalls
from plumasync.models.calllogs import CallLogDetail, CallLogEntry, CallLogPage
from plumasync.sinks import HarvestedLog, SQLiteSink

pytestmark = [pytest.mark.anyio]

BASE = 1_700_000_000
BATCH = 200  # plumasync.harvest_writer.BATCH
FLUSH_INTERVAL = 1.0  # plumasync.harvest_writer.FLUSH_INTERVAL


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"




class FakePages:
    def __init__(self, entries: list[CallLogEntry], page_size: int) -> None:
        self.entries, self.page_size = entries, page_size

    async def page(self, offset: int) -> CallLogPage:
        await anyio.lowlevel.checkpoint()
        chunk = tuple(self.entries[offset:offset + self.page_size])
        return CallLogPage(total=len(self.entries), entries=chunk, offset=offset, limit=self.page_size)


class FakeSource:
    """A Call Logs source: ``count`` calls a second apart; the details of ``held`` ids wait for ``release``."""

    def __init__(self, count: int, *, held: Iterable[int] = ()) -> None:
        self.clock = FakeClock(BASE + count + 10)
        self.entries = [entry(1000 + i, BASE + i) for i in range(count)]
        self.held = set(held)
        self.release = anyio.Event()
        self.fetched: list[int] = []

    def listing(self, start: object, end: object, *, number: str | None = None, page_size: int = 10_000,
                format: object = None, lane: Lane = Lane.BULK, max_wait: float | None = None) -> FakePages:
        return FakePages(self.entries, page_size)

    async def log(self, log_id: int | str, *, format: object = None, lane: Lane = Lane.BULK,
                  max_wait: float | None = None) -> CallLogDetail:
        await anyio.lowlevel.checkpoint()
        if int(log_id) in self.held:
            await self.release.wait()
        self.fetched.append(int(log_id))
        return CallLogDetail(dest="1", src="2", type="inbound", timestamp=datetime.fromtimestamp(BASE, timezone.utc),
                             location="Boston", log=f"log {log_id}")

    def usage(self) -> Usage:
        return Usage(sent=len(self.fetched))

    def eta(self, requests: int, lane: Lane = Lane.BULK) -> float:
        return 0.0

    def budget_now(self) -> tuple[int, int, float]:
        return (10**6, 10**6, 900.0)


class CountingSink(SQLiteSink):
    """A SQLite sink that records each write's size, and what the harvest had counted as done by then."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.done_before: list[int] = []
        self.harvest: Harvest | None = None

    def write(self, batch: list[HarvestedLog]) -> None:
        if self.harvest is not None:
            self.done_before.append(self.harvest.progress.done)
        self.batches.append(len(batch))
        super().write(batch)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (real time, at most 10 s) for ``condition``: the listing's spill runs in a worker thread."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - a plain condition, no event to wait on
            await anyio.sleep(0.005)


def harvest_of(source: FakeSource, sink: CountingSink, **options: object) -> Harvest:
    harvest = Harvest(source, BASE, BASE + len(source.entries), sink=sink, retention=1e9,  # type: ignore[arg-type]
                      **options)  # type: ignore[arg-type]
    sink.harvest = harvest
    return harvest


async def test_batches_fill_to_batch_and_nothing_is_counted_before_it_is_stored(tmp_path: Path) -> None:
    source = FakeSource(2 * BATCH + 50)
    sink = CountingSink(tmp_path / "c.db")
    summary = await harvest_of(source, sink, concurrency=8).run()
    assert summary.fetched == 2 * BATCH + 50 and summary.complete
    assert sink.batches == [BATCH, BATCH, 50]  # full batches: one transaction per BATCH logs
    assert sink.done_before == [0, BATCH, 2 * BATCH]  # each batch counted only after its write
    sink.close()


async def test_an_iterating_consumer_sees_only_stored_logs_in_full_batches(tmp_path: Path) -> None:
    source = FakeSource(BATCH + 10)
    sink = CountingSink(tmp_path / "c.db")
    seen = 0
    async with harvest_of(source, sink, concurrency=4) as harvest:
        async for item in harvest:
            assert sink.stored([item.log_id]) == {item.log_id}  # handed out only once stored
            seen += 1
    assert seen == BATCH + 10 and sink.batches == [BATCH, 10]
    sink.close()


async def test_a_lone_log_is_written_within_the_flush_interval(tmp_path: Path) -> None:
    # Call 0 comes back at once; calls 1 and 2 trickle (their details wait): a batch that cannot fill.
    source = FakeSource(3, held={1001, 1002})
    sink = CountingSink(tmp_path / "c.db")
    got: list[int] = []
    async with harvest_of(source, sink, concurrency=3) as harvest:
        async def consume() -> None:
            async for item in harvest:
                got.append(item.log_id)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await until(lambda: source.fetched == [1000] and bool(source.clock.sleepers or got or sink.batches))
            await source.clock.advance(FLUSH_INTERVAL * 0.9)
            assert sink.batches == [] and got == []  # gathering: a batch is not written log by log
            await source.clock.advance(FLUSH_INTERVAL * 0.1)
            await until(lambda: got == [1000])
            assert sink.batches == [1] and sink.stored([1000]) == {1000}  # within its interval
            source.release.set()
    assert sorted(got) == [1000, 1001, 1002] and sink.batches == [1, 2]
    sink.close()


async def test_a_harvest_stopped_early_still_writes_the_batch_in_hand(tmp_path: Path) -> None:
    source = FakeSource(BATCH + 50, held={1000 + BATCH + 49})  # the newest detail waits until stop()
    sink = CountingSink(tmp_path / "c.db")
    harvest = harvest_of(source, sink, concurrency=4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(harvest.run)
        await until(lambda: len(source.fetched) >= BATCH + 49)
        harvest.stop()
        source.release.set()
    # 200 in a full batch, then the 49 in hand and the one in flight at stop(): no request spent is lost.
    assert sum(sink.batches) == BATCH + 50 and sink.batches[0] == BATCH
    assert harvest.summary().fetched == BATCH + 50


def test_the_listings_dedupe_holds_no_per_id_memory() -> None:
    """The listing's shift dedupe is the spill's primary key, on disk: Python memory does not grow with
    the pages listed (no set of every id seen)."""
    page = 500
    pages = [[entry(n * page + i, BASE - n * page - i) for i in range(page)] for n in range(30)]
    shifted = [[entry(n * page - 1 - i, BASE) for i in range(25)] for n in range(30)]  # ids listed again
    calls = ListedCalls()
    try:
        tracemalloc.start()
        for n in range(5):
            calls.add(pages[n])
        after_few = tracemalloc.get_traced_memory()[0]
        for n in range(5, 30):
            calls.add(pages[n])
            calls.add(shifted[n])
        after_many = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(calls) == 30 * page
    calls.close()
    # 12,500 more ids listed: a set of them would hold about 700 KB.
    assert after_many - after_few < 128 * 1024, (after_few, after_many)
