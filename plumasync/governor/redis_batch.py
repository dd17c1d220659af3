"""The Redis store's transactions: optimistic ``WATCH``/``MULTI`` on one group document, combined per process.

Every transition (acquire, observe, cancel, snapshot) loads the group's JSON document, applies the pure
:class:`~plumasync.governor.state.GroupState` transition and writes the result back; a write by another
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
picks up the operations queued meanwhile; only after several aborts in a row does it back off.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs

from .state import GroupState, Policy
from .store import dump_state, load_state

try:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import WatchError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis store needs the redis package: pip install 'plumasync[redis]'") from exc

__all__ = ["Combiner", "Transition"]

#: One transition: ``fn(state, now)`` mutates the state and returns the caller's answer.
Transition = Callable[[GroupState, float], object]

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
    ``ttl_for(policy, state)`` the backstop TTL (ms) written with each document.  :attr:`rounds` counts
    committed transactions and :attr:`aborts` aborted ones (for tests and benchmarks).
    """

    def __init__(self, client: aioredis.Redis | RedisCluster, *, now: Callable[[str], Awaitable[float]],
                 ttl_for: Callable[[Policy, GroupState], int]) -> None:
        self.redis = client
        self._now = now
        self._ttl_for = ttl_for
        self._groups: dict[str, _Group] = {}
        self.rounds = 0
        self.aborts = 0

    async def run(self, key: str, skey: str, policy: Policy, fn: Transition) -> tuple[object, float, GroupState]:
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
                raise
            finally:
                group.batch = []
                group.busy = False
                group.idle.set()
        if op.error is not None:
            raise op.error
        assert op.state is not None
        return op.result, op.now, op.state

    async def _round(self, key: str, skey: str, group: _Group) -> None:
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
            outcome = await self._attempt(skey, key, policy, functools.partial(_apply, batch, now))
            if outcome is not None:
                self.rounds += 1
                state, answers = outcome
                for op, (result, error) in zip(batch, answers, strict=True):
                    op.result, op.error, op.now, op.state, op.done = result, error, now, state, True
                return
            self.aborts += 1
            aborts += 1
            if aborts > _EAGER_RETRIES:
                # Still colliding: a jittered, growing pause keeps the same writers from meeting again.
                await anyio.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 0.004)

    async def _attempt(self, skey: str, key: str, policy: Policy,
                       fn: Callable[[GroupState], Any]) -> tuple[GroupState, Any] | None:
        if isinstance(self.redis, RedisCluster):
            return await self._attempt_cluster(skey, key, policy, fn)
        return await self._attempt_direct(skey, key, policy, fn)

    async def _attempt_direct(self, skey: str, key: str, policy: Policy,
                              fn: Callable[[GroupState], Any]) -> tuple[GroupState, Any] | None:
        """One WATCH/MULTI attempt in two round trips on one connection: ``WATCH``+``GET``, then
        ``MULTI``+``SET``+``EXEC`` (or ``UNWATCH`` when nothing changed: a refusal writes nothing and
        aborts nobody).  None when another writer got in between."""
        assert not isinstance(self.redis, RedisCluster)
        pool = self.redis.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(conn.pack_commands([("WATCH", skey), ("GET", skey)]))
            await conn.read_response()
            raw = await conn.read_response()
            state = load_state(raw, policy, key)
            result = fn(state)
            doc = dump_state(state)
            if raw is not None and doc.encode() == raw:
                await conn.send_command("UNWATCH")
                await conn.read_response()
                return state, result
            ttl = self._ttl_for(policy, state)
            await conn.send_packed_command(conn.pack_commands([("MULTI",), ("SET", skey, doc, "PX", ttl),
                                                               ("EXEC",)]))
            await conn.read_response()
            await conn.read_response()
            done = await conn.read_response()
            return None if done is None else (state, result)
        except BaseException:
            await conn.disconnect()  # a half-read exchange: never hand this connection out again
            raise
        finally:
            await pool.release(conn)

    async def _attempt_cluster(self, skey: str, key: str, policy: Policy,
                               fn: Callable[[GroupState], Any]) -> tuple[GroupState, Any] | None:
        """The same attempt through redis-py's cluster pipeline (it routes the slot's master)."""
        assert isinstance(self.redis, RedisCluster)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(skey)  # type: ignore[no-untyped-call]
                raw = await pipe.get(skey)
                state = load_state(raw, policy, key)
                result = fn(state)
                doc = dump_state(state)
                if raw is not None and doc.encode() == raw:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]
                    return state, result
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(skey, doc, px=self._ttl_for(policy, state))
                await pipe.execute()
            except WatchError:
                return None
            return state, result


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
