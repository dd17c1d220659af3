"""``plumasync trends RESOURCE``: one VoiceTrends report as a table or JSON."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import date, datetime, time
from functools import partial
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import Format
from ..models.voicetrends import GeographicReport, PathReport, TrendReport
from ._app import app
from ._common import (
    EXIT_CODES_HELP,
    BudgetOpt,
    GlobalOptions,
    LoginOpt,
    PasswordOpt,
    StoreOpt,
    VerboseOpt,
    VoiceTrendsOpt,
    connection,
    global_options,
    parse_date,
    run_async,
)
from ._engine import EngineOpt
from ._format import print_table

__all__ = ["trends_app"]

trends_app = typer.Typer(
    help="VoiceTrends reports (one request of the account's data budget each).",
    epilog="[bold]Example[/bold]\n\n  plumasync trends volume --start 20240501 --end 20240507 --period day",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(trends_app, name="trends")

Report = TrendReport | GeographicReport | PathReport

_SERIES = {
    "volume": "Call Volume: calls, minutes, transfers per period.",
    "events": "Event Tracker: log events, loops and form items per period.",
    "performance": "Performance: JavaScript and fetch errors, page load per period.",
    "profile": "Caller Profile: calls and unique callers per period.",
}
_FLAT = {
    "geographic": "Geographic: calls per US state and per non-US region.",
    "path": "Diagnostic Flow: visits to each form item of each application, and how they ended.",
}

StartOpt = Annotated[str, typer.Option(
    "--start", show_default=False, help="First day (included): YYYYMMDD, YYYY-MM-DD, ISO or Unix seconds.")]
EndOpt = Annotated[str, typer.Option(
    "--end", show_default=False,
    help="Last day, included (--start 20240501 --end 20240501 is that one day, as in harvest).")]
PhoneOpt = Annotated[str, typer.Option("--phone", help="One phone number, or ALL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")]


class WireFormat(str, enum.Enum):
    """``--format``."""

    JSON = "json"
    XML = "xml"


class Tool(str, enum.Enum):
    """``--tool``."""

    DEV = "dev"
    INSIGHT = "insight"
    FUSEPLUS = "fuseplus"


class Period(str, enum.Enum):
    """``--period``."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


FormatOpt = Annotated[WireFormat, typer.Option("--format",
                                               help="Wire format asked of the API (the output is the same).")]
ToolOpt = Annotated[Tool, typer.Option("--tool", help="VoiceTrends login tool.")]
PeriodOpt = Annotated[Period, typer.Option("--period", help="Bucket size.")]


def _epilog(resource: str, period: bool) -> str:
    extra = " --period week" if period else ""
    return (f"[bold]Example[/bold]\n\n  plumasync trends {resource} --start 20240501 --end 20240507{extra}"
            f" --phone ALL\n  plumasync trends {resource} --start 2024-05-01 --end 2024-05-07 --json\n\n"
            f"{EXIT_CODES_HELP}")


def _register_series(resource: str, doc: str) -> None:
    def command(ctx: typer.Context, start: StartOpt, end: EndOpt, period: PeriodOpt = Period.DAY,
                phone: PhoneOpt = "ALL", as_json: JsonOpt = False, fmt: FormatOpt = WireFormat.JSON,
                tool: ToolOpt = Tool.DEV, login: LoginOpt = None, password: PasswordOpt = None,
                voicetrends_url: VoiceTrendsOpt = None, store: StoreOpt = None, budget: BudgetOpt = None,
                engine: EngineOpt = None, verbose: VerboseOpt = 0) -> None:
        connection(ctx, login=login, password=password, voicetrends_url=voicetrends_url, store=store,
                   verbose=verbose, budget=budget, engine=engine)
        _main(ctx, resource, start, end, period.value, phone, as_json, fmt.value, tool.value)

    command.__doc__ = doc
    trends_app.command(name=resource, epilog=_epilog(resource, True))(command)


