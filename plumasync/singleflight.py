"""Single-flight: concurrent callers of the same key share one execution and its outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Call(Generic[T]):
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Run ``fn`` once per key at a time; callers arriving meanwhile get the same result or error.

    If the caller that runs ``fn`` is cancelled, the waiters are not left hanging: the next of them
    runs ``fn`` itself.
    """

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}
        #: How many calls were served by another caller's execution (for statistics).
        self.shared = 0

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Return ``await fn()``, sharing one execution among concurrent callers of ``key``."""
        while True:
            call = self._calls.get(key)
            if call is None:
                break
            call.waiters += 1
            await call.done.wait()
            if call.error is None:
                self.shared += 1
                return call.value  # type: ignore[return-value]
            if not isinstance(call.error, anyio.get_cancelled_exc_class()):
                self.shared += 1
                raise call.error
            # the leader was cancelled: try again (one of us becomes the leader)
        call = _Call[T]()
        self._calls[key] = call
        try:
            call.value = await fn()
            return call.value
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            del self._calls[key]
            call.done.set()
