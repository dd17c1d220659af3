"""The root ``plumasync`` command: global options (credentials, URLs, store, verbosity)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import EXIT_CODES_HELP, GlobalOptions, setup_logging

__all__ = ["app"]

ROOT_EPILOG = f"""[bold]Examples[/bold]

  plumasync demo                 # no account needed: a sandbox in-process
  export PLUM_LOGIN=me PLUM_PASSWORD=...
  plumasync harvest --start 2024-05-01 --end 2024-05-02 --out calls.db
  plumasync trends volume --start 20240501 --end 20240507
  plumasync budget --store sqlite:///budget.db

{EXIT_CODES_HELP}"""

app = typer.Typer(
    name="plumasync",
    help="Plum Voice VoiceTrends and DEV Call Logs from the command line, within the rate limit.",
    epilog=ROOT_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


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
        "--store", envvar="PLUM_STORE", show_envvar=True,
        help="Where the rate-limit budget is kept, shared by every process using it: "
             "sqlite:///path.db (one host) or redis://host:6379/0 (several hosts). "
             "Default: this process's memory.")] = None,
    verbose: Annotated[int, typer.Option(
        "-v", "--verbose", count=True,
        help="Log to stderr (-v: info, -vv: debug) and show tracebacks of errors.")] = 0,
) -> None:
    """Plum Voice VoiceTrends and DEV Call Logs, within the rate limit.

    Start with [bold]plumasync demo[/bold]: it needs no account and no network.
    """
    opts = GlobalOptions(login=login, password=password, voicetrends_url=voicetrends_url,
                         calllogs_url=calllogs_url, store=store, verbose=verbose,
                         prog=ctx.find_root().info_name or "plumasync")
    ctx.obj = opts
    ctx.call_on_close(setup_logging(opts))
