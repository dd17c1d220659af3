"""The rate-limit governor: the pure core, the stores and the async admission layer.

The clocks it runs on live in :mod:`plumasync.governor.clock` and are exported by :mod:`plumasync`.
"""

from .admission import Governor, Permit, Usage
from .core.headers import parse_rate_headers
from .core.model import Decision, GroupKey, GroupSnapshot, Lane, Mode, Policy, RateHeaders
from .core.shares import Consumer
from .core.state import GroupState
from .stores.base import MemoryStore, StateStore, Store, TimedDecision

__all__ = [
    "Consumer",
    "Decision",
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
    "StateStore",
    "Store",
    "TimedDecision",
    "Usage",
    "parse_rate_headers",
]