def _register_flat(resource: str, doc: str) -> None:
    def command(ctx: typer.Context, start: StartOpt, end: EndOpt, phone: PhoneOpt = "ALL",
                as_json: JsonOpt = False, fmt: FormatOpt = WireFormat.JSON, tool: ToolOpt = Tool.DEV,
                login: LoginOpt = None, password: PasswordOpt = None, voicetrends_url: VoiceTrendsOpt = None,
                store: StoreOpt = None, budget: BudgetOpt = None, engine: EngineOpt = None,
                verbose: VerboseOpt = 0) -> None:
        connection(ctx, login=login, password=password, voicetrends_url=voicetrends_url, store=store,
                   verbose=verbose, budget=budget, engine=engine)
        _main(ctx, resource, start, end, None, phone, as_json, fmt.value, tool.value)

    command.__doc__ = doc
    trends_app.command(name=resource, epilog=_epilog(resource, False))(command)


for _name, _doc in _SERIES.items():
    _register_series(_name, _doc)
for _name, _doc in _FLAT.items():
    _register_flat(_name, _doc)


def _main(ctx: typer.Context, resource: str, start: str, end: str, period: str | None, phone: str,
          as_json: bool, fmt: str, tool: str) -> None:
    opts = global_options(ctx)
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"{end!r} is before --start {start!r}", param_hint="--end")
    opts.credentials()
    run_async(opts, partial(_run, opts, resource, first, last, period, phone, as_json, fmt, tool))


async def _run(opts: GlobalOptions, resource: str, first: date, last: date, period: str | None, phone: str,
               as_json: bool, fmt: str, tool: str) -> int:
    async with opts.client(tool=tool) as plum:
        call: Callable[..., Any] = getattr(plum.voicetrends, resource)
        wire: Format = "xml" if fmt == "xml" else "json"
        if period is None:
            report: Report = await call(first, last, phone=phone, format=wire)
        else:
            report = await call(first, last, period=period, phone=phone, format=wire)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    title = f"{resource} {first.isoformat()} → {last.isoformat()}" + (f" by {period}" if period else "")
    console = Console(highlight=False)
    console.print(Text(f"{title}, phone {phone}", style="bold"))
    if isinstance(report, GeographicReport):
        print_table(console, _geographic(report))
    elif isinstance(report, PathReport):
        if not report.applications:
            console.print("no data")
        for table in _path(report):
            print_table(console, table)
    else:
        print_table(console, _series(report))
    return 0


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}"


def _stamp(moment: datetime) -> str:
    return moment.date().isoformat() if moment.time() == time(0) else moment.isoformat(timespec="minutes")


def _series(report: TrendReport) -> Table:
    names = list(report.series)
    table = Table()
    table.add_column("period start")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for moment in report.timestamps():
        table.add_row(_stamp(moment), *(_number(report.series[name].get(moment)) for name in names))
    if not names:
        table.caption = "no data"
    return table


def _geographic(report: GeographicReport) -> Table:
    table = Table()
    table.add_column("area")
    table.add_column("region")
    table.add_column("calls", justify="right")
    hidden = 0
    for area, counts in (("US", report.us), ("non-US", report.non_us)):
        for region, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if count == 0:
                hidden += 1
                continue
            table.add_row(area, region, f"{count:,}")
    table.add_section()
    table.add_row("all", "", f"{report.total:,}")
    if hidden:
        table.caption = f"{hidden} regions without calls not shown"
    return table


def _path(report: PathReport) -> list[Table]:
    tables = []
    for url, nodes in report.applications.items():
        table = Table(title=Text(url), title_justify="left")
        for column in ("page", "form", "item"):
            table.add_column(column, overflow="fold")
        for column in ("visits", "filled", "nomatch", "noinput", "transfer", "disconnect"):
            table.add_column(column, justify="right", overflow="fold")
        for n in nodes:
            counts = (n.visits, n.filled, n.nomatch, n.noinput, n.transfer, n.disconnect)
            table.add_row(n.page, n.form, n.item, *(f"{v:,}" for v in counts))
        tables.append(table)
    return tables
