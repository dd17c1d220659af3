"""The retry policy (tenacity), and the one call that applies it (:meth:`RetryPolicy.call`).

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
import tenacity

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

    def _verdict(self, exc: BaseException, throttled: int, failed: int) -> tuple[bool, float, int, int]:
        """After a failure like ``exc`` with those counts: give up?, the wait, the tries made and allowed."""
        if isinstance(exc, RateLimitExceeded):  # the governor holds the retry until the window resets
            return throttled >= self.rate_limit_attempts, 0.0, throttled, self.rate_limit_attempts
        return failed >= self.attempts, self.backoff(failed), failed, self.attempts

    async def call(self, attempt: Callable[[], Awaitable[T]], *, sleep: Callable[[float], Awaitable[None]],
                   what: str = "request") -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the policy's attempts are spent.

        The first attempt runs straight away, outside tenacity (the common case pays nothing for the
        policy); after a retryable failure, one ``tenacity.AsyncRetrying`` runs the rest.  Waits go
        through ``sleep`` (clock seconds: the client's clock, or a stopping harvest's abandonable sleep);
        one log line per retry names ``what``.  The last failure is raised as it is.
        """
        try:
            return await attempt()
        except PlumError as exc:
            if not is_retryable(exc):
                raise
            first = exc
        tally = _Tally()
        done, wait, tries, limit = self._verdict(first, *tally.count(0, first))
        if done:
            raise first
        _log_retry(what, first, tries, limit, wait)
        await sleep(wait)

        verdicts: dict[int, tuple[bool, float, int, int]] = {}  # one per attempt: the wait logged is the wait slept

        def verdict(state: tenacity.RetryCallState) -> tuple[bool, float, int, int]:
            if state.attempt_number not in verdicts:
                exc = state.outcome.exception() if state.outcome else None
                assert exc is not None
                verdicts[state.attempt_number] = self._verdict(exc, *tally.count(state.attempt_number, exc))
            return verdicts[state.attempt_number]

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            _, wait, tries, limit = verdict(state)
            _log_retry(what, exc, tries, limit, wait)

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=lambda state: verdict(state)[0],
            wait=lambda state: verdict(state)[1],
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(attempt)


class _Tally:
    """Failures so far, by kind, counting each attempt once (tenacity asks stop and wait about the same
    attempt, in either order).  Attempt 0 is the first one, made before tenacity took over."""

    def __init__(self) -> None:
        self._throttled: dict[int, bool] = {}

    def count(self, number: int, exc: BaseException | None) -> tuple[int, int]:
        """Record attempt ``number``'s failure; return (429s, other failures) so far."""
        self._throttled.setdefault(number, isinstance(exc, RateLimitExceeded))
        throttled = sum(self._throttled.values())
        return throttled, len(self._throttled) - throttled


def _log_retry(what: str, exc: BaseException | None, tries: int, limit: int, wait: float) -> None:
    log.info("retrying %s after %s (%d of %d tries failed), in %.1f s", what, type(exc).__name__, tries, limit, wait)
