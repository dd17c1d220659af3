"""One optimistic transaction on a group's Redis key: ``WATCH``, read, change, ``MULTI``/``SET``/``EXEC``,
at Redis' time.

The Redis store retries an attempt that another writer got in before (``None`` here); the change itself
(load the document, apply the pure transition, dump it) is the store's, passed in as a :data:`Change`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..core.state import GroupState

try:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import WatchError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis store needs the redis package: pip install 'plumasync[redis]'") from exc

__all__ = ["Change", "RedisTime", "attempt_cluster", "attempt_single"]

#: The stored document (None: absent) → the new state, the transition's result, the document to write
#: (None: unchanged, write nothing) and the key's backstop TTL in milliseconds.
Change = Callable[[bytes | str | None], tuple[GroupState, object, str | None, int]]


async def attempt_single(client: aioredis.Redis, skey: str, change: Change) -> tuple[GroupState, object] | None:
    """One WATCH/MULTI attempt in two round trips on one connection: ``WATCH``+``GET``, then
    ``MULTI``+``SET``+``EXEC`` (or ``UNWATCH`` when nothing changed).  None when another writer got in
    between."""
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(conn.pack_commands([("WATCH", skey), ("GET", skey)]))
        await conn.read_response()
        raw = await conn.read_response()
        state, result, doc, ttl = change(raw)
        if doc is None:
            await conn.send_command("UNWATCH")
            await conn.read_response()
            return state, result
        await conn.send_packed_command(conn.pack_commands([("MULTI",), ("SET", skey, doc, "PX", ttl), ("EXEC",)]))
        await conn.read_response()
        await conn.read_response()
        done = await conn.read_response()
        return None if done is None else (state, result)
    except BaseException:
        await conn.disconnect()  # a half-read exchange: never hand this connection out again
        raise
    finally:
        await pool.release(conn)


async def attempt_cluster(client: RedisCluster, skey: str, change: Change) -> tuple[GroupState, object] | None:
    """The same attempt through redis-py's cluster pipeline (it routes the slot's master)."""
    async with client.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(skey)  # type: ignore[no-untyped-call]
            raw = await pipe.get(skey)
            state, result, doc, ttl = change(raw)
            if doc is None:
                await pipe.unwatch()  # type: ignore[no-untyped-call]
                return state, result
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(skey, doc, px=ttl)
            await pipe.execute()
        except WatchError:
            return None
        return state, result


class RedisTime:
    """Redis' clock: its ``TIME`` read at most every ``refresh`` s, carried by the local monotonic clock in
    between (saves a round trip per transition; Redis' clock does not jump within seconds)."""

    def __init__(self, client: aioredis.Redis | RedisCluster, refresh: float) -> None:
        self.client = client
        self.refresh = refresh
        self._base: tuple[float, float] | None = None  # (local monotonic, Redis TIME) when read

    async def now(self, skey: str) -> float:
        """Redis' time now, asking the node that holds ``skey`` when it is due."""
        local = time.monotonic()
        if self._base is not None and local - self._base[0] <= self.refresh:
            return self._base[1] + (local - self._base[0])
        if isinstance(self.client, RedisCluster):
            # A cluster pipeline refuses keyless commands: ask the master that holds the group.
            await self.client.initialize()  # a no-op once the slots are known
            node = self.client.get_node_from_key(skey)
            sec, usec = await self.client.execute_command("TIME", target_nodes=node)
        else:
            sec, usec = await self.client.time()
        self._base = (time.monotonic(), float(sec) + float(usec) / 1_000_000)
        return self._base[1]
