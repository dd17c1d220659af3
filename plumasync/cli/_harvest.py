"""``plumasync harvest``: every call log of a period into SQLite or JSON Lines, resumable."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import time
import warnings
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import attrs
import typer
from rich.console import Console

from ..calllogs import RetentionWarning, before_retention
from ..harvest import HarvestSummary
from ..sinks import Sink, open_sink
from ..validation import MAX_PAGE_SIZE
from ._app import app
from ._common import (
    EXIT_CODES_HELP,
    BudgetOpt,
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
    password_typed,
    quiet_below,
    resume_command,
    run_async,
)
from ._engine import EngineOpt
from ._follow import bound, run_follow
from ._metrics import serve_metrics
from ._progress import HarvestDisplay, drive

__all__ = ["harvest"]

HARVEST_EPILOG = f"""[bold]Examples[/bold]

  plumasync harvest --start 2024-05-01 --end 2024-05-02         # two whole days (UTC)
  plumasync harvest --start 2024-05-01T08:00-04:00 --end 1714608000 --jsonl calls.jsonl
  plumasync harvest --start 20240501 --end 20240501 --json      # one day; summary as JSON
  plumasync harvest --start 2024-05-01 --end 2024-05-05 --plan  # forecast only: listing requests
  plumasync harvest --since 5d --until now                      # relative times
  plumasync harvest --since 5d --follow                         # then keep following, until SIGTERM

Dates: YYYYMMDD or YYYY-MM-DD (whole UTC days: --start from its midnight, --end through the end of that
day, included, as in trends), ISO datetimes (naive ones are read as UTC) or Unix seconds (an exact
--end, excluded).
Ctrl-C stops gracefully: requests already sent finish and are stored (Ctrl-C again: drop them).
Interrupted or killed, a harvest resumes when the same command is run again: logs already stored are
skipped and cost no request.

{EXIT_CODES_HELP}"""


SinceOpt = Annotated[str | None, typer.Option(
    "--start", "--since", show_default=False,
    help="First instant (included) of the calls' start times: YYYYMMDD, YYYY-MM-DD (midnight UTC), ISO "
         "datetime (naive = UTC), Unix seconds, or a duration ago (5d, 12h, 30m).")]
UntilOpt = Annotated[str | None, typer.Option(
    "--end", "--until", show_default=False,
    help="Last day, included, for a plain date (YYYYMMDD, YYYY-MM-DD: through the end of that UTC day); an "
         "exact end, excluded, for an ISO datetime, Unix seconds, 'now' or a duration ago.")]
PlanOpt = Annotated[bool, typer.Option(
    "--plan", help="List the period (listing requests only) and print the forecast: calls, requests needed, "
                   "finish time, logs that will expire first. Fetches and writes nothing.")]
FollowOpt = Annotated[bool, typer.Option(
    "--follow", help="Keep going after catching up: list new calls once per window and fetch them, until "
                     "SIGTERM/Ctrl-C; resumes from the watermark kept beside the output.")]
MetricsPortOpt = Annotated[int | None, typer.Option(
    "--metrics-port", min=1, max=65535,
    help="Serve OpenTelemetry metrics for Prometheus on 127.0.0.1:PORT/metrics (needs plumasync[metrics]).")]


@app.command(epilog=HARVEST_EPILOG)
def harvest(
    ctx: typer.Context,
    start: SinceOpt = None,
    end: UntilOpt = None,
    number: Annotated[str | None, typer.Option("--number", help="Only calls to this phone number.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="SQLite file to fill, table calls (default: calls.db).")] = None,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl", help="JSON Lines file to append to, instead of SQLite.")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=256, help="Detail requests in flight.")] = 8,
    page_size: Annotated[int, typer.Option(
        "--page-size", min=1, max=MAX_PAGE_SIZE, help="Calls per calls/logs page (fewer pages = fewer requests).")
    ] = MAX_PAGE_SIZE,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the final summary as one JSON object on stdout (progress stays on stderr).")
    ] = False,
    plan: PlanOpt = False,
    follow: FollowOpt = False,
    metrics_port: MetricsPortOpt = None,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    voicetrends_url: VoiceTrendsOpt = None,
    calllogs_url: CallLogsOpt = None,
    store: StoreOpt = None,
    budget: BudgetOpt = None,
    engine: EngineOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Fetch every call log from --start to --end with its detail, as fast as the rate limit allows.

    Lists calls/logs, then fetches each call's calls/log in the bulk lane (the last 10% of each window
    stays free for interactive use), with a live display of progress, budget and ETA.
    """
    opts = connection(ctx, login=login, password=password, voicetrends_url=voicetrends_url,
                      calllogs_url=calllogs_url, store=store, verbose=verbose, budget=budget,
                      engine=engine)
    first, last = _period(start, end, follow=follow, plan=plan)
    target = _target(opts, first, out, jsonl)
    if metrics_port is not None:
        serve_metrics(metrics_port)
    sink = _open(target, jsonl is not None)
    quiet_below(opts, logging.ERROR)  # the display shows waits; the summary counts failures
    if follow:
        sink.close()  # each cycle opens it again
        run_async(opts, partial(run_follow, opts, first, number, target, jsonl is not None, concurrency,
                                page_size, as_json))
    if plan:
        run_async(opts, partial(_plan, opts, first, last, number, sink, page_size, as_json))
    resume = resume_command(ctx)
    if password_typed(ctx):
        resume += "   # --password omitted: set PLUM_PASSWORD or type it when asked"
    run_async(opts, partial(_run, opts, first, last, number, sink, target, concurrency, page_size, resume,
                            as_json))


