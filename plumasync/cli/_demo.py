"""``plumasync demo``: the sandbox in this process, time compressed, and a harvest against it."""

from __future__ import annotations

import logging
import math
import signal
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..config import Budget
from ..governor.clock import ScaledClock
from ..governor.core.arithmetic import minimum_duration, until_reset
from ..governor.core.model import bulk_reserve
from ..harvest import HarvestSummary
from ..sandbox import SandboxConfig, SandboxServer
from ..sinks import SQLiteSink
from ..testing import enter_window, sandbox_client
from ._app import app
from ._common import (
    EXIT_CODES_HELP,
    ExitCode,
    GlobalOptions,
    fmt_duration,
    global_options,
    quiet_below,
    run_async,
)
from ._engine import EngineOpt, parse_engine
from ._format import print_table
from ._progress import HarvestDisplay, drive

__all__ = ["demo"]

#: The demo's Call Logs budget: small, so that a few hundred logs need several windows.
LIMIT, WINDOW = 60, 900

DEMO_EPILOG = f"""[bold]Examples[/bold]

  plumasync demo
  plumasync demo --logs 1000 --scale 600 --out demo.db

No account and no network needed: the sandbox serves on 127.0.0.1 inside this process.

{EXIT_CODES_HELP}"""


@app.command(epilog=DEMO_EPILOG)
def demo(
    ctx: typer.Context,
    logs: Annotated[int, typer.Option("--logs", min=1, max=100_000, help="Calls in the sandbox.")] = 300,
    scale: Annotated[float, typer.Option(
        "--scale", min=1.0, max=100_000.0,
        help="How much faster than real time the shared clock runs (300: a 15-minute window in 3 s).")
    ] = 300.0,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Keep the harvested SQLite file here (default: a temporary file, deleted at the end).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256,
                                             help="Detail requests in flight.")] = 8,
    engine: EngineOpt = None,
) -> None:
    """Harvest a sandbox's call logs under a 60-per-15-minute budget, with time compressed.

    Starts the Plum sandbox in this process with a clock running SCALE times faster than real time,
    harvests every call into SQLite through a client sharing that clock, then compares the time taken
    with T_min, the least time the rate limit's window arithmetic allows.
    """
    opts = global_options(ctx)
    if engine is not None:
        opts.engine = parse_engine(engine)
    if out is not None and not out.parent.is_dir():
        raise typer.BadParameter(f"directory {str(out.parent)!r} does not exist", param_hint="--out")
    if out is not None and out.exists():
        raise typer.BadParameter(f"{str(out)!r} exists: the demo starts from a new file", param_hint="--out")
    out = out.resolve() if out is not None else None  # say where it is, wherever the demo was run from
    quiet_below(opts, logging.ERROR)  # the progress display replaces the governor's wait warnings
    logging.getLogger("uvicorn").setLevel(logging.ERROR)
    run_async(opts, partial(_run, opts, logs, scale, out, concurrency))


