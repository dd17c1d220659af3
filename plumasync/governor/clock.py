"""Injected time: every wait in plumasync goes through a :class:`Clock`.

A clock has ``now()`` (Unix seconds, comparable with the server's ``Date`` once corrected for skew) and
``await sleep(seconds)``.  Three are provided:

* :class:`SystemClock` — the real wall clock; the default.
* :class:`ScaledClock` — wall time running ``scale`` times faster than real time.  The sandbox and the
  client share one to compress Plum's 15-minute windows into seconds *without* changing the ratio of
  the HTTP ``Date`` header's one-second resolution to the window, so a compressed run behaves like a
  real one, only faster.
* :class:`FakeClock` — virtual time for unit tests; it only moves when told to (or when every task is
  asleep, with :meth:`FakeClock.autojump`).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "ScaledClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What plumasync needs of time."""

    def now(self) -> float:
        """Current time in Unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real wall clock (``time.time``) and ``anyio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ScaledClock:
    """Wall time that runs ``scale`` times faster than real time.

    ``now()`` is ``origin + (monotonic() - mono_origin) * scale``.  Processes that must agree on the
    time (a sandbox in one process, workers in others) build their clock with the same
    ``origin``/``mono_origin`` pair (see :meth:`params`): ``time.monotonic`` is system-wide on Linux.
    """

    def __init__(self, scale: float = 1.0, *, origin: float | None = None, mono_origin: float | None = None):
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = float(scale)
        self.mono_origin = time.monotonic() if mono_origin is None else float(mono_origin)
        self.origin = time.time() if origin is None else float(origin)

    def params(self) -> dict[str, float]:
        """Arguments that rebuild an identical clock (in another process)."""
        return {"scale": self.scale, "origin": self.origin, "mono_origin": self.mono_origin}

    def now(self) -> float:
        return self.origin + (time.monotonic() - self.mono_origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self.scale)

    def real_seconds(self, clock_seconds: float) -> float:
        """Convert a duration in this clock's seconds to real seconds."""
        return clock_seconds / self.scale

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale:g})"


class FakeClock:
    """Virtual time for tests: ``sleep`` blocks until :meth:`advance` moves time past its deadline.

    Use ``await clock.advance(seconds)`` to move time by hand, or ``async with clock.autojump():`` to let
    time jump to the next sleeper's deadline whenever every task is waiting (deterministic: it never
    looks at the real clock).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock."""
        return sum(1 for _, _, ev in self._sleepers if not ev.is_set())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), event))
        await event.wait()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, event = heapq.heappop(self._sleepers)
            event.set()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in deadline order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            self._now = max(self._now, self._sleepers[0][0])
            self._wake_due()
            await _settle()
        self._now = target
        await _settle()

    def next_deadline(self) -> float | None:
        """The earliest pending sleeper's deadline, or None."""
        while self._sleepers and self._sleepers[0][2].is_set():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    @asynccontextmanager
    async def autojump(self, idle_checkpoints: int = 30) -> AsyncIterator[None]:
        """Jump to the next deadline whenever the tasks have gone idle for ``idle_checkpoints`` passes."""
        async with anyio.create_task_group() as tg:

            async def driver() -> None:
                while True:
                    await _settle(idle_checkpoints)
                    deadline = self.next_deadline()
                    if deadline is not None:
                        self._now = max(self._now, deadline)
                        self._wake_due()

            tg.start_soon(driver)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.3f})"


async def _settle(passes: int = 10) -> None:
    """Let every runnable task run: a few scheduler passes, no real time."""
    for _ in range(passes):
        await anyio.lowlevel.checkpoint()
