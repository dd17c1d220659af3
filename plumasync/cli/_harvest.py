"""``plumasync harvest``: every call log of a period into SQLite or JSON Lines, resumable."""

from __future__ import annotations

import logging
import signal
import sqlite3
import time
import warnings
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..calllogs import RetentionWarning, before_retention
from ..harvest import HarvestSummary
from ..sinks import Sink, open_sink
from ._app import app
from ._common import (
    EXIT_CODES_HELP,
    CallLogsOpt,
    ExitCode,
    GlobalOptions,
    LoginOpt,
    PasswordOpt,
    StoreOpt,
    VerboseOpt,
    VoiceTrendsOpt,
    connection,
    fmt_duration,
    parse_time,
    password_typed,
    quiet_below,
    resume_command,
    run_async,
)
from ._progress import HarvestDisplay, drive

__all__ = ["harvest"]

HARVEST_EPILOG = f"""[bold]Examples[/bold]

  plumasync harvest --start 2024-05-01 --end 2024-05-02
  plumasync harvest --start 2024-05-01T08:00-04:00 --end 1714608000 --jsonl calls.jsonl

Dates: YYYYMMDD, YYYY-MM-DD (midnight UTC), ISO datetimes (naive ones are read as UTC) or Unix seconds.
Ctrl-C stops gracefully: requests already sent finish and are stored (Ctrl-C again: drop them).
Interrupted or killed, a harvest resumes when the same command is run again: logs already stored are
skipped and cost no request.

{EXIT_CODES_HELP}"""


@app.command(epilog=HARVEST_EPILOG)
def harvest(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", show_default=False,
                                       help="First instant (included) of the calls' start times: YYYYMMDD, "
                                            "YYYY-MM-DD, ISO datetime (naive = UTC) or Unix seconds.")],
    end: Annotated[str, typer.Option("--end", show_default=False,
                                     help="Last instant (excluded).")],
    number: Annotated[str | None, typer.Option("--number", help="Only calls to this phone number.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="SQLite file to fill, table calls (default: calls.db).")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="JSON Lines file to append to, instead of SQLite.")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=256, help="Detail requests in flight.")] = 8,
    page_size: Annotated[int, typer.Option(
        "--page-size", min=1, max=10_000, help="Calls per calls/logs page (fewer pages = fewer requests).")
    ] = 10_000,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    voicetrends_url: VoiceTrendsOpt = None,
    calllogs_url: CallLogsOpt = None,
    store: StoreOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Fetch every call log of [start, end) with its detail, as fast as the rate limit allows.

    Lists calls/logs, then fetches each call's calls/log in the bulk lane (the last 10% of each window
    stays free for interactive use), with a live display of progress, budget and ETA.
    """
    opts = connection(ctx, login=login, password=password, voicetrends_url=voicetrends_url,
                      calllogs_url=calllogs_url, store=store, verbose=verbose)
    first, last = parse_time(start, "--start"), parse_time(end, "--end")
    if last <= first:
        raise typer.BadParameter(f"{end!r} is not after --start {start!r}", param_hint="--end")
    if out is not None and jsonl is not None:
        raise typer.BadParameter("choose one of --out (SQLite) and --jsonl, not both", param_hint="--jsonl")
    if before_retention(first.timestamp(), time.time()):
        opts.err.print("warning: calls/logs keeps only the previous 5 days: older calls will not be listed",
                       style="yellow", highlight=False)
    opts.credentials()
    target = jsonl if jsonl is not None else (out or Path("calls.db"))
    sink = _open(target, jsonl is not None)
    resume = resume_command(ctx)
    if password_typed(ctx):
        resume += "   # --password omitted: set PLUM_PASSWORD or type it when asked"
    quiet_below(opts, logging.ERROR)  # the display shows waits; the summary counts failures
    run_async(opts, partial(_run, opts, first, last, number, sink, target, concurrency, page_size, resume))


def _open(target: Path, is_jsonl: bool) -> Sink:
    option = "--jsonl" if is_jsonl else "--out"
    if not target.parent.is_dir():
        raise typer.BadParameter(f"directory {str(target.parent)!r} does not exist", param_hint=option)
    try:
        sink = open_sink(None, jsonl=target) if is_jsonl else open_sink(target)
    except (OSError, sqlite3.Error, ValueError) as exc:
        raise typer.BadParameter(f"cannot use {str(target)!r}: {exc}", param_hint=option) from None
    assert sink is not None
    return sink


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def _run(opts: GlobalOptions, first: datetime, last: datetime, number: str | None, sink: Sink,
               target: Path, concurrency: int, page_size: int, resume: str) -> int:
    try:
        async with opts.client() as plum:
            with warnings.catch_warnings():  # already said above, in the CLI's own words
                warnings.simplefilter("ignore", RetentionWarning)
                job = plum.calllogs.harvest(first, last, number=number, concurrency=concurrency, sink=sink,
                                            page_size=page_size)
            title = f"Harvesting calls {_when(first)} → {_when(last)} into {target}"
            signum = await drive(job, HarvestDisplay(opts.err, plum, job, title=title))
            summary = job.summary()
            failures = list(job.failures)
    finally:
        sink.close()
    out = Console(highlight=False)
    _print_summary(out, summary, target, signum)
    if signum is not None:
        out.print("Resume with the same command (logs already stored cost no request):")
        out.print(f"  {resume}", markup=False, soft_wrap=True)
        return ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
    if summary.failed:
        hint = "" if opts.verbose else " (run with -v to list them)"
        out.print(f"{_n(summary.failed, 'log')} failed after every retry{hint}.")
        if opts.verbose:
            for failure in failures:
                out.print(f"  {opts.scrub(str(failure))}", markup=False, soft_wrap=True)
        out.print("Run the same command again to retry just those:")
        out.print(f"  {resume}", markup=False, soft_wrap=True)
        return ExitCode.FAILED_LOGS
    return ExitCode.OK


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _print_summary(out: Console, summary: HarvestSummary, target: Path, signum: int | None) -> None:
    stored = summary.fetched + summary.skipped
    state = "interrupted" if signum is not None else "complete" if not summary.failed else "finished"
    total = str(summary.total) if summary.pages else "?"
    requests = _n(summary.requests, "request")
    out.print(f"Harvest {state}: {stored} of {total} logs stored in {target} ({summary.fetched} fetched now, "
              f"{summary.skipped} already there, {summary.failed} failed) · {requests} · "
              f"{summary.throttled} × 429 · {fmt_duration(summary.elapsed)}", markup=False, soft_wrap=True)
