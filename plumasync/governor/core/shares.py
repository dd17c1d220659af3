"""Fair shares between named consumers of one account, sans-I/O: guaranteed share plus borrowing.

Several programs (a dashboard, a harvest per region) may spend one account's budget.  Each names itself
a :class:`Consumer` with a weight.  Within a budget window, while several consumers are *active*:

* each active consumer's **share** is ``capacity * weight / (sum of the active consumers' weights)``,
  where ``capacity`` is what the asking lane may take of a window: ``limit`` for the interactive lane,
  ``limit - reserve`` for the bulk lane (bulk never takes the last reserve; that rule is the lane's and
  still applies, in :class:`~plumasync.governor.core.state.GroupState`);
* a consumer that has been admitted fewer requests than its share this window is **below its share**:
  only the budget itself can refuse it;
* a consumer at or above its share may **borrow** only what the others do not need: it is admitted
  while the budget still has at least one request free beyond the unused shares of the other active
  consumers, and refused otherwise; so a consumer below its share is admitted ahead of one above it.

A consumer is *active* while it asks: its last acquire attempt, or the time it was told to come back
(a refused consumer is waiting, not gone), plus a tenth of a window (:data:`ACTIVE_FRACTION`).  A
consumer that stops asking lends its whole share to the others after that.  Two consumers weighted
2:1, both saturating, are admitted ``100/50`` of a 150-request window in the interactive lane and
``90/45`` in the bulk lane with a reserve of 15 (rounding: a fractional share is rounded up for the
consumer below it, so three equal consumers of 100 get 34/33/33).

Windows are the server's (headers mode); where the group has none (cold start, headerless), a window
opens at the first admission after the previous one ended.  The book lives in the stored group state,
so every store shares it between processes (each consumer's weight is the one its own client declared
at its latest ask), and requests without a consumer are not counted by it: configure no consumer
anywhere and nothing here runs.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from ...errors import ConfigurationError
from .model import Decision

__all__ = ["ACTIVE_FRACTION", "Consumer", "Shares", "check_name", "check_weight", "load_shares"]

#: A consumer counts as active for this fraction of a window after it last asked (or was told to come back).
ACTIVE_FRACTION = 0.1
_EPS = 1e-9


def check_name(name: object) -> str:
    """``name`` if it is a usable consumer name (a non-empty string), else :class:`ConfigurationError`."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a consumer name must be a non-empty string, got {name!r}")
    return name


