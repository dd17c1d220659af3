"""The governor's vocabulary, shared by the pure state and the stores: lanes, modes, policies, facts
read from a response, decisions, snapshots and group keys."""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs

__all__ = ["GRANTED", "Decision", "GroupKey", "GroupSnapshot", "Lane", "Mode", "Policy", "RateHeaders", "bulk_reserve"]


class Lane(str, enum.Enum):
    """Who is asking: ``interactive`` may take the reserve, ``bulk`` may not."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


class Mode(str, enum.Enum):
    """What the group knows: nothing yet, the server's headers, or only its configured budget."""

    COLD = "cold"
    HEADERS = "headers"
    HEADERLESS = "headerless"


@attrs.frozen
class Policy:
    """A group's configured budget: used until the server's headers say otherwise.

    ``reserve`` requests of each window are kept for the interactive lane; ``margin`` seconds are added
    after each reset for clock resolution and skew.
    """

    limit: int
    window: float
    reserve: int
    margin: float


def bulk_reserve(policy: Policy, limit: int) -> int:
    """Requests of each window the bulk lane leaves to interactive calls, for a group whose limit is
    ``limit`` (the server's, once known): the policy's reserve, scaled when the server's limit differs."""
    if limit != policy.limit and policy.limit > 0:
        return min(limit - 1, math.ceil(policy.reserve * limit / policy.limit))
    return min(policy.reserve, max(0, limit - 1))


@attrs.frozen
class RateHeaders:
    """The rate-limit facts of one response, already parsed (see :mod:`plumasync.governor.core.headers`)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    date: float | None = None
    #: ``Retry-After`` in seconds (its delay-seconds form).
    retry_after: float | None = None
    #: ``Retry-After`` as an HTTP-date (server time, Unix seconds).
    retry_at: float | None = None

    @property
    def complete(self) -> bool:
        """True when Limit, Remaining and Reset were all present and well formed."""
        return self.limit is not None and self.remaining is not None and self.reset is not None


@attrs.frozen
class Decision:
    """The answer to :meth:`GroupState.acquire`.

    ``granted`` — send now.  Otherwise ``retry_at`` (clock time) says when the budget is expected to
    admit the request, or None when only a state change (a response arriving) can help.
    """

    granted: bool
    retry_at: float | None = None
    #: True when an answer in flight (the window's probe) may admit the request before ``retry_at``:
    #: ``retry_at`` is then only when to look again, and ``max_wait`` must not refuse on it.
    answer_due: bool = False


#: The granting decision: frozen, so one instance serves every grant (no object per admitted request).
GRANTED = Decision(True, None)


@attrs.frozen
class GroupSnapshot:
    """A read-only view of a group, for ``budget_snapshot()`` and the CLI."""

    group: str
    mode: str
    limit: int
    window: float
    remaining: int | None
    available: int | None
    in_flight: int
    reset_at: float | None
    paused_until: float | None
    contended: bool
    admitted: int
    throttled: int
    waiters: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return attrs.asdict(self)


@attrs.frozen(order=True, cache_hash=True)  # a dict key several times per request: hash it once
class GroupKey:
    """A budget group: (API host, account, group name).  ``account`` is a hash, never a login.

    Stores keep it as the text ``host|account|group`` (:meth:`__str__`); :meth:`parse` reads it back, the
    only place that text is ever split.
    """

    host: str
    account: str
    group: str

    def __str__(self) -> str:
        return f"{self.host}|{self.account}|{self.group}"

    @classmethod
    def parse(cls, text: str) -> GroupKey:
        """The key a store wrote as ``host|account|group`` (a host may hold ``|`` in no legal form)."""
        host, account, group = text.rsplit("|", 2)
        return cls(host, account, group)
