"""The rate-limit governor: budget state (sans-I/O), clocks, stores and the async admission layer."""

from .clock import Clock, FakeClock, ScaledClock, SystemClock
from .governor import Budget, Governor, GroupKey, Permit
from .headers import parse_rate_headers
from .state import Decision, GroupSnapshot, GroupState, Lane, Mode, Policy, RateHeaders
from .store import MemoryStore, StateStore, Store, Timed

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
    "parse_rate_headers",
]
