"""The Redis store's shared values and leases: one owner-checked Lua script (:mod:`.redis_lua`).

A mixin of :class:`~plumasync.governor.stores.redis.RedisStore`: values (temporary credentials shared by
every process) live in ``<prefix>:value:<name>``, leases in ``<prefix>:lease:<name>``; both expire by the
store's clock (checked in the script) and, as a backstop, by Redis' own TTL.  While Redis is unreachable
they fall back to the process, as the budgets do.  Fleet counters (cache statistics) are plain hashes,
``<prefix>:counts:<name>``, added to with ``HINCRBY``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from .base import MemoryStore
from .redis_fallback import RedisDown as _Down

__all__ = ["RedisValues"]

T = TypeVar("T")


class RedisValues:
    """Shared values and leases in Redis; the store provides the client, the script and the fallback."""

    prefix: str
    redis: Any
    _script: Any
    _fallback: MemoryStore

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        raise NotImplementedError  # the store's: Redis, or _Down when it is unreachable

    def _now_arg(self) -> str:
        raise NotImplementedError

    def _ttl_ms(self, seconds: float) -> int:
        raise NotImplementedError

    async def _or_fallback(self, fn: Callable[[], Awaitable[Any]], fallback: Callable[[], Awaitable[T]]) -> Any:
        """``fn`` on Redis, or ``fallback`` in this process while Redis is unreachable."""
        try:
            return await self._call(fn)
        except _Down:
            return await fallback()

    def _run_script(self, kind: str, name: str, args: list[str | bytes]) -> Callable[[], Awaitable[Any]]:
        return lambda: self._script(keys=[f"{self.prefix}:{kind}:{name}"], args=args)

    async def get_value(self, name: str) -> bytes | None:
        """The value, or None when absent or expired."""
        raw = await self._or_fallback(self._run_script("value", name, ["value_get", self._now_arg()]),
                                      lambda: self._fallback.get_value(name))
        return None if raw is None else bytes(raw)

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds of the store's clock."""
        args: list[str | bytes] = ["value_set", self._now_arg(), value, repr(float(ttl)), str(self._ttl_ms(ttl))]
        await self._or_fallback(self._run_script("value", name, args),
                                lambda: self._fallback.set_value(name, value, ttl))

    async def delete_value(self, name: str) -> None:
        """Forget a value."""
        await self._or_fallback(lambda: self.redis.delete(f"{self.prefix}:value:{name}"),
                                lambda: self._fallback.delete_value(name))

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the lease unless another owner holds an unexpired one (atomic, in Lua)."""
        args: list[str | bytes] = ["claim", self._now_arg(), owner, repr(float(ttl)), str(self._ttl_ms(ttl))]
        return bool(await self._or_fallback(self._run_script("lease", name, args),
                                            lambda: self._fallback.claim(name, owner, ttl)))

    async def release(self, name: str, owner: str) -> None:
        """Drop the lease if ``owner`` holds it."""
        await self._or_fallback(self._run_script("lease", name, ["release", owner]),
                                lambda: self._fallback.release(name, owner))

    async def add_counts(self, name: str, counts: Mapping[str, int]) -> None:
        """Add to the counters hash ``<prefix>:counts:<name>`` (``HINCRBY``, one pipeline)."""
        deltas = {field: int(delta) for field, delta in counts.items() if delta}
        if not deltas:
            return
        key = f"{self.prefix}:counts:{name}"

        async def add() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for field, delta in deltas.items():
                    pipe.hincrby(key, field, delta)
                await pipe.execute()

        await self._or_fallback(add, lambda: self._fallback.add_counts(name, deltas))

    async def get_counts(self, name: str) -> dict[str, int]:
        """The counters ``name`` summed over every process and host."""
        raw = await self._or_fallback(lambda: self.redis.hgetall(f"{self.prefix}:counts:{name}"),
                                      lambda: self._fallback.get_counts(name))
        return {(f.decode() if isinstance(f, bytes) else str(f)): int(v) for f, v in raw.items()}
