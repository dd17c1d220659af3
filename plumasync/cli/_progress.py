"""The harvest progress display (rich Live on a terminal, plain lines otherwise) and Ctrl-C handling."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from types import TracebackType

import anyio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..client import PlumClient
from ..governor import GroupSnapshot
from ..governor.core.model import bulk_reserve
from ..harvest import Harvest
from ._common import fmt_duration

__all__ = ["HarvestDisplay", "drive"]

#: Refreshes per second of the live display.
REFRESH = 4


class HarvestDisplay:
    """Shows a harvest's counters, the Call Logs budget and the ETA while it runs.

    On a terminal: a rich Live panel refreshed ``REFRESH`` times per second.  Elsewhere (CI, pipes):
    one plain line every ``plain_every`` real seconds.  With ``quiet``: nothing.  With ``scale`` (a
    compressed sandbox clock), durations are shown in real seconds and in Plum-time minutes.
    """

    def __init__(self, console: Console, plum: PlumClient, harvest: Harvest, *, title: str,
                 scale: float | None = None, plain_every: float = 5.0, quiet: bool = False) -> None:
        self.console = console
        self.plum = plum
        self.harvest = harvest
        self.title = title
        self.scale = scale
        self.plain_every = plain_every
        self.quiet = quiet
        self.live: Live | None = None
        self._snapshot: GroupSnapshot | None = None
        self._fetched_at = 0.0
        self._key = plum.groups["calllogs"]
        #: This process's 429 count for the group when the display started (the harvest counts from
        #: its own start, and only when a request completes: a 429 being waited out is not counted yet).
        self._throttled_base = self._throttled_now()
        #: (clock time, logs handled) over the last few seconds: the pace at which requests complete.
        self._pace: deque[tuple[float, int]] = deque(maxlen=4 * REFRESH)

    # -- values -------------------------------------------------------------------------------------------

    def duration(self, clock_seconds: float | None) -> str:
        """A clock duration for people: real time, plus Plum time when the clock is compressed."""
        if clock_seconds is None:
            return "—"
        if self.scale is None:
            return fmt_duration(clock_seconds)
        return f"{fmt_duration(clock_seconds / self.scale)} (Plum {clock_seconds / 60:.1f} min)"

    async def _refresh_snapshot(self) -> None:
        if self.plum.store.shared:
            if time.monotonic() - self._fetched_at >= 1.0:  # shared stores: one read per second
                self._fetched_at = time.monotonic()
                self._snapshot = await self.plum.governor.fetch(self._key)
        else:
            self._snapshot = self.plum.governor.peek(self._key)

    def _throttled_now(self) -> int:
        return self.plum.governor.usage(self._key).throttled

    def throttled(self) -> int:
        """429 answers this process received during the harvest, including one whose retry still waits."""
        return max(self.harvest.progress.throttled, self._throttled_now() - self._throttled_base)

    def sample(self) -> None:
        """Note how many logs are handled now (the ETA's measured pace)."""
        p = self.harvest.progress
        self._pace.append((self.plum.clock.now(), p.done + p.skipped + p.failed))

    def eta_seconds(self) -> float | None:
        """Clock seconds left: the window arithmetic, but never less than the measured pace needs.

        The arithmetic alone says 0 as soon as the remaining requests fit in the current window, while
        they still take their round trips; so when the arithmetic has no wait to add, the time comes from
        the pace of the last few seconds, and is unknown (None) until there is one.
        """
        arithmetic = self.harvest.eta()
        left = self.harvest.progress.left
        if arithmetic is None or left is None:
            return None
        if left == 0:
            return 0.0
        pace = None
        if len(self._pace) >= 2:
            (t0, h0), (t1, h1) = self._pace[0], self._pace[-1]
            if t1 > t0 and h1 > h0:
                pace = left * (t1 - t0) / (h1 - h0)
        if pace is None:
            return arithmetic if arithmetic > 0 else None
        return max(arithmetic, pace)

    async def settle(self) -> None:
        """Read the budget once more, so that the last line shows the state the harvest left."""
        self._fetched_at = 0.0
        await self._refresh_snapshot()

    def _budget(self) -> str:
        snap = self._snapshot
        if snap is None or snap.available is None:
            return "unknown until the first response"
        reserve = bulk_reserve(self.plum.governor.policy(self._key), snap.limit)
        return f"{snap.available}/{snap.limit} left in this window ({reserve} kept for interactive calls)"

    def _reset(self) -> str:
        snap = self._snapshot
        now = self.plum.clock.now()
        if snap is not None and snap.paused_until is not None:
            whose = "a 429" if self.throttled() else "another process's 429"
            return f"paused after {whose}: resumes in {self.duration(snap.paused_until - now)}"
        if snap is None or snap.reset_at is None:
            return "—"
        return f"in {self.duration(snap.reset_at - now)}"

    def _eta(self) -> str:
        eta = self.eta_seconds()
        return "—" if eta is None else self.duration(eta)

    def _elapsed(self) -> str:
        started = self.harvest.progress.started
        return "—" if not started else self.duration(self.plum.clock.now() - started)

    # -- rendering ----------------------------------------------------------------------------------------

    def render(self) -> RenderableType:
        """The live panel."""
        p = self.harvest.progress
        handled = p.done + p.skipped + p.failed
        total = p.total
        bar = ProgressBar(total=float(total or 1), completed=float(handled if total else 0), width=50,
                          pulse=total is None)
        count = f"{handled}/{total} logs" if total is not None else "listing calls…"
        pct = f"  {100 * handled / total:.0f}%" if total else ""
        head = Table.grid(padding=(0, 1))
        head.add_row(bar, Text(count + pct, style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="cyan")
        grid.add_column()
        grid.add_row("logs", f"{p.done} fetched · {p.skipped} already stored · {p.failed} failed")
        grid.add_row("requests", f"{p.requests} sent · {self.throttled()} × 429")
        grid.add_row("budget", self._budget())
        grid.add_row("next reset", self._reset())
        if p.stopping:
            grid.add_row("ETA", "stopping: the requests already sent finish and are stored")
        else:
            grid.add_row("ETA", f"{self._eta()} (window arithmetic, and the pace of the last seconds)")
        grid.add_row("elapsed", self._elapsed())
        return Group(Text(self.title, style="bold"), head, grid)

    def short(self, clock_seconds: float | None) -> str:
        """A clock duration in a plain line: ``2.2 s`` or, compressed, ``2.2 s (11.2m)`` (Plum minutes)."""
        if clock_seconds is None:
            return "—"
        if self.scale is None:
            return fmt_duration(clock_seconds)
        return f"{fmt_duration(clock_seconds / self.scale)} ({max(0.0, clock_seconds) / 60:.1f}m)"

    def header(self) -> str:
        """The column titles of the plain lines."""
        return (f"{'elapsed':<14} {'logs':>9} {'skipped':>7} {'failed':>6} {'requests':>8} {'429s':>4} "
                f"{'budget':>11} {'reset in':<14} {'ETA':<14}").rstrip()

    def line(self) -> str:
        """One plain progress line (columns as in :meth:`header`)."""
        p = self.harvest.progress
        handled = p.done + p.skipped + p.failed
        total = "?" if p.total is None else str(p.total)
        snap = self._snapshot
        now = self.plum.clock.now()
        budget = "?" if snap is None or snap.available is None else f"{snap.available}/{snap.limit}"
        reset = None if snap is None or snap.reset_at is None else snap.reset_at - now
        if snap is not None and snap.paused_until is not None:
            budget = "paused"
            reset = snap.paused_until - now
        elapsed = now - p.started if p.started else None
        eta = "stopping" if p.stopping else self.short(self.eta_seconds())
        return (f"{self.short(elapsed):<14} {f'{handled}/{total}':>9} {p.skipped:>7} {p.failed:>6} "
                f"{p.requests:>8} {self.throttled():>4} {budget:>11} {self.short(reset):<14} {eta:<14}").rstrip()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> HarvestDisplay:
        if self.quiet:
            return self
        if self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, auto_refresh=False, transient=False)
            self.live.start(refresh=True)
        else:
            times = " (times: real seconds, Plum-time minutes in brackets)" if self.scale else ""
            self.console.print(self.title + times, markup=False, highlight=False)
            self.console.print(self.header(), markup=False, highlight=False, soft_wrap=True, style="bold")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.plum.store.shared:
            self._snapshot = self.plum.governor.peek(self._key)
        if self.live is not None:
            self.live.update(self.render(), refresh=True)
            self.live.stop()
            self.live = None
        elif not self.quiet and (exc_type is None or not issubclass(exc_type, Exception)):
            self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)

    async def run(self) -> None:
        """Refresh until cancelled."""
        last_line = time.monotonic()
        while True:
            await anyio.sleep(1 / REFRESH)
            await self._refresh_snapshot()
            self.sample()
            if self.quiet:
                continue
            if self.live is not None:
                self.live.update(self.render(), refresh=True)
            elif time.monotonic() - last_line >= self.plain_every:
                last_line = time.monotonic()
                self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)


