"""The rate-limit governor: budget state (sans-I/O), clocks, stores and the async admission layer."""

from .admission import Budget, Governor, GroupKey, Permit, Usage
from .clock import Clock, FakeClock, ScaledClock, SystemClock
from .core.headers import parse_rate_headers
from .core.state import Decision, GroupSnapshot, GroupState, Lane, Mode, Policy, RateHeaders
from .stores.base import MemoryStore, StateStore, Store, Timed

__all__ = [
    "Budget",
    "Clock",
    "Decision",
    "FakeClock",
    "Governor",
    "GroupKey",
    "GroupSnapshot",
    "GroupState",
    "Lane",
    "MemoryStore",
    "Mode",
    "Permit",
    "Policy",
    "RateHeaders",
    "ScaledClock",
    "StateStore",
    "Store",
    "SystemClock",
    "Timed",
    "Usage",
    "parse_rate_headers",
]
