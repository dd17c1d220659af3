"""The retry policy, and the one loop that applies it (:meth:`RetryPolicy.call`).

* **429** — retried at once: the governor has paused the group until the reset, so the retry waits
  there, and is counted there.  Up to ``rate_limit_attempts`` times.
* **5xx and transport errors** (refused, dropped, timed out) — capped exponential backoff with jitter,
  up to ``attempts`` attempts in all.
* Everything else (400, 401, 405, a failure envelope, a parse error) is not retried here.

Every attempt goes back through the governed transport, so every attempt is admitted and counted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from .errors import ConfigurationError, PlumError, RateLimitExceeded, ServerError, TransportError

__all__ = ["RetryPolicy", "is_retryable"]

log = logging.getLogger("plumasync")

T = TypeVar("T")

#: Past this many doublings every backoff is ``backoff_max`` anyway; ``2.0 ** n`` overflows near 1024.
_MAX_DOUBLINGS = 64


def _at_least(minimum: float) -> Any:
    def check(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigurationError(f"RetryPolicy.{attr.name} must be >= {minimum}, got {value!r}")

    return check


def is_retryable(exc: BaseException) -> bool:
    """True for a server 429, a 5xx and a transport error."""
    if isinstance(exc, RateLimitExceeded):
        return exc.status == 429
    return isinstance(exc, (ServerError, TransportError))


@attrs.frozen
class RetryPolicy:
    """How hard to try: ``attempts`` in all for 5xx/transport errors, ``rate_limit_attempts`` for 429s.

    Backoff between 5xx/transport attempts: ``backoff_initial * 2**n`` seconds plus up to ``jitter``
    seconds of random jitter, capped at ``backoff_max``.
    """

    attempts: int = attrs.field(default=5, validator=_at_least(1))
    rate_limit_attempts: int = attrs.field(default=10, validator=_at_least(1))
    backoff_initial: float = attrs.field(default=0.5, validator=_at_least(0))
    backoff_max: float = attrs.field(default=30.0, validator=_at_least(0))
    jitter: float = attrs.field(default=0.5, validator=_at_least(0))

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th 5xx/transport failure (any count, however large)."""
        doublings = min(max(0, failures - 1), _MAX_DOUBLINGS)
        base = self.backoff_initial * 2.0**doublings
        return float(min(self.backoff_max, base + random.uniform(0, self.jitter)))

    async def call(self, attempt: Callable[[], Awaitable[T]], *, sleep: Callable[[float], Awaitable[None]],
                   what: str = "request") -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the policy's attempts are spent.

        The first attempt runs straight away (the common case pays nothing for the policy).  After a
        retryable failure it waits through ``sleep`` (clock seconds: the client's clock, or a stopping
        harvest's abandonable sleep) and tries again; it logs one line per retry, naming ``what``.
        The last failure is raised as it is.
        """
        throttled = failed = 0
        while True:
            try:
                return await attempt()
            except PlumError as exc:
                if not is_retryable(exc):
                    raise
                if isinstance(exc, RateLimitExceeded):
                    throttled += 1
                    if throttled >= self.rate_limit_attempts:
                        raise
                    wait, tries, limit = 0.0, throttled, self.rate_limit_attempts  # the governor holds it
                else:
                    failed += 1
                    if failed >= self.attempts:
                        raise
                    wait, tries, limit = self.backoff(failed), failed, self.attempts
                log.info("retrying %s after %s (%d of %d tries failed), in %.1f s",
                         what, type(exc).__name__, tries, limit, wait)
            await sleep(wait)
