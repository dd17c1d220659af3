"""The governor's budget logic, sans-I/O: pure state that takes ``now`` and headers as arguments.

One :class:`GroupState` per budget group (API host, account, group name).  Stores keep it (in memory,
in SQLite as JSON, in Redis as a hash driven by a Lua port of the same rules) and call its three
transitions inside one atomic step each:

* :meth:`GroupState.acquire` — may one more request be sent now?  Grants a *permit* or says when to
  ask again.
* :meth:`GroupState.observe` — a permit's response arrived (status and rate-limit headers), or it died
  without one.
* :meth:`GroupState.cancel` — a permit was never used (cancelled before sending): give it back.

The model, and why:

* **Headers mode.**  Once the server has sent ``X-RateLimit-*``, the group trusts it: a request fits
  when ``remaining - in_flight - reserve(lane) > 0``, where ``remaining`` is the lowest ``Remaining``
  seen in the current window (responses can arrive out of order) and ``in_flight`` counts permits whose
  responses have not arrived (the server may or may not have counted them yet: assume it has).
* **Fixed, clock-aligned windows.**  At the server's reset (converted to local time through the clock
  offset, plus ``margin``) the group's remaining returns to ``limit``.  If another consumer of the
  account was seen spending the budget, the new window opens with one probe instead, whose headers
  tell the truth.
* **Server time.**  ``Reset`` is converted with the same response's ``Date``: each response bounds the
  offset ``server - local`` from below by ``date - received_at`` (``Date`` is floored to the second and
  was generated before we received it), so the reset happens no earlier than
  ``reset - max(date - received_at)`` locally.  The bound tightens as responses arrive; if a response
  contradicts it (the server clock moved), the estimate restarts from that response.
* **Cold start.**  Until the first response, one probe is in flight at a time.
* **Headerless mode.**  A group whose server sends no rate-limit headers is held by its configured
  budget with a sliding log of admissions: never more than ``limit`` in any ``window``-long interval,
  whatever the alignment of the server's own windows.
* **429.**  The whole group pauses until the reset (or a whole window when the 429 says nothing).
* **Crashed holders.**  A permit older than one window is dropped, so a killed process holds the
  budget for at most one window.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import math
from typing import Any

import attrs

__all__ = [
    "Decision",
    "GroupSnapshot",
    "GroupState",
    "Lane",
    "Mode",
    "Policy",
    "RateHeaders",
    "bulk_reserve",
]


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


def _sorted_times(times: list[float]) -> list[float]:
    """The sliding log is kept sorted (a state read back from a store included)."""
    return times if all(a <= b for a, b in itertools.pairwise(times)) else sorted(times)


@attrs.define
class GroupState:
    """Budget state of one group.  All times are the store's clock seconds (Unix)."""

    limit: int
    window: float
    mode: str = Mode.COLD.value
    remaining: int | None = None
    reset: float | None = None
    reset_local: float | None = None
    offset: float | None = None
    paused_until: float | None = None
    permits: dict[str, float] = attrs.field(factory=dict)
    log: list[float] = attrs.field(factory=list, converter=_sorted_times)
    used: int = 0
    contended: bool = False
    admitted: int = 0
    throttled: int = 0

    @classmethod
    def new(cls, policy: Policy) -> GroupState:
        """A cold group with the policy's budget."""
        return cls(limit=policy.limit, window=policy.window)

    # -- transitions -------------------------------------------------------------------------------------

    def acquire(self, now: float, policy: Policy, lane: Lane | str, permit: str) -> Decision:
        """Grant ``permit`` if the group's known state says one more request fits now."""
        self._expire(now)
        if self.paused_until is not None:
            if now < self.paused_until:
                return Decision(False, self.paused_until)
            self.paused_until = None
        self._roll(now, policy)
        reserve = self._reserve(policy, lane)

        if self.mode == Mode.HEADERLESS.value:
            return self._acquire_sliding(now, policy, reserve, permit)
        if self.mode == Mode.COLD.value or self.remaining is None:
            # Cold start, or a contended window opening: one probe until its headers arrive.
            if self._probing(now):
                return Decision(False, None)
            return self._grant(now, permit)
        available = self.remaining - len(self.permits) - reserve
        if available > 0:
            return self._grant(now, permit)
        if self.reset_local is None:
            return Decision(False, None)
        # In-flight permits only ever lower `remaining` further, so only the reset can help.
        return Decision(False, self.reset_local + policy.margin)

    def observe(self, now: float, policy: Policy, permit: str, status: int | None, headers: RateHeaders) -> None:
        """Record the outcome of ``permit``: an HTTP ``status`` (None: no response) and its headers."""
        admitted_at = self.permits.pop(permit, None)
        if admitted_at is None:
            admitted_at = now  # expired or unknown permit: still learn from the headers
        if headers.complete:
            self._observe_headers(now, policy, admitted_at, status, headers)
        else:
            self._observe_headerless(now, policy, admitted_at, status)

    def cancel(self, permit: str) -> None:
        """Give back a permit whose request was never sent."""
        admitted_at = self.permits.pop(permit, None)
        if admitted_at is None:
            return
        self.admitted = max(0, self.admitted - 1)
        if admitted_at in self.log:
            self.log.remove(admitted_at)

    def snapshot(self, now: float, policy: Policy, group: str, waiters: int = 0) -> GroupSnapshot:
        """A view of the group as of ``now`` (rolls the window first, as acquire would)."""
        self._expire(now)
        self._roll(now, policy)
        remaining: int | None
        if self.mode == Mode.HEADERLESS.value:
            remaining = max(0, self.limit - sum(1 for t in self.log if t > now - self.window))
            reset_at = self.log[0] + self.window + policy.margin if remaining == 0 and self.log else None
        else:
            remaining = self.remaining
            reset_at = None if self.reset_local is None else self.reset_local + policy.margin
        if self.mode == Mode.HEADERLESS.value:
            available = remaining  # the sliding log already counts in-flight admissions
        else:
            available = None if remaining is None else max(0, remaining - len(self.permits))
        return GroupSnapshot(
            group=group,
            mode=self.mode,
            limit=self.limit,
            window=self.window,
            remaining=remaining,
            available=available,
            in_flight=len(self.permits),
            reset_at=reset_at,
            paused_until=self.paused_until if self.paused_until and self.paused_until > now else None,
            contended=self.contended,
            admitted=self.admitted,
            throttled=self.throttled,
            waiters=waiters,
        )

    # -- serialisation (SQLite keeps the state as JSON) ----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain data for a store."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupState:
        """Inverse of :meth:`to_json`."""
        return cls(**data)

    # -- internals -----------------------------------------------------------------------------------------

    def _grant(self, now: float, permit: str) -> Decision:
        self.permits[permit] = now
        self.admitted += 1
        if self.mode != Mode.HEADERS.value:  # the sliding log serves only headerless groups (and the probe)
            if self.log and now < self.log[-1]:
                bisect.insort(self.log, now)  # the clock stepped back: keep the log sorted
            else:
                self.log.append(now)
            if len(self.log) > self.limit:
                del self.log[: len(self.log) - self.limit]
        return Decision(True, None)

    def _reserve(self, policy: Policy, lane: Lane | str) -> int:
        return 0 if Lane(lane) is Lane.INTERACTIVE else bulk_reserve(policy, self.limit)

    def _probing(self, now: float) -> bool:
        """Is a request of the current window (any request, when cold) still in flight?"""
        if self.mode == Mode.COLD.value or self.reset_local is None:
            return bool(self.permits)
        window_start = self.reset_local - self.window
        return any(t >= window_start for t in self.permits.values())

    def _expire(self, now: float) -> None:
        stale = [p for p, t in self.permits.items() if t <= now - self.window]
        for p in stale:
            del self.permits[p]

    def _roll(self, now: float, policy: Policy) -> None:
        if self.mode != Mode.HEADERS.value or self.reset_local is None:
            return
        if now < self.reset_local + policy.margin:
            return
        windows = max(1, math.floor((now - self.reset_local - policy.margin) / self.window) + 1)
        assert self.reset is not None
        self.reset += windows * self.window
        self.reset_local += windows * self.window
        self.used = 0
        # Somebody else spends this account's budget: let one probe learn the new window's truth.
        self.remaining = None if self.contended else self.limit

    def _acquire_sliding(self, now: float, policy: Policy, reserve: int, permit: str) -> Decision:
        horizon = now - self.window - policy.margin
        expired = bisect.bisect_right(self.log, horizon)  # the log is sorted: trimming costs O(log n)
        if expired:
            del self.log[:expired]
        recent = self.log
        allowed = self.limit - reserve
        if len(recent) < allowed:
            return self._grant(now, permit)
        # The admission that must leave the interval before one more fits.
        oldest_blocking = recent[len(recent) - allowed]
        return Decision(False, oldest_blocking + self.window + policy.margin)

    def _update_offset(self, admitted_at: float, received_at: float, date: float | None) -> None:
        if date is None:
            if self.offset is None:
                self.offset = 0.0  # no Date header: trust the local clock
            return
        low = date - received_at  # Date was floored and generated before we received it
        high = date + 1.0 - admitted_at  # ... and after we sent the request
        if self.offset is None or high < self.offset:
            self.offset = low  # first observation, or the server's clock moved: start again
        else:
            self.offset = max(self.offset, low)

    def _observe_headers(
        self, now: float, policy: Policy, admitted_at: float, status: int | None, h: RateHeaders
    ) -> None:
        assert h.limit is not None and h.remaining is not None and h.reset is not None
        self._update_offset(admitted_at, now, h.date)
        assert self.offset is not None
        if self.mode != Mode.HEADERS.value:
            self.mode = Mode.HEADERS.value
            self.reset = None
            self.log = []
        self.limit = max(1, h.limit)
        remaining = max(0, h.remaining)
        if self.reset is None or h.reset > self.reset + 0.5:
            # A newer window than we knew of.
            self.reset = float(h.reset)
            self.remaining = remaining
            self.used = 1
            self.contended = remaining < self.limit - 1 - len(self.permits)
        elif h.reset > self.reset - 0.5:
            # The current window: Remaining only falls within a window.
            self.used += 1
            self.remaining = remaining if self.remaining is None else min(self.remaining, remaining)
            if remaining < self.limit - self.used - len(self.permits):
                self.contended = True
            elif self.used == 1 and remaining >= self.limit - 1:
                self.contended = False  # the window's first answer shows nobody else has spent
        # else: a late answer counted in a window that is already over; it says nothing of this one.
        self.reset_local = self.reset - self.offset
        if status == 429:
            self.throttled += 1
            self.remaining = 0
            self.contended = True
            self.paused_until = self.reset_local + policy.margin

    def _observe_headerless(self, now: float, policy: Policy, admitted_at: float, status: int | None) -> None:
        if self.mode == Mode.COLD.value and status is not None:
            self.mode = Mode.HEADERLESS.value
        if self.mode == Mode.HEADERS.value and self.remaining is not None:
            window_start = (self.reset_local or now) - self.window
            if admitted_at >= window_start:
                # The server counted it (or may have) but told us nothing: count it ourselves.
                self.remaining = max(0, self.remaining - 1)
        if status == 429:
            self.throttled += 1
            # No headers, no Retry-After: the only safe guess is a whole window.
            self.paused_until = now + self.window
            if self.mode == Mode.HEADERS.value:
                self.remaining = 0
