"""What every command shares: exit codes, global options, date parsing, error reporting, formatting."""

from __future__ import annotations

import enum
import logging
import re
import shlex
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, NoReturn

import anyio
import attrs
import typer
from rich.console import Console

from ..client import PlumClient
from ..config import Budget, check_base_url
from ..errors import AuthenticationError, ConfigurationError, PlumError, ValidationError, mask_secrets
from ..storeurl import parse_store_url, redact_store_url
from ..wire import default_timezone
from ._engine import parse_engine
from ._format import fmt_duration, fmt_local
from ._logging import apply_verbosity, quiet_below, setup_logging
from ._store import default_store_path, prepare_default_store

__all__ = [
    "ExitCode",
    "GlobalOptions",
    "fmt_duration",
    "fmt_local",
    "parse_date",
    "parse_time",
    "quiet_below",
    "redact_url",
    "resume_command",
    "run_async",
    "setup_logging",
]

log = logging.getLogger("plumasync")



class ExitCode(enum.IntEnum):
    """The command line's exit statuses (the same for every command)."""

    OK = 0
    #: harvest finished, but some logs still failed after every retry
    FAILED_LOGS = 1
    #: bad usage or a value rejected before any request (dates, page size, URLs...)
    USAGE = 2
    #: the API refused the credentials
    AUTH = 3
    #: any other API, transport or I/O error
    ERROR = 4
    #: stopped by Ctrl-C (SIGINT)
    INTERRUPTED = 130
    #: stopped by SIGTERM
    TERMINATED = 143


EXIT_CODES_HELP = (
    "Exit codes: 0 done · 1 finished but some logs failed after retries · 2 usage or validation error · "
    "3 authentication failed · 4 other API, transport or I/O error · 130 interrupted by Ctrl-C "
    "(143 by SIGTERM)."
)


