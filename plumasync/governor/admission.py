"""The async half of the governor: waiting for the budget, in order, through the injected clock.

The budget arithmetic lives in :mod:`plumasync.governor.core.state` (no I/O) and its state in a
:class:`~plumasync.governor.stores.base.Store`.  This module only queues callers per group and lane, asks the
store, and sleeps until the store's ``retry_at`` or until a response changes the state.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import uuid
from collections import defaultdict, deque

import anyio
import attrs

from .. import metrics
from ..errors import ConfigurationError, RateLimitExceeded
from .clock import Clock, SystemClock
from .core.arithmetic import minimum_duration
from .core.model import GroupKey, GroupSnapshot, Lane, Policy, RateHeaders, bulk_reserve
from .core.shares import Consumer
from .stores.base import MemoryStore, Store, TimedDecision

__all__ = ["Governor", "Permit", "Usage"]

log = logging.getLogger("plumasync")


@attrs.define
class Usage:
    """This process's own counts for one group: requests ``sent`` and ``throttled`` (429) answers."""

    sent: int = 0
    throttled: int = 0


@attrs.frozen
class Permit:
    """Leave to send one request; hand it back to :meth:`Governor.observe` or :meth:`Governor.cancel`."""

    key: GroupKey
    id: str
    lane: Lane
    policy: Policy = attrs.field(repr=False)


#: A line of waiters: one per lane and consumer (a consumer held to its share must not block another's line).
_Line = tuple[Lane, str | None]


class _Queue:
    """FIFO of waiters per line (lane and consumer) for one group, and a "state changed" signal."""

    def __init__(self) -> None:
        self.lanes: defaultdict[_Line, deque[object]] = defaultdict(deque)
        self.changed = anyio.Event()
        self.retry_at: defaultdict[_Line, float | None] = defaultdict(lambda: None)
        # True while the line's retry_at is only "look again": an answer in flight may admit sooner.
        self.answer_due: defaultdict[_Line, bool] = defaultdict(bool)
        self.asking: set[object] = set()  # waiters whose store acquire is in flight

    @property
    def waiters(self) -> int:
        return sum(len(q) for q in self.lanes.values())

    def notify(self) -> None:
        if any(self.lanes.values()):  # nobody waits: nothing to wake
            self.changed.set()
            self.changed = anyio.Event()

    def may_ask(self, lane: _Line, token: object, pipelined: bool) -> bool:
        """The head of the lane asks the store; with ``pipelined``, so does anyone whose every
        predecessor in the lane is already asking (their requests reach the store in line order)."""
        for ahead in self.lanes[lane]:
            if ahead is token:
                return True
            if not pipelined or ahead not in self.asking:
                return False
        return False

    def discard(self, lane: _Line, token: object) -> None:
        with contextlib.suppress(ValueError):
            self.lanes[lane].remove(token)


