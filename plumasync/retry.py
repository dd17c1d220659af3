"""The retry policy (tenacity), sleeping through the injected clock.

* **429** — retried at once: the governor has paused the group until the reset, so the retry waits
  there, and is counted there.  Up to ``rate_limit_attempts`` times.
* **5xx and transport errors** (refused, dropped, timed out) — capped exponential backoff with jitter,
  up to ``attempts`` attempts in all.
* Everything else (400, 401, 405, a failure envelope, a parse error) is not retried here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import tenacity

from .errors import ConfigurationError, RateLimitExceeded, ServerError, TransportError
from .governor.clock import Clock

__all__ = ["RetryPolicy", "is_retryable"]

log = logging.getLogger("plumasync")


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
        """Seconds to wait after the ``failures``-th 5xx/transport failure."""
        base = self.backoff_initial * 2.0 ** max(0, failures - 1)
        return float(min(self.backoff_max, base + random.uniform(0, self.jitter)))

    def gives_up_after(self, first: BaseException) -> bool:
        """True when one failure like ``first`` already uses every attempt the policy allows."""
        if isinstance(first, RateLimitExceeded):
            return self.rate_limit_attempts <= 1
        return self.attempts <= 1

    def first_wait(self, first: BaseException) -> float:
        """Seconds to wait after a first failure before the next attempt."""
        return 0.0 if isinstance(first, RateLimitExceeded) else self.backoff(1)

    def retrying(self, clock: Clock, prior: BaseException | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> tenacity.AsyncRetrying:
        """A fresh tenacity controller for one call; ``prior``: a first failure already suffered.

        Callers make the first attempt without tenacity (the common case costs nothing) and enter this
        loop only after a retryable failure, passing it as ``prior`` so that it counts.  The backoff
        sleeps on ``clock``, or through ``sleep`` when given.
        """
        # Outcomes per attempt number: tenacity may call stop and wait in either order.
        seen: dict[int, bool] = {}
        if prior is not None:
            seen[0] = isinstance(prior, RateLimitExceeded)

        def tally(state: tenacity.RetryCallState) -> tuple[int, int]:
            exc = state.outcome.exception() if state.outcome else None
            seen.setdefault(state.attempt_number, isinstance(exc, RateLimitExceeded))
            throttled = sum(seen.values())
            return throttled, len(seen) - throttled

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            throttled, failed = tally(state)
            if isinstance(exc, RateLimitExceeded):
                return throttled >= self.rate_limit_attempts
            return failed >= self.attempts

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            _, failed = tally(state)
            if isinstance(exc, RateLimitExceeded):
                return 0.0  # the governor holds the retry until the window resets
            return self.backoff(failed)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying after %s (attempt %d)", type(exc).__name__, state.attempt_number)

        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=stop,
            wait=wait,
            sleep=sleep or clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