@attrs.define
class GlobalOptions:
    """The options given before the command (``plumasync --login L harvest ...``), and shared state."""

    login: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    voicetrends_url: str | None = None
    calllogs_url: str | None = None
    #: ``--store`` as given; None: the default store in the user's state directory (see ``_store``).
    store: str | None = None
    #: ``--budget LIMIT/WINDOW``: the data and Call Logs groups' budget until headers say otherwise.
    budget: Budget | None = None
    #: ``--engine``: auto, httpx or aiohttp (None: ``PLUM_ENGINE``, else auto).
    engine: str | None = None
    verbose: int = 0
    quiet: bool = False
    log_file: Path | None = None
    prog: str = "plumasync"
    #: The one console writing to stderr (progress, warnings, errors): rich needs a single owner.
    err: Console = attrs.field(factory=lambda: Console(stderr=True))

    def scrub(self, text: str) -> str:
        """``text`` with the password (if any) masked: a last line of defence for every message printed."""
        return mask_secrets(text, (self.login, self.password))  # raw, %2F, +, HTML, JSON, base64 forms

    def credentials(self) -> tuple[str, str]:
        """Login and password from the options or the environment; prompt (hidden) only on a terminal."""
        login, password = self.login, self.password
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
        if not login and interactive:
            login = str(typer.prompt("Plum DEV login", err=True))
            self.login = login
        if not login:
            raise typer.BadParameter("no Plum login: pass --login or set PLUM_LOGIN", param_hint="--login")
        if password is None and interactive:
            password = str(typer.prompt("Plum password", hide_input=True, err=True))
            self.password = password
        if password is None:
            raise typer.BadParameter("no Plum password: set PLUM_PASSWORD (or pass --password)",
                                     param_hint="--password")
        return login, password

    def check_urls(self) -> None:
        """Reject bad base URLs before anything else happens (exit 2)."""
        urls = (("--voicetrends-url", self.voicetrends_url), ("--calllogs-url", self.calllogs_url))
        for option, url in urls:
            if url is not None:
                try:
                    check_base_url(url, option.lstrip("-").replace("-", "_"))
                except ConfigurationError as exc:
                    raise typer.BadParameter(str(exc), param_hint=option) from None

    def check_store(self) -> None:
        """Reject a store URL that does not parse, or a SQLite store in a missing folder (exit 2)."""
        if self.store is None:
            return
        try:
            parse_store_url(self.store).check_directory()
        except ConfigurationError as exc:
            raise typer.BadParameter(self.scrub(str(exc)), param_hint="--store") from None

    def store_url(self) -> str:
        """The store this run uses: ``--store``, else the default SQLite file (its folder created 0700)."""
        if self.store is not None:
            return self.store
        return str(prepare_default_store())

    def store_label(self) -> str:
        """The store, for people: a URL without its password, or the default file's path."""
        if self.store is None:
            return f"{default_store_path()} (the default store)"
        if self.store.strip() == "memory":
            return "memory (this process only)"
        return redact_url(self.store)

    def client(self, **options: object) -> PlumClient:
        """A :class:`PlumClient` for these options (credentials required)."""
        login, password = self.credentials()
        if self.budget is not None:
            options.setdefault("budget", self.budget)
        if self.engine is not None:
            options.setdefault("engine", self.engine)
        log.info("budget store: %s", self.store_label())
        return PlumClient(login=login, password=password, voicetrends_url=self.voicetrends_url,
                          calllogs_url=self.calllogs_url, store=self.store_url(),
                          **options)  # type: ignore[arg-type]


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The :class:`GlobalOptions` of the running command line."""
    obj = ctx.find_root().obj
    if not isinstance(obj, GlobalOptions):  # a command invoked without the root callback (tests)
        obj = GlobalOptions()
        ctx.find_root().obj = obj
    return obj


# The connection options are global (``plumasync --login L harvest ...``), and accepted after the command
# name too (``plumasync harvest ... --login L``), where they override the global ones.
_PANEL = "Connection (also accepted before the command; env vars apply)"
LoginOpt = Annotated[str | None, typer.Option("--login", show_default=False, rich_help_panel=_PANEL,
                                              help="DEV account login (env PLUM_LOGIN).")]
PasswordOpt = Annotated[str | None, typer.Option(
    "--password", show_default=False, rich_help_panel=_PANEL,
    help="DEV account password; prefer env PLUM_PASSWORD, or the hidden prompt on a terminal.")]
VoiceTrendsOpt = Annotated[str | None, typer.Option("--voicetrends-url", show_default=False,
                                                    rich_help_panel=_PANEL, help="VoiceTrends base URL.")]
CallLogsOpt = Annotated[str | None, typer.Option("--calllogs-url", show_default=False, rich_help_panel=_PANEL,
                                                 help="Call Logs base URL.")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store", show_default=False, rich_help_panel=_PANEL,
    help="Budget and credentials store: a file path, sqlite:////abs/path.db, redis://host:6379/0 or memory "
         "(env PLUM_STORE; default: a file in your state directory).")]
BudgetOpt = Annotated[str | None, typer.Option(
    "--budget", show_default=False, rich_help_panel=_PANEL, metavar="LIMIT/WINDOW",
    help="Requests per window in seconds, e.g. 150/900 (env PLUM_BUDGET).")]
#: A counted flag: -v, -vv (typer would show it as taking an integer).
VERBOSE_HELP = "Say more on stderr: -v info, -vv debug (repeat the flag; errors then show tracebacks)."
VerboseOpt = Annotated[int, typer.Option("-v", "--verbose", count=True, rich_help_panel=_PANEL, metavar="",
                                         show_default=False, help=VERBOSE_HELP)]


def parse_budget(text: str, option: str = "--budget") -> Budget:
    """``--budget LIMIT/WINDOW`` → :class:`Budget`, or a usage error (exit 2) before any request."""
    try:
        return Budget.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def connection(ctx: typer.Context, *, login: str | None = None, password: str | None = None,
               voicetrends_url: str | None = None, calllogs_url: str | None = None, store: str | None = None,
               verbose: int = 0, budget: str | None = None, engine: str | None = None) -> GlobalOptions:
    """The global options, overridden by the connection options given after the command name."""
    opts = global_options(ctx)
    if login is not None:
        opts.login = login
    if password is not None:
        opts.password = password
    if voicetrends_url is not None:
        opts.voicetrends_url = voicetrends_url
    if calllogs_url is not None:
        opts.calllogs_url = calllogs_url
    if store is not None:
        opts.store = store
    if budget is not None:
        opts.budget = parse_budget(budget)
    if engine is not None:
        opts.engine = parse_engine(engine)
    if verbose:
        opts.verbose += verbose
        apply_verbosity(opts)
    opts.check_urls()
    opts.check_store()
    return opts


def _typed(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def typed_options(ctx: typer.Context, skip: tuple[str, ...] = ("password",)) -> list[str]:
    """The options of ``ctx`` that were typed on the command line, as arguments to repeat them."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name in skip or param.param_type_name != "option" or not _typed(ctx, name):
            continue
        value = ctx.params.get(name)
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if getattr(param, "count", False):
            args.extend([flag] * int(value or 0))
        elif getattr(param, "is_flag", False):
            if value:
                args.append(flag)
        elif value is not None:
            text = str(value.value if isinstance(value, enum.Enum) else value)
            if name == "store":
                text = redact_url(text)
            args.extend([flag, text])
    return args


def resume_command(ctx: typer.Context) -> str:
    """The command line that repeats this one (the password is never repeated: give it by env or prompt)."""
    root = ctx.find_root()
    opts = global_options(ctx)
    parts = shlex.split(opts.prog) + typed_options(root)  # type: ignore[arg-type]
    if ctx.info_name:
        parts.append(ctx.info_name)
    parts += typed_options(ctx)
    return shlex.join(parts)