async def _run(opts: GlobalOptions, logs: int, scale: float, out: Path | None, concurrency: int) -> int:
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory(prefix="plumasync-demo-") as tmp:
        db = out if out is not None else Path(tmp) / "calls.db"
        clock = ScaledClock(scale)
        config = SandboxConfig(clock=clock, calls_count=logs, limits={"calllogs": (LIMIT, WINDOW)})
        start = config.start_of_calls
        end = start + math.ceil(logs * config.calls_spacing)
        budget = Budget(limit=LIMIT, window=WINDOW)
        bulk = LIMIT - bulk_reserve(budget.policy(), LIMIT)
        async with SandboxServer(config) as server:
            console.print(f"[bold]plumasync demo[/bold]: a Plum sandbox at {server.url} in this process, "
                          f"{logs} calls, Call Logs budget {LIMIT} requests per {WINDOW // 60}-minute "
                          f"window; time runs {scale:g}× (a window passes in "
                          f"{fmt_duration(WINDOW / scale)}).")
            where = (f"into {db}" if out is not None else
                     "into a temporary SQLite file, deleted when the demo ends (--out FILE keeps it)")
            console.print(f"Harvesting every call {where}: a harvest uses {bulk} of each window's "
                          f"{LIMIT} requests (the rest is kept for interactive calls).", markup=False)
            async with sandbox_client(server, clock=clock, budget=budget, engine=opts.engine) as plum:
                job = plum.calllogs.harvest(start, end, sink=db, concurrency=concurrency)
                title = f"Harvest of {logs} calls, {concurrency} requests in flight ({plum.engine} engine)"
                display = HarvestDisplay(console, plum, job, title=title, scale=scale, plain_every=1.0,
                                         quiet=opts.quiet)
                # Latency is not compressed with the windows: start clear of a reset, as the tests do.
                t0 = await enter_window(clock, WINDOW)
                signum = await drive(job, display)
                elapsed = clock.now() - t0
                summary = job.summary()
            throttled = server.app.recorder.statuses()[429]
            expected = server.app.expected_ids(start, end)
        stored = SQLiteSink(db)
        try:
            ids = [row["log_id"] for row in stored.rows()]
        finally:
            stored.close()
    if signum is not None:
        console.print(f"Demo interrupted after {summary.fetched} logs.")
        return ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
    # The sandbox's windows are clock-aligned; it starts fresh, so the whole first window is there.
    t_min = minimum_duration(summary.requests, remaining_now=bulk, per_window=bulk, window=WINDOW,
                             until_reset=until_reset(t0, WINDOW))
    exact = sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
    table = _summary(scale, ids, expected, exact, summary, throttled, elapsed, t_min)
    print_table(console, table)
    console.print(f"T_min counts {bulk} requests per window, not {LIMIT}: a harvest runs in the bulk lane, "
                  f"which leaves the last {LIMIT - bulk} of every window to interactive calls.")
    _say_where(console, out)
    if not exact or summary.failed:
        return ExitCode.FAILED_LOGS
    return ExitCode.OK


def _summary(scale: float, ids: list[Any], expected: list[int], exact: bool, summary: HarvestSummary,
             throttled: int, elapsed: float, t_min: float) -> Table:
    """The demo's closing table: what was harvested, what it cost, and how close to T_min it came."""
    table = Table(title="Demo summary", show_header=False, title_justify="left")
    table.add_column(style="cyan")
    table.add_column(justify="right")
    table.add_column()

    def both(seconds: float) -> str:
        return f"{seconds / scale:.1f} s real"

    table.add_row("logs harvested", str(len(ids)),
                  f"of {len(expected)}, each stored once" if exact else f"of {len(expected)}: MISMATCH")
    pages = f"{summary.pages} listing page" + ("s" if summary.pages != 1 else "")
    table.add_row("requests spent", str(summary.requests), f"{pages} + {summary.fetched} log details")
    table.add_row("429 responses", str(throttled), "from the sandbox's request log")
    table.add_row("elapsed", both(elapsed), f"{elapsed / 60:.1f} min Plum time")
    table.add_row("T_min", both(t_min), f"{t_min / 60:.1f} min Plum time")
    ratio = f"{elapsed / t_min:.3f}" if t_min > 0 else "—"
    table.add_row("elapsed / T_min", ratio, "1.000 = as fast as the windows allow" if t_min > 0
                  else "the job fit in the first window: no wait was needed")
    return table


def _say_where(console: Console, out: Path | None) -> None:
    """Where the harvested calls are now: never a path that no longer exists."""
    if out is not None:
        console.print(f"The harvested calls are kept in {out} (table calls; e.g. "
                      f"sqlite3 {out} 'SELECT COUNT(*) FROM calls').", markup=False)
    else:
        console.print("The harvested calls were in a temporary file, now deleted: run "
                      "plumasync demo --out demo.db to keep them.", markup=False)
