"""Helpers for tests, users' tests included: fake and scaled clocks, and a client for the sandbox.

::

    from plumasync.sandbox import SandboxConfig, SandboxServer
    from plumasync.testing import ScaledClock, sandbox_client

    clock = ScaledClock(100)                    # 15-minute windows pass in 9 s
    with SandboxServer(SandboxConfig(clock=clock)) as server:
        async with sandbox_client(server, clock=clock) as plum:
            ...
"""

from __future__ import annotations

from typing import Any

from .client import PlumClient
from .governor.arithmetic import minimum_duration, windows_needed
from .governor.clock import Clock, FakeClock, ScaledClock, SystemClock

__all__ = [
    "FakeClock",
    "ScaledClock",
    "SystemClock",
    "minimum_duration",
    "sandbox_client",
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
