"""Where budget state lives: the store interface and the in-memory store.

A store runs each of the governor's transitions (:meth:`Store.acquire`, :meth:`Store.observe`,
:meth:`Store.cancel`) as **one atomic step** on the group's state and never waits inside one: the
governor reserves, then sleeps locally, holding no lock.  Stores also keep small shared values with a
time to live (temporary VoiceTrends credentials, cached results) and short leases, so that several
processes can agree that only one of them authenticates.

Time is the store's: a store shared across hosts may read it from its server; the memory store reads
the injected clock.  Every decision comes back with the store's ``now`` so that the caller can turn a
``retry_at`` into a duration on its own clock.
"""

from __future__ import annotations

import abc
import json
import logging
import operator
from collections.abc import Callable, Mapping

import attrs

from ..clock import Clock, SystemClock
from ..core.codec import CorruptState
from ..core.model import Decision, GroupKey, GroupSnapshot, Lane, Policy, RateHeaders
from ..core.shares import Consumer
from ..core.state import GroupState

__all__ = ["MemoryStore", "StateStore", "Store", "TimedDecision", "dump_state", "load_state", "observe_step"]

log = logging.getLogger("plumasync")


def load_state(raw: str | bytes | None, policy: Policy, key: GroupKey) -> GroupState:
    """A stored group document, or a new cold state when absent or unreadable (one WARNING).

    A garbage document (another program's key, a truncated write) must not stop the group: it starts
    afresh with one probe, and the server's next answer tells it where the window stands.
    """
    if raw is None:
        return GroupState.new(policy)
    try:
        return GroupState.from_json(json.loads(raw))
    except (CorruptState, ValueError, UnicodeDecodeError) as exc:  # json's errors are ValueErrors
        log.warning("budget state of group %s is unreadable (%s): starting it afresh",
                    key.group, type(exc).__name__)
        return GroupState.new(policy)


#: GroupState's plain fields, in their order (all but the consumers' book, which holds attrs objects).
_FIELDS = tuple(field.name for field in attrs.fields(GroupState) if field.name != "shares")
_fields_of = operator.attrgetter(*_FIELDS)
#: One encoder for every document (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def dump_state(state: GroupState) -> str:
    """The stored form of a group state: ``GroupState.to_json()`` as JSON (exact floats: Python's JSON
    round-trips them).  Without consumers, written from the fields directly (the common case, and the
    document holds no shared objects); a consumers' book goes through ``to_json``."""
    if state.shares is not None:
        return _ENCODER.encode(state.to_json())
    return _ENCODER.encode(dict(zip(_FIELDS, _fields_of(state), strict=True)))


def observe_step(policy: Policy, permit: str, status: int | None,
                  headers: RateHeaders) -> Callable[[GroupState, float], float | None]:
    """The observe transition, returning the group's pause: every store runs this one."""
    def step(state: GroupState, now: float) -> float | None:
        state.observe(now, policy, permit, status, headers)
        return state.paused_until

    return step


@attrs.frozen
class TimedDecision:
    """A store's answer together with the store's clock reading when it was made."""

    decision: Decision
    now: float


class Store(abc.ABC):
    """The governor's view of shared budget state.  All methods are atomic per key."""

    #: True when other processes may change the state: waiters then poll instead of only being woken.
    shared: bool = False
    #: True when concurrent calls on one group are applied in call order (combined into one transaction):
    #: the governor then lets a lane's next waiter ask while the one ahead is still waiting for its answer.
    combines: bool = False

    @abc.abstractmethod
    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str,
                      consumer: Consumer | None = None) -> TimedDecision:
        """Grant ``permit`` or say when to ask again (see :meth:`GroupState.acquire`; ``consumer``: whose
        share of the window it counts against, None: nobody's)."""

    @abc.abstractmethod
    async def observe(
        self, key: GroupKey, policy: Policy, permit: str, status: int | None, headers: RateHeaders
    ) -> float | None:
        """Record a permit's outcome; return until when the group is paused (None: it is not).

        The pause comes back from the same atomic step, so a 429's caller learns it without asking again.
        """

    @abc.abstractmethod
    async def cancel(self, key: GroupKey, policy: Policy, permit: str) -> None:
        """Give back a permit that was never used."""

    @abc.abstractmethod
    async def snapshot(self, key: GroupKey, policy: Policy, waiters: int = 0) -> GroupSnapshot:
        """The group's state now."""

    @abc.abstractmethod
    async def keys(self) -> list[GroupKey]:
        """Every group key this store holds."""

    @abc.abstractmethod
    async def get_value(self, name: str) -> bytes | None:
        """A shared value, or None when absent or expired."""

    @abc.abstractmethod
    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        """Store a shared value for ``ttl`` seconds."""

    @abc.abstractmethod
    async def delete_value(self, name: str) -> None:
        """Forget a shared value."""

    @abc.abstractmethod
    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lease ``name`` for ``ttl`` seconds if nobody holds it (or ``owner`` already does)."""

    @abc.abstractmethod
    async def release(self, name: str, owner: str) -> None:
        """Drop the lease if ``owner`` holds it."""

    async def add_counts(self, name: str, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to the counters ``name`` (fleet-wide statistics), atomically per call.

        This default keeps them in this process; the shared stores keep them for every worker.
        """
        mine = self.__dict__.setdefault("_counts", {}).setdefault(name, {})
        for field, delta in counts.items():
            if delta:
                mine[field] = mine.get(field, 0) + int(delta)

    async def get_counts(self, name: str) -> dict[str, int]:
        """The counters ``name`` as added by every worker so far (empty when none)."""
        return dict(self.__dict__.get("_counts", {}).get(name, {}))

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the store's resources."""


