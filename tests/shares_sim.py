"""Helpers for the fair-shares tests: consumers saturating a group on a FixedWindowServer, on a fake clock.

Each consumer runs ``workers`` tasks that ask its governor for a permit, send one request to the server
(a 50 ms round trip of clock time) and report the response, until ``end``; a consumer with a ``stop``
time goes idle then (a permit granted after it is given back unused).  The result counts the requests
the server accepted per (server window, consumer).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import anyio
import attrs
import httpx
from fakes import FixedWindowServer

from plumasync import FakeClock
from plumasync.governor import Consumer, Governor, GroupKey, Lane, parse_rate_headers

KEY = GroupKey("127.0.0.1", "acct", "data")
#: Aligned with the server's 900 s windows, a little after a window opened.
T0 = math.floor(1_700_000_000 / 900) * 900 + 900 + 10.0


@attrs.define
class Side:
    """One consumer's process: its governor, its consumer (None: unnamed), its lane and workers."""

    name: str
    governor: Governor
    consumer: Consumer | None
    lane: Lane = Lane.INTERACTIVE
    workers: int = 6
    stop: float | None = None


async def saturate(clock: FakeClock, server: FixedWindowServer, sides: list[Side], end: float,
                   rtt: float = 0.05) -> Counter[tuple[int, str]]:
    """Run every side until ``end`` (clock time); return accepted requests per (window index, side name).

    On a :class:`QuietClock` time jumps only when every worker sleeps on it (a shared store's I/O takes
    real time: time must not jump while a transaction is in flight); else the clock's autojump.
    """
    counts: Counter[tuple[int, str]] = Counter()
    origin = math.floor(server.server_now() / server.window)
    live = sum(side.workers for side in sides)

    async def worker(side: Side) -> None:
        nonlocal live
        try:
            await run(side)
        finally:
            live -= 1

    async def run(side: Side) -> None:
        stop = end if side.stop is None else min(end, side.stop)
        while clock.now() < stop:
            permit = await side.governor.acquire(KEY, side.lane, None, side.consumer)
            if clock.now() >= stop:
                await side.governor.cancel(permit)
                return
            await clock.sleep(rtt)
            response = server.handler(httpx.Request("GET", "http://127.0.0.1/ws/calls/logs"))
            if response.status_code == 200:
                counts[math.floor(server.server_now() / server.window) - origin, side.name] += 1
            await side.governor.observe(permit, response.status_code, parse_rate_headers(response.headers))

    if not isinstance(clock, QuietClock):
        async with clock.autojump(), anyio.create_task_group() as tg:
            for side in sides:
                for _ in range(side.workers):
                    tg.start_soon(worker, side)
        return counts
    async with anyio.create_task_group() as tg:
        for side in sides:
            for _ in range(side.workers):
                tg.start_soon(worker, side)
        while live > 0:
            await anyio.sleep(0.0002)  # real time: transactions in flight finish
            deadline = clock.next_deadline()
            if clock.asleep >= live and deadline is not None:
                await clock.advance(max(0.0, deadline - clock.now()))
    return counts


class QuietClock(FakeClock):
    """A FakeClock that counts the tasks asleep on it, so a driver can tell when every worker waits."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.asleep = 0

    async def sleep(self, seconds: float) -> None:
        self.asleep += 1
        try:
            await super().sleep(seconds)
        finally:
            self.asleep -= 1


def per_window(counts: Counter[tuple[int, str]], names: list[str], windows: int) -> list[tuple[int, ...]]:
    """``[(a, b, ...) per window]`` for the first ``windows`` windows."""
    return [tuple(counts[w, n] for n in names) for w in range(windows)]


def register(governor: Governor, **budget: Any) -> Governor:
    """``governor`` with the test group registered (Budget keywords: limit, window, reserve...)."""
    from plumasync import Budget

    governor.register(KEY, Budget(**budget).policy())
    return governor
