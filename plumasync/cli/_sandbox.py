"""``plumasync sandbox``: the simulated Plum server on loopback, in the foreground."""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.console import Console

from ..governor.clock import ScaledClock
from ..sandbox import SandboxConfig, serve
from ..sandbox.server import check_loopback
from ._app import app
from ._common import EXIT_CODES_HELP, VerboseOpt, global_options
from ._logging import apply_verbosity

__all__ = ["sandbox"]

SANDBOX_EPILOG = f"""[bold]Examples[/bold]

  plumasync sandbox
  plumasync sandbox --port 9000 --limit 30 --window 60 --calls 2000 --fail-rate 0.02
  plumasync sandbox -v          # one line per request: method, path, status, remaining/limit

It prints the URLs and the account to use, then serves until Ctrl-C.  Only loopback addresses are
accepted.  Limits, windows and Date headers run on the sandbox's clock (see --scale).

{EXIT_CODES_HELP}"""


@app.command(epilog=SANDBOX_EPILOG)
def sandbox(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Loopback address to listen on.")] = "127.0.0.1",
    limit: Annotated[int, typer.Option("--limit", min=0,
                                       help="Data and Call Logs requests per window.")] = 150,
    window: Annotated[int, typer.Option("--window", min=1, help="Window length in seconds.")] = 900,
    auth_limit: Annotated[int, typer.Option("--auth-limit", min=0,
                                            help="VoiceTrends authentications per window.")] = 15,
    calls: Annotated[int, typer.Option("--calls", min=0, help="Generated calls.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 0,
    skew: Annotated[float, typer.Option("--skew", help="Server clock offset in seconds.")] = 0.0,
    tenant: Annotated[int, typer.Option(
        "--tenant", min=0, help="Requests another tenant spends at the start of every window (data and "
                                "Call Logs).")] = 0,
    calllogs_headers: Annotated[bool, typer.Option(
        "--calllogs-headers/--no-calllogs-headers",
        help="Send X-RateLimit-* headers on Call Logs responses (the limit is enforced either way).")] = True,
    fail_rate: Annotated[float, typer.Option("--fail-rate", min=0.0, max=1.0,
                                             help="Share of requests answered with HTTP 500.")] = 0.0,
    drop_rate: Annotated[float, typer.Option("--drop-rate", min=0.0, max=1.0,
                                             help="Share of connections dropped mid-response.")] = 0.0,
    latency: Annotated[float, typer.Option("--latency", min=0.0,
                                           help="Seconds added to every response.")] = 0.0,
    scale: Annotated[float, typer.Option(
        "--scale", min=0.001, help="Sandbox clock speed (1: real time).  Clients in other processes do not "
                                   "share it: they then wait for resets in real time.")] = 1.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Serve a simulated Plum server (VoiceTrends and Call Logs) on 127.0.0.1 for tests and trials.

    With -v, each request is logged on stderr (method, path, status, and the rate-limit group's
    remaining/limit after it), to see what your code sends.
    """
    _log_requests(ctx, verbose)
    try:
        bind = check_loopback(host)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--host") from None
    clock = ScaledClock(scale)
    limits = {"auth": (auth_limit, float(window)), "data": (limit, float(window)),
              "calllogs": (limit, float(window))}
    tenant_spend = {"data": tenant, "calllogs": tenant} if tenant else {}
    try:
        config = SandboxConfig(clock=clock, seed=seed, skew=skew, limits=limits, tenant_spend=tenant_spend,
                               calllogs_headers=calllogs_headers, fail_rate=fail_rate, drop_rate=drop_rate,
                               latency=latency, calls_count=calls)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    port = _free(bind, port)
    shown = f"[{bind}]" if ":" in bind else bind
    out = Console(highlight=False)
    _banner(out, config, f"http://{shown}:{port}", f"{limit} per {window} s (data, Call Logs), {auth_limit} "
            f"authentications; clock ×{scale:g}")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops gracefully, then re-raises the signal
        serve(config, host=bind, port=port)
    out.print("sandbox stopped")


def _log_requests(ctx: typer.Context, verbose: int) -> None:
    """-v (here or before the command): one log line per request on stderr."""
    opts = global_options(ctx)
    opts.verbose += verbose
    if opts.verbose:
        # The request log is DEBUG on plumasync.sandbox (quiet inside the demo); -v here asks for it.
        opts.verbose = max(opts.verbose, 2)
        apply_verbosity(opts)
        logging.getLogger("uvicorn.access").disabled = True  # the sandbox's own line says more


def _banner(out: Console, config: SandboxConfig, url: str, limits: str) -> None:
    """The URLs, the account, the limits and a command to try, printed before serving."""
    calls = config.calls_count
    start = config.start_of_calls
    end = start + math.ceil(calls * config.calls_spacing)
    out.print(f"Plum sandbox on {url}", style="bold")
    out.print(f"  VoiceTrends  {url}/api/\n  Call Logs    {url}/ws/")
    out.print("  account      demo / demo-password (DEV login; valid for every VoiceTrends tool)")
    out.print(f"  limits       {limits}")
    out.print(f"  calls        {calls}, from {_iso(start)} to {_iso(end)}")
    out.print("Use it from another shell:", style="bold")
    out.print(f"  export PLUM_LOGIN=demo PLUM_PASSWORD=demo-password PLUM_VOICETRENDS_URL={url}/api/ "
              f"PLUM_CALLLOGS_URL={url}/ws/", soft_wrap=True)
    out.print(f"  plumasync harvest --start {start} --end {end} --out calls.db", soft_wrap=True)
    out.print("Press Ctrl-C to stop.")
    out.file.flush()


def _free(bind: str, port: int) -> int:
    """``port`` if it can be bound (a free one for 0); a usage error otherwise."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            raise typer.BadParameter(f"cannot listen on {bind}:{port}: {exc.strerror}",
                                     param_hint="--port") from None
        return int(sock.getsockname()[1])


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
