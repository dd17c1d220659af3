"""The Redis store's transactions: optimistic ``WATCH``/``MULTI`` on one group document, combined per process.

Every transition (acquire, observe, cancel, snapshot) loads the group's JSON document, applies the pure
:class:`~plumasync.governor.core.state.GroupState` transition and writes the result back; a write by another
process in between aborts the ``EXEC`` and the round runs again on the new state.

**Flat combining.**  One transaction per operation makes processes abort each other on a hot group: eight
processes sending acquire and observe each run their own transaction and most of them lose.  So the
operations one process issues on one group queue up, and whoever runs the next round applies *all* the
queued operations, in the order they were issued, to the loaded state in *one* transaction, then hands
each caller its own result.  A process needs about one transaction per round instead of one per request.
Applying operations in order to one state is exactly what applying them one by one in separate
transactions does (they all see the same ``now``, which one-by-one calls a few microseconds apart would
barely differ in), so the decisions are those of the rules in ``GroupState``, nothing re-implemented here.

An aborted round is re-read at once (another process just wrote: the new state is there to be read), and
picks up the operations queued meanwhile; only after several aborts in a row does it back off.  One
attempt itself (``WATCH``, read, change, ``MULTI``/``SET``/``EXEC``) is :mod:`.redis_txn`'s.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable

import anyio
import attrs

from ..core.model import GroupKey, Policy
from ..core.state import GroupState
from .redis_txn import Change, attempt_cluster, attempt_single

try:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis store needs the redis package: pip install 'plumasync[redis]'") from exc

__all__ = ["ChangeFor", "Combiner", "Transition"]

#: One transition: ``fn(state, now)`` mutates the state and returns the caller's answer.
Transition = Callable[[GroupState, float], object]

#: The store's :data:`~.redis_txn.Change` for a group: ``change_for(key, policy, fn)`` loads the stored
#: document, applies ``fn`` to the state and says what to write back.
ChangeFor = Callable[[GroupKey, Policy, Callable[[GroupState], object]], Change]

#: Aborts in a row re-read at once before the jittered, growing pause starts.
_EAGER_RETRIES = 3


@attrs.define(eq=False)
class _Op:
    """One queued operation and, once a round committed it, its answer (or the exception it raised)."""

    policy: Policy
    fn: Transition
    done: bool = False
    result: object = None
    error: BaseException | None = None
    now: float = 0.0
    state: GroupState | None = None


@attrs.define(eq=False)
class _Group:
    """The operations of one group waiting for a round, and whether a round is running."""

    pending: list[_Op] = attrs.field(factory=list)
    batch: list[_Op] = attrs.field(factory=list)  # the running round's operations
    busy: bool = False
    idle: anyio.Event = attrs.field(factory=anyio.Event)


class Combiner:
    """Runs one process's transitions on Redis group documents, combining concurrent ones per group.

    ``client`` is a ``redis.asyncio.Redis`` or ``RedisCluster``; ``now(skey)`` gives the store's time;
    ``change`` turns a batch's transitions into what one transaction reads and writes (the store's
    document format and backstop TTL).  :attr:`rounds` counts committed transactions and :attr:`aborts`
    aborted ones (for tests and benchmarks).
    """

    def __init__(self, client: aioredis.Redis | RedisCluster, *, now: Callable[[str], Awaitable[float]],
                 change: ChangeFor) -> None:
        self.redis = client
        self._now = now
        self._change = change
        self._groups: dict[GroupKey, _Group] = {}
        self.rounds = 0
        self.aborts = 0

    async def run(self, key: GroupKey, skey: str, policy: Policy,
                  fn: Transition) -> tuple[object, float, GroupState]:
        """Apply ``fn`` to group ``key`` (stored at ``skey``), combined with the other operations queued
        now; returns its answer, the time it was applied at and the state it left."""
        group = self._groups.setdefault(key, _Group())
        op = _Op(policy, fn)
        group.pending.append(op)
        while not op.done:
            if group.busy:
                await group.idle.wait()  # the running round may have taken this operation
                continue
            group.busy, group.idle = True, anyio.Event()
            try:
                await self._round(key, skey, group)
            except BaseException as exc:  # Redis unreachable, say: every operation of the round gets it
                for other in group.batch:
                    other.done, other.error = True, exc
                if op in group.pending:  # another policy's round failed: this one is not left queued
                    group.pending.remove(op)
                raise
            finally:
                group.batch = []
                group.busy = False
                group.idle.set()
        if op.error is not None:
            raise op.error
        assert op.state is not None
        return op.result, op.now, op.state

    async def _round(self, key: GroupKey, skey: str, group: _Group) -> None:
        """Commit the queued operations (those sharing the first one's policy) in one transaction."""
        aborts = 0
        backoff = 0.0002
        batch = group.batch = []
        while True:
            # Operations queued while the last attempt ran join the batch, behind the earlier ones.
            policy = (batch or group.pending)[0].policy
            joining = [op for op in group.pending if op.policy == policy]
            batch += joining
            group.pending = [op for op in group.pending if op.policy != policy]
            now = await self._now(skey)
            change = self._change(key, policy, functools.partial(_apply, batch, now))
            if isinstance(self.redis, RedisCluster):
                outcome = await attempt_cluster(self.redis, skey, change)
            else:
                outcome = await attempt_single(self.redis, skey, change)
            if outcome is not None:
                self.rounds += 1
                state, answers = outcome
                assert isinstance(answers, list)
                for op, (result, error) in zip(batch, answers, strict=True):
                    op.result, op.error, op.now, op.state, op.done = result, error, now, state, True
                return
            self.aborts += 1
            aborts += 1
            if aborts > _EAGER_RETRIES:
                # Still colliding: a jittered, growing pause keeps the same writers from meeting again.
                await anyio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 0.004)


def _apply(batch: list[_Op], now: float, state: GroupState) -> list[tuple[object, BaseException | None]]:
    """Each operation's transition in turn on one state: an operation whose transition raises gets its
    exception (the transitions check before they change anything), the others go on."""
    answers: list[tuple[object, BaseException | None]] = []
    for op in batch:
        try:
            answers.append((op.fn(state, now), None))
        except Exception as exc:
            answers.append((None, exc))
    return answers
