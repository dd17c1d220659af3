"""Configuration of the simulated Plum server: :class:`SandboxConfig` and the clock it reads.

Every knob is a plain dataclass field.  A running :class:`~plumasync.sandbox.app.SandboxApp` reads its
``config`` afresh on every request, so knobs can be changed at runtime with ``app.set(latency=0.2)``
(validated, swapped atomically) or by assigning a new config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..governor.clock import SystemClock

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_NUMBERS",
    "GROUPS",
    "SandboxClock",
    "SandboxConfig",
]

#: The rate-limit groups the sandbox counts in.
GROUPS: tuple[str, ...] = ("auth", "data", "calllogs")

#: Default ``(limit, window seconds)`` per group: Plum's documented 15 and 150 per 15 minutes.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "auth": (15, 900.0),
    "data": (150, 900.0),
    "calllogs": (150, 900.0),
}

#: Default destination numbers of the generated calls (the first two appear in Plum's samples).
DEFAULT_NUMBERS: tuple[str, ...] = ("6177123000", "8009957586", "6175550199")


@runtime_checkable
class SandboxClock(Protocol):
    """What the sandbox needs of time: ``now()`` in Unix seconds (any object with that method)."""

    def now(self) -> float:
        """Current time in Unix seconds."""
        ...


def _default_accounts() -> dict[str, str]:
    return {"demo": "demo-password"}


@dataclass
class SandboxConfig:
    """Everything the sandbox can be told.  All fields are optional.

    Time: server time is ``clock.now() + skew``; every window, ``Date`` header, credential expiry and the
    default ``calls_start`` use it.  Durations below are in server (clock) seconds except ``latency``,
    which is real seconds.
    """

    #: DEV accounts, login → password.  Valid for every VoiceTrends ``tool`` and for Call Logs.
    accounts: dict[str, str] = field(default_factory=_default_accounts)
    #: Seed of all generated data (same seed → byte-identical bodies).
    seed: int = 0
    #: Any object with ``now() -> float``; share it with the client to compress time.
    clock: SandboxClock = field(default_factory=SystemClock)
    #: Offset of the server clock from ``clock`` (seconds).
    skew: float = 0.0
    #: Per-group ``(limit, window)`` overrides; groups "auth", "data", "calllogs"; integer windows.
    limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: Requests "another tenant" spends per group at the start of every window.
    tenant_spend: dict[str, int] = field(default_factory=dict)
    #: Whether Call Logs responses carry X-RateLimit-* headers (the limit is enforced either way).
    calllogs_headers: bool = True
    #: Seconds added to every X-RateLimit-Reset sent (a lying server; ``-window``: Resets always in the past).
    reset_shift: float = 0.0
    #: 1-based request numbers whose X-RateLimit-Reset is shifted by the given seconds (one outlier).
    reset_shift_requests: dict[int, float] = field(default_factory=dict)
    #: 1-based request numbers whose Date header is shifted by the given seconds.
    date_shift_requests: dict[int, float] = field(default_factory=dict)
    #: 429 responses carry ``Retry-After``: ``"seconds"`` until the reset, an HTTP ``"date"``, or None.
    retry_after: str | None = None
    #: Temporary VoiceTrends credentials expire this long after their last use.
    credential_ttl: float = 86400.0
    #: Probability that a request gets an injected HTTP 500 (deterministic from ``fail_seed``).
    fail_rate: float = 0.0
    #: Seed of the injected-failure and drop decisions.
    fail_seed: int = 0
    #: 1-based request numbers (over all requests) that get an injected 500.
    fail_requests: set[int] = field(default_factory=set)
    #: Probability that a request's connection is dropped after the response start.
    drop_rate: float = 0.0
    #: 1-based request numbers whose connection is dropped after the response start.
    drop_requests: set[int] = field(default_factory=set)
    #: Real seconds added to every response.
    latency: float = 0.0
    #: Unix start of call 0; default: 3 days before the config is created, floored to the hour.
    calls_start: int | None = None
    #: Number of generated calls.
    calls_count: int = 500
    #: Server seconds between consecutive call starts.
    calls_spacing: float = 60.0
    #: Server seconds a call log is kept (Plum: 5 days); older calls are unlisted and ``log not found``.
    retention: float | None = None
    #: Calls exist only once started (server time): a sandbox that generates calls as time passes.
    live: bool = False
    #: calls/logs lists newest first, as Plum does (default: oldest first).
    newest_first: bool = False
    #: Destination numbers; call ``i`` goes to ``numbers[i % len(numbers)]``.
    numbers: tuple[str, ...] = DEFAULT_NUMBERS

    def __post_init__(self) -> None:
        if self.calls_start is None:
            now = self.clock.now() + self.skew
            self.calls_start = int(math.floor(now / 3600.0) * 3600) - 3 * 86400
        self.numbers = tuple(self.numbers)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` when a field is out of range."""
        if not callable(getattr(self.clock, "now", None)):
            raise ValueError("clock must have a now() method")
        for group, value in self.limits.items():
            if group not in GROUPS:
                raise ValueError(f"unknown rate-limit group {group!r}; expected one of {GROUPS}")
            limit, window = value
            if int(limit) != limit or limit < 0:
                raise ValueError(f"limit for {group!r} must be a non-negative integer, got {limit!r}")
            if window <= 0 or int(window) != window:
                raise ValueError(
                    f"window for {group!r} must be a positive whole number of seconds, got {window!r}"
                )
        for group, spend in self.tenant_spend.items():
            if group not in GROUPS:
                raise ValueError(f"unknown rate-limit group {group!r} in tenant_spend")
            if int(spend) != spend or spend < 0:
                raise ValueError(f"tenant_spend for {group!r} must be a non-negative integer")
        for name in ("fail_rate", "drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate!r}")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.retry_after not in (None, "seconds", "date"):
            raise ValueError(f"retry_after must be None, 'seconds' or 'date', got {self.retry_after!r}")
        shifts = [self.reset_shift, *self.reset_shift_requests.values(), *self.date_shift_requests.values()]
        if not all(math.isfinite(x) for x in shifts):
            raise ValueError("reset and date shifts must be finite numbers of seconds")
        if self.credential_ttl <= 0:
            raise ValueError("credential_ttl must be > 0")
        if self.calls_count < 0:
            raise ValueError("calls_count must be >= 0")
        if self.calls_spacing <= 0:
            raise ValueError("calls_spacing must be > 0")
        if not self.numbers or not all(n.isdigit() for n in self.numbers):
            raise ValueError("numbers must be a non-empty tuple of digit strings")
        if len(set(self.numbers)) != len(self.numbers):
            raise ValueError("numbers must be distinct")

    def limit_for(self, group: str) -> tuple[int, int]:
        """``(limit, window)`` of ``group`` (window as whole seconds)."""
        limit, window = self.limits.get(group, DEFAULT_LIMITS[group])
        return int(limit), int(window)

    def server_now(self) -> float:
        """Server time: ``clock.now() + skew``."""
        return self.clock.now() + self.skew

    @property
    def start_of_calls(self) -> int:
        """``calls_start`` as an int (always set after construction)."""
        assert self.calls_start is not None
        return self.calls_start

    def replace(self, **changes: object) -> SandboxConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