async def drive(harvest: Harvest, display: HarvestDisplay) -> int | None:
    """Run ``harvest`` to the end under ``display``; return the signal that stopped it, if one did."""
    caught: list[int] = []
    work = anyio.CancelScope()
    with display:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, harvest, work, caught, display.console)
            tg.start_soon(display.run)
            try:
                with work:
                    async with harvest:
                        async for _ in harvest:
                            pass
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(1):
            await display.settle()
    return caught[0] if caught else None


async def _watch_signals(harvest: Harvest, work: anyio.CancelScope, caught: list[int], console: Console) -> None:
    """SIGINT/SIGTERM, first: stop gracefully (requests already sent finish and are stored).

    Second: stop now (requests in flight are dropped; the batch being written is still written).
    Third: quit at once (the sink loses at most the batch it was writing, which a rerun fetches again).
    """
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                caught.append(signum)
                if len(caught) == 1:
                    harvest.stop()
                    console.print("stopping: requests already sent finish and are stored "
                                  "(press Ctrl-C again to stop at once)", style="yellow", highlight=False)
                elif len(caught) == 2:
                    work.cancel()
                    console.print("stopping now: dropping the requests in flight (Ctrl-C again to quit at once)",
                                  style="yellow", highlight=False)
                else:
                    os._exit(128 + caught[0])
    except (NotImplementedError, RuntimeError):  # no signal receiver here (Windows, not the main thread)
        await anyio.sleep_forever()
