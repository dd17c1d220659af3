"""A harvest's counters: live (:class:`HarvestProgress`) and final (:class:`HarvestSummary`)."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["HarvestProgress", "HarvestSummary"]


@attrs.define
class HarvestProgress:
    """Live counters of a harvest (read them while it runs).

    ``total``: calls listed by the server for the period (None until the first page); ``done``: details
    fetched and stored in this run; ``skipped``: already stored before; ``failed``: gave up after every
    retry; ``pages``: listing pages read; ``requests``/``throttled``: requests this process sent to the
    Call Logs API, and 429s among them, since the harvest began.
    """

    total: int | None = None
    done: int = 0
    skipped: int = 0
    failed: int = 0
    #: Logs retention deleted before their turn (skipped or answered "not found"): not failures.
    expired: int = 0
    pages: int = 0
    requests: int = 0
    throttled: int = 0
    started: float = 0.0
    finished: bool = False
    #: :meth:`Harvest.stop` was called: requests already sent are finishing, nothing new starts.
    stopping: bool = False

    @property
    def left(self) -> int | None:
        """Calls still to fetch (None until the total is known)."""
        if self.total is None:
            return None
        return max(0, self.total - self.done - self.skipped - self.failed - self.expired)


@attrs.frozen
class HarvestSummary:
    """The outcome of a finished (or interrupted) harvest."""

    total: int
    fetched: int
    skipped: int
    failed: int
    pages: int
    requests: int
    throttled: int
    elapsed: float
    complete: bool
    expired: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return attrs.asdict(self)
