"""The root ``plumasync`` command: global options (credentials, URLs, store, budget, verbosity)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ._common import EXIT_CODES_HELP, VERBOSE_HELP, GlobalOptions, parse_budget, setup_logging
from ._engine import ENGINE_HELP, parse_engine

__all__ = ["app"]

ROOT_EPILOG = f"""[bold]Examples[/bold]

  plumasync demo                 # no account needed: a sandbox in-process
  export PLUM_LOGIN=me PLUM_PASSWORD=...
  plumasync harvest --start 2024-05-01 --end 2024-05-02 --out calls.db
  plumasync trends volume --start 20240501 --end 20240507
  plumasync budget               # what the runs so far left of each window
  plumasync --store sqlite:////var/lib/plum/budget.db budget

Without --store, runs share one budget and one VoiceTrends authentication through a SQLite file in your
state directory (plumasync budget shows where); --store memory keeps them in the process.

{EXIT_CODES_HELP}"""

app = typer.Typer(
    name="plumasync",
    help="Plum Voice VoiceTrends and DEV Call Logs from the command line, within the rate limit.",
    epilog=ROOT_EPILOG,
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

STORE_HELP = (
    "Where the rate-limit budget and the temporary VoiceTrends credentials are kept, shared by every "
    "process using it: a SQLite file (one host) as a path or a URL, sqlite:///relative.db or "
    "sqlite:////var/lib/plum/budget.db (absolute: four slashes); redis://host:6379/0 (several hosts); or "
    "memory (this process only). Default: a SQLite file in your state directory, so that consecutive runs "
    "reuse one authentication and respect one budget.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"plumasync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    login: Annotated[str | None, typer.Option(
        "--login", envvar="PLUM_LOGIN", show_envvar=True, show_default=False,
        help="DEV account login.")] = None,
    password: Annotated[str | None, typer.Option(
        "--password", envvar="PLUM_PASSWORD", show_envvar=True, show_default=False,
        help="DEV account password. Prefer the environment variable (command lines are visible to other "
             "users); when neither is given on a terminal, it is asked for with hidden input. "
             "Never printed.")] = None,
    voicetrends_url: Annotated[str | None, typer.Option(
        "--voicetrends-url", envvar="PLUM_VOICETRENDS_URL", show_envvar=True,
        help="VoiceTrends base URL (default: https://voicetrends.plumvoice.com/api/).")] = None,
    calllogs_url: Annotated[str | None, typer.Option(
        "--calllogs-url", envvar="PLUM_CALLLOGS_URL", show_envvar=True,
        help="Call Logs base URL (default: https://hosting.plumvoice.com/ws/).")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", envvar="PLUM_STORE", show_envvar=True, show_default=False, help=STORE_HELP)] = None,
    budget: Annotated[str | None, typer.Option(
        "--budget", envvar="PLUM_BUDGET", show_envvar=True, show_default=False, metavar="LIMIT/WINDOW",
        help="Requests per window in seconds (e.g. 150/900) for VoiceTrends data and Call Logs, used until "
             "the server's rate-limit headers say otherwise; for a headerless Call Logs API it is the "
             "limit enforced. Default: Plum's documented 150/900.")] = None,
    engine: Annotated[str | None, typer.Option(
        "--engine", envvar="PLUM_ENGINE", show_envvar=True, show_default=False, metavar="auto|httpx|aiohttp",
        help=ENGINE_HELP)] = None,
    verbose: Annotated[int, typer.Option(
        "-v", "--verbose", count=True, metavar="", show_default=False, help=VERBOSE_HELP)] = 0,
    quiet: Annotated[bool, typer.Option(
        "-q", "--quiet", help="Only errors on stderr: no progress display, no warnings.")] = False,
    log_file: Annotated[Path | None, typer.Option(
        "--log-file", dir_okay=False, show_default=False,
        help="Also append the log to this file, with timestamps (INFO; DEBUG with -vv).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Plum Voice VoiceTrends and DEV Call Logs, within the rate limit.

    Start with [bold]plumasync demo[/bold]: it needs no account and no network.
    """
    opts = GlobalOptions(login=login, password=password, voicetrends_url=voicetrends_url,
                         calllogs_url=calllogs_url, store=store, verbose=verbose, quiet=quiet,
                         log_file=log_file, prog=ctx.find_root().info_name or "plumasync")
    ctx.obj = opts
    if budget is not None:
        opts.budget = parse_budget(budget)
    if engine is not None:
        opts.engine = parse_engine(engine)
    ctx.call_on_close(setup_logging(opts))
    if ctx.resilient_parsing:  # shell completion: nothing to check
        return
    opts.check_store()
