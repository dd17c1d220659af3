"""Fakes for unit tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import formatdate

import httpx

from plumasync import FakeClock
from plumasync.models.calllogs import CallLogEntry
from plumasync.models.loglines import SessionId
from plumasync.sandbox import SandboxConfig


class FixedWindowServer:
    """A minimal Plum-like server for unit tests: fixed clock-aligned windows on a FakeClock.

    ``skew`` shifts the server's clock; ``spend(n)`` lets another tenant use the current window;
    ``headers=False`` omits the rate-limit headers (the limit is still enforced).
    """

    def __init__(self, clock: FakeClock, *, limit: int = 10, window: int = 900, skew: float = 0.0,
                 headers: bool = True) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self.skew = skew
        self.headers = headers
        self.counts: dict[int, int] = {}
        self.log: list[tuple[float, int]] = []  # (server time, status)
        self.hook: Callable[[httpx.Request], httpx.Response | None] | None = None

    def server_now(self) -> float:
        return self.clock.now() + self.skew

    def spend(self, n: int) -> None:
        start = math.floor(self.server_now() / self.window) * self.window
        self.counts[start] = self.counts.get(start, 0) + n

    def handler(self, request: httpx.Request) -> httpx.Response:
        now = self.server_now()
        start = math.floor(now / self.window) * self.window
        used = self.counts.get(start, 0)
        status = 429 if used >= self.limit else 200
        if status == 200:
            self.counts[start] = used = used + 1
        headers = {"Date": formatdate(math.floor(now), usegmt=True)}
        if self.headers:
            headers.update({"X-RateLimit-Limit": str(self.limit),
                            "X-RateLimit-Remaining": str(max(0, self.limit - used)),
                            "X-RateLimit-Reset": str(start + self.window)})
        if self.hook is not None:
            custom = self.hook(request)
            if custom is not None:
                self.log.append((now, custom.status_code))
                return custom
        self.log.append((now, status))
        body = b'{"error":"rate limit exceeded"}' if status == 429 else b'{"status":"success","error":"","result":{}}'
        return httpx.Response(status, headers=headers, content=body)

    def statuses(self) -> list[int]:
        return [s for _, s in self.log]


def period(config: SandboxConfig) -> tuple[int, int]:
    """The sandbox's whole call period as ``[start, end)`` Unix seconds: every generated call inside."""
    start = config.start_of_calls
    return start, start + int(config.calls_count * config.calls_spacing) + 1


def entry(log_id: int, start: int) -> CallLogEntry:
    """A listed call as the listing parser builds it: ``log_id``, starting (and ending) at ``start``."""
    moment = datetime.fromtimestamp(start, timezone.utc)
    session = SessionId(server="000020", channel=1, start=start, raw=f"000020;1;{start}")
    return CallLogEntry(log_id=log_id, session_id=session, dest="1", type="inbound", src="2", start=moment,
                        end=moment)
