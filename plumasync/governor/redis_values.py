"""The Redis store's shared values and leases: one owner-checked Lua script (:mod:`.redis_lua`).

A mixin of :class:`~plumasync.governor.redis.RedisStore`: values (temporary credentials shared by every
process) live in ``<prefix>:value:<name>``, leases in ``<prefix>:lease:<name>``; both expire by the
store's clock (checked in the script) and, as a backstop, by Redis' own TTL.  While Redis is unreachable
they fall back to the process, as the budgets do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .redis_fallback import RedisDown as _Down
from .store import MemoryStore

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

    def _value_key(self, name: str) -> str:
        return f"{self.prefix}:value:{name}"

    def _lease_key(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    async def get_value(self, name: str) -> bytes | None:
        """The value, or None when absent or expired."""
        try:
            raw = await self._call(lambda: self._script(keys=[self._value_key(name)],
                                                        args=["value_get", self._now_arg()]))
        except _Down:
            return await self._fallback.get_value(name)
        return None if raw is None else bytes(raw)

    async def set_value(self, name: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds of the store's clock."""
        args: list[str | bytes] = ["value_set", self._now_arg(), value, repr(float(ttl)),
                                   str(self._ttl_ms(ttl))]
        try:
            await self._call(lambda: self._script(keys=[self._value_key(name)], args=args))
        except _Down:
            await self._fallback.set_value(name, value, ttl)

    async def delete_value(self, name: str) -> None:
        """Forget a value."""
        try:
            await self._call(lambda: self.redis.delete(self._value_key(name)))
        except _Down:
            await self._fallback.delete_value(name)

    async def claim(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the lease unless another owner holds an unexpired one (atomic, in Lua)."""
        args = ["claim", self._now_arg(), owner, repr(float(ttl)), str(self._ttl_ms(ttl))]
        try:
            return bool(await self._call(lambda: self._script(keys=[self._lease_key(name)], args=args)))
        except _Down:
            return await self._fallback.claim(name, owner, ttl)

    async def release(self, name: str, owner: str) -> None:
        """Drop the lease if ``owner`` holds it."""
        try:
            await self._call(lambda: self._script(keys=[self._lease_key(name)], args=["release", owner]))
        except _Down:
            await self._fallback.release(name, owner)
