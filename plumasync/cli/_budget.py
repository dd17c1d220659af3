"""``plumasync budget``: the rate-limit governor's state, per budget group."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..client import open_store
from ..config import AUTH_BUDGET, Budget
from ..governor import GroupKey, GroupSnapshot
from ..governor.clock import SystemClock
from ._app import app
from ._common import (
    EXIT_CODES_HELP,
    CallLogsOpt,
    GlobalOptions,
    LoginOpt,
    PasswordOpt,
    VerboseOpt,
    VoiceTrendsOpt,
    connection,
    fmt_local,
    run_async,
)
from ._format import print_table
from ._store import default_store_path

__all__ = ["budget"]

BUDGET_EPILOG = f"""[bold]Examples[/bold]

  plumasync budget                              # the default store: what earlier runs left
  plumasync budget --store /var/lib/plum/budget.db   # or sqlite:////var/lib/plum/budget.db
  plumasync budget --store redis://localhost:6379/0 --json

Costs no request: the state is read from the store.  Without --store that is the CLI's default store
(a SQLite file in your state directory, shared by every plumasync run); with credentials only this
account's groups are shown, without them every group the store holds.

{EXIT_CODES_HELP}"""


@app.command(epilog=BUDGET_EPILOG)
def budget(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Option(
        "--store", help="Store to read (overrides the global --store / PLUM_STORE).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    login: LoginOpt = None,
    password: PasswordOpt = None,
    voicetrends_url: VoiceTrendsOpt = None,
    calllogs_url: CallLogsOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Show each budget group's state: limit, remaining, in flight, next reset, pauses, waiters.

    Reads the store the other commands use (default: the CLI's SQLite file in your state directory).
    With credentials, the account's three groups (VoiceTrends auth and data, Call Logs); without them,
    every group the store holds.
    """
    opts = connection(ctx, login=login, password=password, voicetrends_url=voicetrends_url,
                      calllogs_url=calllogs_url, store=store, verbose=verbose)
    memory = opts.store is not None and opts.store.strip() == "memory"
    if opts.login and opts.password is not None:
        run_async(opts, partial(_account, opts, as_json))
    if opts.store is None and not default_store_path().exists():  # reading it must not create it
        _show([], f"{opts.store_label()}: no run has used it yet", as_json)
        raise typer.Exit(0)
    if memory:
        raise typer.BadParameter(
            "a memory store is empty in a new process: give credentials (PLUM_LOGIN/PLUM_PASSWORD) to see "
            "this account's default budget, or name a shared store", param_hint="--store")
    run_async(opts, partial(_store, opts, opts.store_url(), as_json))


async def _account(opts: GlobalOptions, as_json: bool) -> int:
    async with opts.client() as plum:
        snaps = await plum.fetch_budget_snapshot()
        rows = [(plum.groups[name], snap) for name, snap in snaps.items()]
    _show(rows, opts.store_label(), as_json)
    return 0


async def _store(opts: GlobalOptions, spec: str, as_json: bool) -> int:
    store = open_store(spec, SystemClock())
    try:
        rows = []
        for key in await store.keys():
            policy = (AUTH_BUDGET if key.group == "auth" else opts.budget or Budget()).policy()
            rows.append((key, await store.snapshot(key, policy)))
    finally:
        await store.aclose()
    _show(rows, opts.store_label(), as_json)
    return 0


_FIELDS = ("mode", "limit", "remaining", "available", "in_flight", "reset_at", "paused_until", "contended",
           "admitted", "throttled", "waiters")


def _show(rows: list[tuple[GroupKey, GroupSnapshot]], where: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"key": str(key), **snap.to_dict()} for key, snap in rows], indent=2))
        return
    console = Console(highlight=False)
    if not rows:
        console.print(f"no budget groups in {where}", markup=False)
        return
    now = time.time()
    table = Table(title=Text(f"Budget groups in {where}"), title_justify="left")
    table.add_column("")
    for key, snap in rows:
        table.add_column(Text(f"{snap.group}\n{key.host}\n{key.account}"), justify="right")
    for field in _FIELDS:
        cells = []
        for _key, snap in rows:
            value = getattr(snap, field)
            if field in ("reset_at", "paused_until"):
                cells.append(fmt_local(value, now))
            elif value is None:
                cells.append("—")
            else:
                cells.append(str(value))
        label = {"in_flight": "in flight", "reset_at": "next reset", "paused_until": "paused until",
                 "throttled": "429s", "available": "available now"}.get(field, field)
        table.add_row(label, *cells)
    print_table(console, table)