class Governor:
    """Admits requests per budget group, in arrival order per lane.

    ``store`` keeps the state (default: in memory), ``clock`` measures and sleeps (default: the system
    clock).  Waits longer than ``warn_after`` clock seconds are logged at WARNING on the ``plumasync``
    logger, so that no long sleep is silent.
    """

    def __init__(self, *, store: Store | None = None, clock: Clock | None = None, warn_after: float = 5.0) -> None:
        self.clock: Clock = clock or SystemClock()
        self.store: Store = store or MemoryStore(self.clock)
        self.warn_after = warn_after
        self._policies: dict[GroupKey, Policy] = {}
        self._queues: dict[GroupKey, _Queue] = {}
        self._last: dict[GroupKey, GroupSnapshot] = {}
        metrics.watch_governor(self)
        self._prefix = uuid.uuid4().hex[:12] + "-"  # unique across processes sharing a store
        self._ids = itertools.count()
        self._usage: dict[GroupKey, Usage] = {}

    def register(self, key: GroupKey, policy: Policy) -> GroupKey:
        """Declare a group and its default budget (``Budget(...).policy()``); returns ``key``."""
        self._policies[key] = policy
        self._queues.setdefault(key, _Queue())
        self._usage.setdefault(key, Usage())
        return key

    def usage(self, key: GroupKey) -> Usage:
        """This process's counts for ``key`` so far (a copy): requests sent, and 429s among them."""
        counts = self._usage[key]
        return Usage(counts.sent, counts.throttled)

    def policy(self, key: GroupKey) -> Policy:
        """The policy registered for ``key``."""
        try:
            return self._policies[key]
        except KeyError:
            raise ConfigurationError(f"unknown budget group {key!r}") from None

    def try_acquire(self, key: GroupKey, lane: Lane = Lane.INTERACTIVE,
                    consumer: Consumer | None = None) -> Permit | None:
        """A permit at once, without awaiting, when the group admits one now and nobody waits ahead in
        its line; else None, and nothing is reserved.  Only a store that decides without I/O (the memory
        store) answers here; with any other store this returns None and :meth:`acquire` asks it.
        """
        store = self.store
        if not isinstance(store, MemoryStore):
            return None
        policy = self.policy(key)
        queue = self._queues[key]
        line: _Line = (lane, None if consumer is None else consumer.name)
        if queue.lanes.get(line):
            return None  # first come, first served: the waiters ahead ask first
        permit_id = f"{self._prefix}{next(self._ids)}"
        if not store.acquire_nowait(key, policy, lane, permit_id, consumer).granted:
            return None
        return self._granted(queue, key, policy, line, permit_id, 0.0)

    def _granted(self, queue: _Queue, key: GroupKey, policy: Policy, line: _Line, permit_id: str,
                 waited: float) -> Permit:
        queue.retry_at[line] = None
        queue.notify()  # the line moved (and a grant expires old permits: the other lane may fit now)
        self._usage[key].sent += 1
        metrics.record_granted(key, waited)
        return Permit(key=key, id=permit_id, lane=line[0], policy=policy)

    async def acquire(self, key: GroupKey, lane: Lane = Lane.INTERACTIVE, max_wait: float | None = None,
                      consumer: Consumer | None = None) -> Permit:
        """Wait until the group admits one request; return the permit.

        With ``max_wait`` (clock seconds), raise :class:`RateLimitExceeded` carrying ``retry_at`` as
        soon as the governor knows the wait would be longer.  A named ``consumer`` is held to its weighted
        share while others want more (:mod:`.core.shares`), in a line of its own: it never holds up another.
        No wait: decided without suspending (:meth:`try_acquire`).  A cancelled waiter returns its permit.
        """
        permit = self.try_acquire(key, lane, consumer)
        if permit is not None:
            return permit
        policy = self.policy(key)
        queue = self._queues[key]
        token = object()
        line: _Line = (lane, None if consumer is None else consumer.name)
        queue.lanes[line].append(token)
        start = self.clock.now()
        warned = False
        try:
            while True:
                wait: float | None
                asks = queue.may_ask(line, token, self.store.combines)
                if asks:
                    permit_id = f"{self._prefix}{next(self._ids)}"
                    timed = await self._ask(queue, token, key, policy, line, permit_id, consumer)
                    if timed.decision.granted:
                        queue.discard(line, token)
                        return self._granted(queue, key, policy, line, permit_id, self.clock.now() - start)
                    retry_at = timed.decision.retry_at
                    now = self.clock.now()
                    wait = None if retry_at is None else max(0.0, retry_at - timed.now)
                    queue.retry_at[line] = None if wait is None else now + wait
                    queue.answer_due[line] = timed.decision.answer_due
                else:
                    now = self.clock.now()
                    wait = None  # woken when the head moves
                known_retry = queue.retry_at[line]
                if self.store.shared:
                    # Other processes change shared state (and may die holding permits) without waking us.
                    poll = min(1.0, policy.window / 100)
                    wait = poll if wait is None else min(wait, poll)
                if max_wait is not None:
                    deadline = start + max_wait
                    if known_retry is not None and known_retry > deadline and not queue.answer_due[line]:
                        raise self._too_long(key, known_retry)
                    if now >= deadline:
                        raise self._too_long(key, known_retry)
                    wait = deadline - now if wait is None else min(wait, deadline - now)
                first = queue.lanes[line][0] is token  # one warning per lane, not one per waiter asking
                if not warned and first and known_retry is not None and known_retry - now > self.warn_after:
                    warned = True
                    log.warning("budget group %s is exhausted%s: waiting %.1f s for the window to reset",
                                key.group, "" if consumer is None else f" for consumer {consumer.name!r} (or its "
                                "share is: waiting at most until the others' demand lapses)", known_retry - now)
                await self._wait(queue, wait)
        finally:
            if token in queue.lanes[line]:
                queue.discard(line, token)
                queue.notify()

    async def _ask(self, queue: _Queue, token: object, key: GroupKey, policy: Policy, line: _Line,
                   permit_id: str, consumer: Consumer | None) -> TimedDecision:
        """One store acquire.  On a store that combines concurrent calls the next waiter in line may ask
        while this one is in flight (one transaction, in line order), so a window opening for many
        waiters costs a few round trips, not one per waiter.

        Cancelled while the store call is in flight, the store may have granted it all the same: the
        permit is given back (shielded, so that the cancellation cannot cut the giving back short).
        """
        queue.asking.add(token)
        if self.store.combines:
            queue.notify()
        try:
            if consumer is None:  # a store written before consumers existed still works without them
                return await self.store.acquire(key, policy, line[0], permit_id)
            return await self.store.acquire(key, policy, line[0], permit_id, consumer)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.store.cancel(key, policy, permit_id)  # a no-op if it was never granted
            raise
        finally:
            queue.asking.discard(token)

    def _too_long(self, key: GroupKey, retry_at: float | None) -> RateLimitExceeded:
        return RateLimitExceeded(method="", url=key.group, status=None,
                                 error="budget exhausted; the wait exceeds max_wait", retry_at=retry_at)

    async def _wait(self, queue: _Queue, timeout: float | None) -> None:  # noqa: ASYNC109 - clock seconds
        """Until the group's state changes, or ``timeout`` clock seconds (None: no timeout)."""
        changed = queue.changed
        if timeout is None:
            await changed.wait()
            return
        if timeout <= 0:
            await anyio.lowlevel.checkpoint()
            return
        async with anyio.create_task_group() as tg:

            async def sleeper() -> None:
                await self.clock.sleep(timeout)
                tg.cancel_scope.cancel()

            tg.start_soon(sleeper)
            await changed.wait()
            tg.cancel_scope.cancel()

    @property
    def immediate(self) -> bool:
        """True when the store decides without I/O (the memory store): :meth:`observe_nowait` and
        :meth:`cancel_nowait` then record an outcome without awaiting, so they need no cancel shield."""
        return isinstance(self.store, MemoryStore)

    async def observe(self, permit: Permit, status: int | None, headers: RateHeaders) -> float | None:
        """Record the outcome of a permit's request (``status`` None: no HTTP response).

        Returns until when the group is now paused (clock time), None when it is not.
        """
        paused_until = await self.store.observe(permit.key, permit.policy, permit.id, status, headers)
        self._observed(permit, status)
        return paused_until

    def observe_nowait(self, permit: Permit, status: int | None, headers: RateHeaders) -> float | None:
        """:meth:`observe` without awaiting; only when :attr:`immediate` (else :class:`TypeError`)."""
        store = self.store
        if not isinstance(store, MemoryStore):
            raise TypeError(f"{store!r} does I/O: await Governor.observe()")
        paused_until = store.observe_nowait(permit.key, permit.policy, permit.id, status, headers)
        self._observed(permit, status)
        return paused_until

    def _observed(self, permit: Permit, status: int | None) -> None:
        if status == 429:
            self._usage[permit.key].throttled += 1
            metrics.record_throttled(permit.key)
        self._queues[permit.key].notify()

    async def cancel(self, permit: Permit) -> None:
        """Give back a permit whose request was never sent."""
        await self.store.cancel(permit.key, permit.policy, permit.id)
        self._queues[permit.key].notify()

    def cancel_nowait(self, permit: Permit) -> None:
        """:meth:`cancel` without awaiting; only when :attr:`immediate` (else :class:`TypeError`)."""
        store = self.store
        if not isinstance(store, MemoryStore):
            raise TypeError(f"{store!r} does I/O: await Governor.cancel()")
        store.cancel_nowait(permit.key, permit.policy, permit.id)
        self._queues[permit.key].notify()

    def eta(self, key: GroupKey, requests: int, lane: Lane = Lane.BULK) -> float:
        """The least time (clock seconds) ``requests`` more requests of ``key`` can take: the window
        arithmetic applied to the group's current state, not an extrapolated rate."""
        if requests <= 0:
            return 0.0
        policy = self.policy(key)
        snap = self.peek(key)
        limit = snap.limit if snap else policy.limit
        reserve = 0 if lane is Lane.INTERACTIVE else bulk_reserve(policy, limit)
        per_window = max(1, limit - reserve)
        if snap is None or snap.available is None:
            return minimum_duration(requests, remaining_now=per_window, per_window=per_window,
                                    window=policy.window, until_reset=policy.window)
        now = self.clock.now()
        window = snap.window  # the server's, once learned from its Resets
        until_reset = (snap.reset_at - now) if snap.reset_at is not None else window
        paused = (snap.paused_until - now) if snap.paused_until else 0.0
        return paused + minimum_duration(requests, remaining_now=max(0, snap.available - reserve),
                                         per_window=per_window, window=window,
                                         until_reset=max(0.0, until_reset))

    async def snapshot(self) -> dict[GroupKey, GroupSnapshot]:
        """Every registered group's state, read from the store."""
        out: dict[GroupKey, GroupSnapshot] = {}
        for key, policy in self._policies.items():
            out[key] = await self.store.snapshot(key, policy, self._queues[key].waiters)
        self._last = out
        return out

    async def fetch(self, key: GroupKey) -> GroupSnapshot:
        """One group's state read from the store (and remembered for :meth:`peek`)."""
        snap = await self.store.snapshot(key, self.policy(key), self._queues[key].waiters)
        self._last[key] = snap
        return snap

    def peek(self, key: GroupKey) -> GroupSnapshot | None:
        """One group's state without I/O: exact for the memory store, else the last one read."""
        if isinstance(self.store, MemoryStore):
            return self.store.peek(key, self.policy(key), self._queues[key].waiters)
        return self._last.get(key)

    def snapshot_nowait(self) -> dict[GroupKey, GroupSnapshot]:
        """Every group's state without I/O: exact for the memory store, else the last one read."""
        snaps = {key: self.peek(key) for key in self._policies}
        return {key: snap for key, snap in snaps.items() if snap is not None}
