"""What a harvest needs of the Call Logs API: the public face of :class:`plumasync.calllogs.CallLogs`.

The harvest is written against these protocols only, so it can be driven by any Call Logs source (a
test double, a recorded listing) and never reaches into a client's private parts.
"""

from __future__ import annotations

from typing import Protocol

from .config import Format, TimeLike
from .governor import Lane, Usage
from .governor.clock import Clock
from .models.calllogs import CallLogDetail, CallLogPage

__all__ = ["CallLogSource", "Pages"]


class Pages(Protocol):
    """A checked calls/logs query (:class:`plumasync.calllogs.LogListing`)."""

    async def page(self, offset: int) -> CallLogPage:
        """The listing page at ``offset``; one ``calllogs`` request."""
        ...


class CallLogSource(Protocol):
    """What a harvest needs of the Call Logs API: the public face of :class:`plumasync.calllogs.CallLogs`."""

    @property
    def clock(self) -> Clock:
        """The clock the budget is counted in."""
        ...

    def listing(self, start: TimeLike, end: TimeLike, *, number: str | None = ..., page_size: int = ...,
                format: Format | None = ..., lane: Lane = ..., max_wait: float | None = ...) -> Pages:
        """The checked calls/logs query for ``[start, end)`` (no request yet)."""
        ...

    async def log(self, log_id: int | str, *, format: Format | None = ..., lane: Lane = ...,
                  max_wait: float | None = ...) -> CallLogDetail:
        """One call's log; one ``calllogs`` request."""
        ...

    def usage(self) -> Usage:
        """Requests sent to the Call Logs API by this process so far, and 429s among them."""
        ...

    def eta(self, requests: int, lane: Lane = ...) -> float:
        """The least clock time ``requests`` more requests can take, from the window arithmetic."""
        ...

    def budget_now(self) -> tuple[int, int, float]:
        """``(remaining now, per window, window seconds)`` for the bulk lane, known without I/O."""
        ...
