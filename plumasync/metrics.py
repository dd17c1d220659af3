"""OpenTelemetry metrics, through ``opentelemetry-api`` only: a no-op until the application installs an SDK.

Instruments (attribute ``group``: the budget group, e.g. ``calllogs``):

* ``plumasync.requests`` (counter): requests the governor admitted;
* ``plumasync.throttled`` (counter): 429 answers among them;
* ``plumasync.budget.wait`` (counter, seconds): time requests spent waiting for the budget;
* ``plumasync.budget.remaining`` (gauge): requests left in the group's current window, as the governor
  knows it without I/O;
* ``plumasync.harvest.logs`` (gauge, attribute ``state``: ``done``, ``left``, ``expired``): running harvests.

The governor's hooks are one call each and cost a no-op method call when no SDK is installed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import metrics

if TYPE_CHECKING:
    from .governor.core.model import GroupKey, GroupSnapshot


class Watched(Protocol):
    """What the remaining-budget gauge reads of a governor (:class:`plumasync.governor.Governor`): its
    groups' states without I/O.  A protocol, so the governor can call this module without a circle."""

    def snapshot_nowait(self) -> Mapping[GroupKey, GroupSnapshot]: ...


__all__ = ["Watched", "record_granted", "record_throttled", "watch_governor", "watch_harvest"]

_meter = metrics.get_meter("plumasync")
_requests = _meter.create_counter("plumasync.requests", unit="{request}", description="Requests admitted")
_throttled = _meter.create_counter("plumasync.throttled", unit="{request}", description="HTTP 429 answers")
_waited = _meter.create_counter("plumasync.budget.wait", unit="s", description="Time spent waiting for budget")
_governors: weakref.WeakSet[Watched] = weakref.WeakSet()
_harvests: weakref.WeakSet[Any] = weakref.WeakSet()


def _group(key: GroupKey) -> dict[str, str]:
    return {"group": key.group}  # the name only: the host and account hash stay out of the metrics


def record_granted(key: GroupKey, waited: float) -> None:
    """A request of budget group ``key`` was admitted after ``waited`` clock seconds."""
    attributes = _group(key)
    _requests.add(1, attributes)
    if waited > 0:
        _waited.add(waited, attributes)


def record_throttled(key: GroupKey) -> None:
    """A request of budget group ``key`` was answered 429."""
    _throttled.add(1, _group(key))


def watch_governor(governor: Watched) -> None:
    """Report ``governor``'s remaining budget per group while it lives."""
    _governors.add(governor)


def watch_harvest(harvest: Any) -> None:
    """Report a harvest's done/left/expired counters while it lives."""
    _harvests.add(harvest)


def _remaining(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for governor in list(_governors):
        for key, snap in governor.snapshot_nowait().items():
            if snap.available is not None:
                yield metrics.Observation(snap.available, _group(key))


def _harvest_logs(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    for harvest in list(_harvests):
        progress = harvest.progress
        yield metrics.Observation(progress.done, {"state": "done"})
        yield metrics.Observation(progress.left or 0, {"state": "left"})
        yield metrics.Observation(progress.expired, {"state": "expired"})


_meter.create_observable_gauge("plumasync.budget.remaining", callbacks=[_remaining], unit="{request}",
                               description="Requests left in the current window")
_meter.create_observable_gauge("plumasync.harvest.logs", callbacks=[_harvest_logs], unit="{log}",
                               description="Harvest logs by state")
