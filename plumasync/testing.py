"""Helpers for tests, users' tests included: a client for the sandbox, its bodies, and the window arithmetic.

The clocks (``FakeClock``, ``ScaledClock``) are imported from :mod:`plumasync` itself.

::

    from plumasync.sandbox import SandboxConfig, SandboxServer
    from plumasync import ScaledClock
    from plumasync.testing import sandbox_client

    clock = ScaledClock(100)                    # 15-minute windows pass in 9 s
    with SandboxServer(SandboxConfig(clock=clock)) as server:
        async with sandbox_client(server, clock=clock) as plum:
            ...
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx

from .client import PlumClient
from .governor.clock import Clock
from .governor.core.arithmetic import minimum_duration, until_reset, windows_needed

__all__ = [
    "enter_window",
    "minimum_duration",
    "sandbox_bodies",
    "sandbox_client",
    "start_time_in_window",
    "until_reset",
    "window_phase",
    "windows_needed",
]


def sandbox_client(server: Any, *, login: str = "demo", password: str = "demo-password",
                   clock: Clock | None = None, **options: Any) -> PlumClient:
    """A :class:`PlumClient` pointed at a running :class:`~plumasync.sandbox.SandboxServer`.

    ``clock`` should be the clock the sandbox was configured with (a :class:`ScaledClock` to compress
    time).  Other keyword arguments go to :class:`PlumClient`.
    """
    return PlumClient(login=login, password=password, voicetrends_url=server.voicetrends_url,
                      calllogs_url=server.calllogs_url, clock=clock, **options)


def window_phase(now: float, window: float) -> float:
    """Where ``now`` (server time) falls in its fixed, clock-aligned window: 0.0 at the start, 1.0 at the end."""
    return (now % window) / window


def start_time_in_window(now: float, window: float, *, skew: float = 0.0, earliest: float = 0.05,
                         latest: float = 0.9) -> float:
    """The first clock time at or after ``now`` whose server-time phase lies in ``[earliest, latest]``."""
    server = now + skew
    phase = window_phase(server, window)
    if earliest <= phase <= latest:
        return now
    start = math.floor(server / window) * window
    target = start + earliest * window if phase < earliest else start + window + earliest * window
    return target - skew


async def enter_window(clock: Clock, window: float, *, skew: float = 0.0, earliest: float = 0.05,
                       latest: float = 0.9) -> float:
    """Sleep until the server-time phase of the window is in ``[earliest, latest]``; return the time.

    Compressed windows shrink the budget's time but not the network's: a job started a few real
    milliseconds before a reset can lose that window's capacity to latency alone.  Tests that compare a
    job's duration with the window arithmetic's minimum start it clear of the reset.
    """
    when = start_time_in_window(clock.now(), window, skew=skew, earliest=earliest, latest=latest)
    await clock.sleep(max(0.0, when - clock.now()))
    return clock.now()


def sandbox_bodies(entries: int = 50) -> dict[tuple[str, str], bytes]:
    """Call Logs bodies exactly as the sandbox serves them: ``{(service, fmt): body}`` for ``logs`` (a page
    of ``entries``, at most 10,000), ``log`` (one detail), ``sessions`` and ``errors``, in ``json`` and
    ``xml``.  Served in process (no socket, no clock): for parser checks and benchmarks."""
    return anyio.run(_fetch_bodies, entries)


async def _fetch_bodies(entries: int) -> dict[tuple[str, str], bytes]:
    from .sandbox import SandboxApp, SandboxConfig  # imported only when asked: the sandbox pulls in uvicorn

    config = SandboxConfig(calls_count=entries, calls_spacing=1.0, limits={"calllogs": (10**6, 900)})
    start = config.start_of_calls
    span = f"{start}/{start + entries + 1}"
    auth = ("demo", "demo-password")
    bodies: dict[tuple[str, str], bytes] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=SandboxApp(config)),
                                 base_url="http://127.0.0.1") as http:
        for fmt in ("json", "xml"):
            headers = {"Accept": f"application/{fmt}"}
            for service in ("logs", "sessions", "errors"):
                r = await http.get(f"/ws/calls/{service}/{span}", params={"limit": min(entries, 10_000)},
                                   headers=headers, auth=auth)
                r.raise_for_status()
                bodies[service, fmt] = r.content
            log_id = json.loads(bodies["logs", "json"])["result"]["logs"][0]["log_id"]
            r = await http.get(f"/ws/calls/log/{log_id}", headers=headers, auth=auth)
            r.raise_for_status()
            bodies["log", fmt] = r.content
    return bodies