class StateStore(Store):
    """A store that loads a :class:`GroupState`, applies a pure transition and saves it back.

    Subclasses provide :meth:`_transact`, which must run ``fn`` atomically (one transaction, or no
    ``await`` between load and save).
    """

    @abc.abstractmethod
    async def _transact(
        self, key: GroupKey, policy: Policy, fn: Callable[[GroupState, float], object]
    ) -> tuple[object, float]:
        """Run ``fn(state, now)`` atomically on ``key``'s state; return its result and ``now``."""

    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str,
                      consumer: Consumer | None = None) -> TimedDecision:
        result, now = await self._transact(key, policy,
                                           lambda s, now: s.acquire(now, policy, lane, permit, consumer))
        assert isinstance(result, Decision)
        return TimedDecision(result, now)

    async def observe(
        self, key: GroupKey, policy: Policy, permit: str, status: int | None, headers: RateHeaders
    ) -> float | None:
        paused_until, _ = await self._transact(key, policy, observe_step(policy, permit, status, headers))
        return float(paused_until) if isinstance(paused_until, (int, float)) else None

    async def cancel(self, key: GroupKey, policy: Policy, permit: str) -> None:
        await self._transact(key, policy, lambda s, now: s.cancel(permit))

    async def snapshot(self, key: GroupKey, policy: Policy, waiters: int = 0) -> GroupSnapshot:
        group = key.group
        result, _ = await self._transact(key, policy, lambda s, now: s.snapshot(now, policy, group, waiters))
        assert isinstance(result, GroupSnapshot)
        return result


class MemoryStore(StateStore):
    """Budget state in this process only (the default).  Reads time from the injected clock.

    It does no I/O, so each transition is also offered without ``await`` (:meth:`acquire_nowait`,
    :meth:`observe_nowait`, :meth:`cancel_nowait`): the governor decides a request that need not wait
    synchronously, and a step that never suspends cannot be cancelled half-way (it needs no shield).
    The async methods run the very same steps.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._states: dict[GroupKey, GroupState] = {}
        self._values: dict[str, tuple[bytes, float]] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    def _state(self, key: GroupKey, policy: Policy) -> GroupState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = GroupState.new(policy)
        return state

    async def _transact(
        self, key: GroupKey, policy: Policy, fn: Callable[[GroupState, float], object]
    ) -> tuple[object, float]:
        # No await between load and save: atomic on one event loop.
        now = self.clock.now()
        return fn(self._state(key, policy), now), now

    def acquire_nowait(self, key: GroupKey, policy: Policy, lane: Lane, permit: str,
                       consumer: Consumer | None = None) -> Decision:
        """:meth:`acquire` without awaiting: :meth:`GroupState.acquire` on the group, now."""
        return self._state(key, policy).acquire(self.clock.now(), policy, lane, permit, consumer)

    def observe_nowait(
        self, key: GroupKey, policy: Policy, permit: str, status: int | None, headers: RateHeaders
    ) -> float | None:
        """:meth:`observe` without awaiting: :meth:`GroupState.observe`, then the group's pause."""
        state = self._state(key, policy)
        state.observe(self.clock.now(), policy, permit, status, headers)
        return state.paused_until

    def cancel_nowait(self, key: GroupKey, policy: Policy, permit: str) -> None:
        """:meth:`cancel` without awaiting: :meth:`GroupState.cancel` on the group."""
        self._state(key, policy).cancel(permit)

    async def acquire(self, key: GroupKey, policy: Policy, lane: Lane, permit: str,
                      consumer: Consumer | None = None) -> TimedDecision:
        now = self.clock.now()
        return TimedDecision(self._state(key, policy).acquire(now, policy, lane, permit, consumer), now)

    async def observe(
        self, key: GroupKey, policy: Policy, permit: str, status: int | None, headers: RateHeaders
    ) -> float | None:
        return self.observe_nowait(key, policy, permit, status, headers)

    async def cancel(self, key: GroupKey, policy: Policy, permit: str) -> None:
        self.cancel_nowait(key, policy, permit)

    async def keys(self) -> list[GroupKey]:
        return sorted(self._states, key=str)

    def put(self, key: GroupKey, state: GroupState) -> None:
        """Start ``key`` from ``state`` (a shared store's fallback seeds itself with what it last read)."""
        self._states[key] = state

    def state(self, key: GroupKey) -> GroupState | None:
        """The group's state, or None if the group has not been used."""
        return self._states.get(key)

    def peek(self, key: GroupKey, policy: Policy, waiters: int = 0) -> GroupSnapshot | None:
        """The group's snapshot without awaiting (None if the group has not been used)."""
        state = self._states.get(key)
        if state is None:
            return None
        return state.snapshot(self.clock.now(), policy, key.group, waiters)

    async def get_value(self, name: str) -> bytes | None:
        item = self._values.get(name)
        if item is None:
            return None
        if item[1] <= self.clock.now():
            del self._values[name]
            return None
        return item[0]

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        now = self.clock.now()
        if len(self._values) >= 4096:  # a long-lived dashboard asks many distinct things: drop the expired
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._values[name] = (value, now + ttl)

    async def delete_value(self, name: str) -> None:
        self._values.pop(name, None)

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        now = self.clock.now()
        held = self._leases.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._leases[name] = (owner, now + ttl)
        return True

    async def release(self, name: str, owner: str) -> None:
        held = self._leases.get(name)
        if held is not None and held[0] == owner:
            del self._leases[name]

    def __repr__(self) -> str:
        return f"MemoryStore(groups={len(self._states)})"