def password_typed(ctx: typer.Context) -> bool:
    """True when ``--password`` was given on the command line (so a resume line must say where it went)."""
    return _typed(ctx.find_root(), "password") or _typed(ctx, "password")  # type: ignore[arg-type]


def redact_url(url: str) -> str:
    """``url`` without a password (see :func:`plumasync.storeurl.redact_store_url`)."""
    return redact_store_url(url)


# -- dates ------------------------------------------------------------------------------------------------

_DATE_FORMS = "YYYYMMDD, YYYY-MM-DD, an ISO datetime (2024-05-01T09:30-04:00) or Unix seconds"


def _iso(value: str) -> str:
    # Python 3.10's fromisoformat knows neither "Z" nor the basic format.
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    return value


def _instant(text: str, option: str, zone: tzinfo, noun: str) -> datetime:
    """YYYYMMDD (midnight), Unix seconds or ISO → aware datetime; naive values are read in ``zone``."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{8}", value):
            parsed = datetime.strptime(value, "%Y%m%d")
        elif re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), zone)
        else:
            parsed = datetime.fromisoformat(_iso(value))
    except (ValueError, OverflowError, OSError):
        raise typer.BadParameter(f"{text!r} is not a {noun}: use {_DATE_FORMS}", param_hint=option) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def parse_time(text: str, option: str) -> datetime:
    """A harvest bound → aware datetime.  Dates are midnight UTC; naive datetimes are read as UTC."""
    return _instant(text, option, timezone.utc, "time")


_PLAIN_DATE = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}")


def parse_end(text: str, option: str = "--end") -> datetime:
    """A harvest's end → the instant it stops before.  A plain date is a whole day, included (as in
    ``trends``): ``--end 2024-05-02`` stops at midnight UTC starting 2024-05-03.  A time or Unix
    seconds is the exact (excluded) end."""
    moment = parse_time(text, option)
    return moment + timedelta(days=1) if _PLAIN_DATE.fullmatch(text.strip()) else moment


def parse_date(text: str, option: str) -> date:
    """A VoiceTrends date → date.  Unix seconds are read in the account's time zone."""
    return _instant(text, option, default_timezone(), "date").date()


# -- running and errors -----------------------------------------------------------------------------------


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    inner = getattr(exc, "exceptions", None)  # an exception group (builtin, or the 3.10 backport)
    if isinstance(inner, tuple) and inner and all(isinstance(e, BaseException) for e in inner):
        for leaf in inner:
            yield from _leaves(leaf)
    else:
        yield exc


def root_cause(exc: BaseException) -> BaseException:
    """The exception worth reporting inside (nested) exception groups: a PlumError first."""
    leaves = list(_leaves(exc)) or [exc]
    for kind in (PlumError, Exception):  # cancellations (BaseException) only when nothing else is there
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an error."""
    if isinstance(exc, (ValidationError, ConfigurationError)):
        return ExitCode.USAGE, f"error: {exc}"
    if isinstance(exc, AuthenticationError):
        return ExitCode.AUTH, (f"authentication failed: {exc} (check --login/--password or "
                               "PLUM_LOGIN/PLUM_PASSWORD)")
    if isinstance(exc, PlumError):
        return ExitCode.ERROR, f"error: {exc}"
    if isinstance(exc, OSError):
        return ExitCode.ERROR, f"error: {exc}"
    return ExitCode.ERROR, f"unexpected error: {type(exc).__name__}: {exc}"


def report_error(opts: GlobalOptions, exc: BaseException) -> ExitCode:
    """Print one clear line for ``exc`` (the traceback too with -v) and return its exit code."""
    code, message = classify(exc)
    if opts.verbose:
        opts.err.print(opts.scrub("".join(traceback.format_exception(exc))), markup=False, highlight=False,
                       soft_wrap=True)
    opts.err.print(opts.scrub(message), markup=False, highlight=False, soft_wrap=True, style="bold red")
    return code


def run_async(opts: GlobalOptions, fn: Callable[[], Awaitable[int]]) -> NoReturn:
    """Run ``fn`` on an event loop and exit with its code, or with the code of the error it raised."""
    try:
        code = int(anyio.run(fn))
    except KeyboardInterrupt:
        opts.err.print("interrupted", style="bold red")
        code = ExitCode.INTERRUPTED
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except BaseException as exc:
        cause = root_cause(exc)
        if isinstance(cause, (typer.Exit, typer.Abort, typer.TyperException, SystemExit)):
            raise cause from None
        if isinstance(cause, KeyboardInterrupt):
            opts.err.print("interrupted", style="bold red")
            code = ExitCode.INTERRUPTED
        else:
            code = report_error(opts, cause)
    raise typer.Exit(code)