def check_weight(name: str, weight: object) -> float:
    """``weight`` as a float if it is a finite number > 0, else :class:`ConfigurationError`."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
            or weight <= 0:
        raise ConfigurationError(f"the weight of consumer {name!r} must be a finite number > 0, got {weight!r}")
    return float(weight)


@attrs.frozen
class Consumer:
    """One named consumer of an account's budget and its ``weight`` (default 1).

    Its requests are shared out against the other active consumers' by weight (see
    :mod:`plumasync.governor.core.shares`).  A bad name or weight raises :class:`ConfigurationError`.
    """

    name: str = attrs.field(converter=check_name)
    weight: float = 1.0

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "weight", check_weight(self.name, self.weight))


@attrs.define
class Entry:
    """One consumer in the book: its weight, until when it counts as asking, its admissions this window."""

    weight: float
    seen: float
    used: int = 0


def _entry(raw: Any) -> Entry:
    if isinstance(raw, Entry):
        return raw
    if not isinstance(raw, Mapping) or set(raw) != {"weight", "seen", "used"}:
        raise ValueError("not a consumer entry")
    weight, seen, used = raw["weight"], raw["seen"], raw["used"]
    if not (_finite(weight) and weight > 0 and _finite(seen)
            and isinstance(used, int) and not isinstance(used, bool) and used >= 0):
        raise ValueError("a consumer entry of the wrong type")
    return Entry(float(weight), float(seen), used)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@attrs.define
class Shares:
    """The consumers' book of one group: the window it counts, each consumer, and who holds which permit."""

    #: Start of the window the ``used`` counts belong to (store clock), None before the first count.
    epoch: float | None = None
    consumers: dict[str, Entry] = attrs.field(factory=dict)
    #: Permit → consumer, for permits still in flight (a cancelled permit gives its use back).
    owners: dict[str, str] = attrs.field(factory=dict)

    def gate(self, now: float, consumer: Consumer, *, capacity: int, free: int | None, epoch: float | None,
             window: float, margin: float) -> Decision | None:
        """None when the share rule lets ``consumer`` ask the budget now, else the refusal.

        ``capacity``: what the asking lane may take of a window; ``free``: what it may still take now (None:
        not known, this book's own count is used); ``epoch``: the server's current window start (None:
        windows of this book's own, opened by the first admission after the last one ended).
        """
        self._turn(now, epoch, window, margin)
        grace = window * ACTIVE_FRACTION
        me = self.consumers.get(consumer.name)
        if me is None:
            me = self.consumers[consumer.name] = Entry(consumer.weight, now)
        me.weight, me.seen = consumer.weight, max(me.seen, now)
        active = {n: e for n, e in self.consumers.items() if e.seen + grace > now}
        total = sum(e.weight for e in active.values())
        share = {n: capacity * e.weight / total for n, e in active.items()}
        if me.used < share[consumer.name] - _EPS:
            return None  # below its share: only the budget can refuse it
        owed = {n: math.ceil(share[n] - e.used - _EPS) for n, e in active.items() if n != consumer.name}
        held = sum(v for v in owed.values() if v > 0)
        room = capacity - sum(e.used for e in self.consumers.values()) if free is None else free
        if held <= 0 or room - held >= 1:
            return None  # borrowing what nobody active needs
        lapse = min(active[n].seen + grace for n, v in owed.items() if v > 0)
        turn = (now if self.epoch is None else self.epoch) + window + margin
        return Decision(False, min(lapse, turn))

    def record(self, now: float, consumer: Consumer, permit: str, decision: Decision,
               in_flight: Collection[str]) -> None:
        """Count a grant, or note until when a refused consumer will be back (it stays active meanwhile)."""
        me = self.consumers[consumer.name]
        if decision.granted:
            me.used += 1
            self.owners = {p: n for p, n in self.owners.items() if p in in_flight}
            self.owners[permit] = consumer.name
            if self.epoch is None:
                self.epoch = now
        elif decision.retry_at is not None:
            me.seen = max(me.seen, decision.retry_at)

    def cancel(self, permit: str, admitted_at: float) -> None:
        """A permit given back unused: its consumer's use of this window is given back too."""
        name = self.owners.pop(permit, None)
        entry = None if name is None else self.consumers.get(name)
        if entry is not None and self.epoch is not None and admitted_at >= self.epoch:
            entry.used = max(0, entry.used - 1)

    def _turn(self, now: float, epoch: float | None, window: float, margin: float) -> None:
        """Start a new window's counts when the server's window (or this book's own) has turned."""
        if epoch is None:
            if self.epoch is None or now < self.epoch + window + margin:
                return
            epoch = None  # this book's own window ended: the next admission opens one
        elif self.epoch is not None and abs(epoch - self.epoch) < window / 2:
            return  # the same window: its end, seen through a refined clock offset, moves by a second or two
        self.epoch = epoch
        grace = window * ACTIVE_FRACTION
        for entry in self.consumers.values():
            entry.used = 0
        # Consumers neither asking nor counted any more are forgotten: the book stays small.
        self.consumers = {n: e for n, e in self.consumers.items() if e.seen + grace > now}


def load_shares(raw: Any) -> Shares | None:
    """The book as a store keeps it (``attrs.asdict``), or None; ValueError when it is not one."""
    if raw is None or isinstance(raw, Shares):
        return raw
    if not isinstance(raw, Mapping) or not set(raw) <= {"epoch", "consumers", "owners"}:
        raise ValueError("not a consumers' book")
    epoch, consumers, owners = raw.get("epoch"), raw.get("consumers", {}), raw.get("owners", {})
    if (epoch is not None and not _finite(epoch)) or not isinstance(consumers, Mapping) \
            or not isinstance(owners, Mapping) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in owners.items()):
        raise ValueError("a consumers' book of the wrong type")
    return Shares(None if epoch is None else float(epoch),
                  {str(n): _entry(e) for n, e in consumers.items()}, dict(owners))