def _period(start: str | None, end: str | None, *, follow: bool, plan: bool) -> tuple[datetime, datetime]:
    """The harvest's ``[first, last)`` from --start/--since and --end/--until, checked before anything else."""
    if start is None:
        raise typer.BadParameter("a start is required: --start/--since (e.g. --since 5d)", param_hint="--start")
    if follow and end is not None:
        raise typer.BadParameter("--follow runs until stopped: drop --end/--until", param_hint="--follow")
    if follow and plan:
        raise typer.BadParameter("choose one of --follow and --plan", param_hint="--follow")
    if end is None and not follow:
        raise typer.BadParameter("an end is required: --end/--until (e.g. --until now)", param_hint="--end")
    first = bound(start, "--start", end=False)
    last = bound(end or "now", "--end", end=True)
    if last <= first and not follow:
        raise typer.BadParameter(f"{end!r} is not after --start {start!r}", param_hint="--end")
    return first, last


def _target(opts: GlobalOptions, first: datetime, out: Path | None, jsonl: Path | None) -> Path:
    """The output file (checked, credentials asked for), after warning of a start before the retention."""
    if out is not None and jsonl is not None:
        raise typer.BadParameter("choose one of --out (SQLite) and --jsonl, not both", param_hint="--jsonl")
    if before_retention(first.timestamp(), time.time()) and not opts.quiet:
        opts.err.print("warning: calls/logs keeps only the previous 5 days: older calls will not be listed",
                       style="yellow", highlight=False)
    opts.credentials()
    return jsonl if jsonl is not None else (out or Path("calls.db"))


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
               target: Path, concurrency: int, page_size: int, resume: str, as_json: bool = False) -> int:
    try:
        async with opts.client() as plum:
            with warnings.catch_warnings():  # already said above, in the CLI's own words
                warnings.simplefilter("ignore", RetentionWarning)
                job = plum.calllogs.harvest(first, last, number=number, concurrency=concurrency, sink=sink,
                                            page_size=page_size)
            if not opts.quiet:
                job.on_forecast = lambda plan: opts.err.print(plan.describe(), markup=False, highlight=False)
            title = f"Harvesting calls {_when(first)} → {_when(last)} into {target}"
            signum = await drive(job, HarvestDisplay(opts.err, plum, job, title=title, quiet=opts.quiet))
            summary = job.summary()
            failures = list(job.failures)
    finally:
        sink.close()
    if as_json:
        return _print_json(opts, summary, target, signum, resume, [str(f) for f in failures])
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


async def _plan(opts: GlobalOptions, first: datetime, last: datetime, number: str | None, sink: Sink,
                page_size: int, as_json: bool) -> int:
    """``--plan``: the forecast only (listing requests, nothing written)."""
    try:
        async with opts.client() as plum:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RetentionWarning)
                job = plum.calllogs.harvest(first, last, number=number, sink=sink, page_size=page_size)
            forecast = await job.plan()
    finally:
        sink.close()
    if as_json:
        typer.echo(json.dumps(forecast.to_dict(), indent=2))
    else:
        Console(highlight=False).print(forecast.describe(), markup=False, soft_wrap=True)
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
              f"{summary.throttled} × 429 · {fmt_duration(summary.elapsed)}"
              + (f" · {summary.expired} expired before their turn" if summary.expired else ""),
              markup=False, soft_wrap=True)


def _exit_code(summary: HarvestSummary, signum: int | None) -> ExitCode:
    if signum is not None:
        return ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED
    return ExitCode.FAILED_LOGS if summary.failed else ExitCode.OK


def _print_json(opts: GlobalOptions, summary: HarvestSummary, target: Path, signum: int | None, resume: str,
                failures: list[str]) -> int:
    """``--json``: the summary as one object, for scripts (the exit code is the same as without it)."""
    code = _exit_code(summary, signum)
    state = "interrupted" if signum is not None else "complete" if not summary.failed else "finished"
    record = {**attrs.asdict(summary), "state": state, "stored": summary.fetched + summary.skipped,
              "out": str(target), "exit_code": int(code),
              "failures": [opts.scrub(text) for text in failures],
              "resume": resume if code != ExitCode.OK else None}
    typer.echo(json.dumps(record, indent=2))
    return code
