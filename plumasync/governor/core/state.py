"""The governor's budget logic, sans-I/O: pure state that takes ``now`` and headers as arguments.

One :class:`GroupState` per budget group (API host, account, group name).  Stores keep it (in memory,
as JSON in SQLite and in Redis) and call its transitions inside one atomic step each; these rules exist
only here:

* :meth:`GroupState.acquire` — may one more request be sent now?  Grants a *permit* or says when to
  ask again.
* :meth:`GroupState.observe` — a permit's response arrived (status and rate-limit headers), or it died
  without one.
* :meth:`GroupState.cancel` — a permit was never used (cancelled before sending): give it back.

The model, and why:

* **Headers mode.**  Once the server has sent ``X-RateLimit-*``, the group trusts it: a request fits
  when ``remaining - in_flight - reserve(lane) > 0``, where ``remaining`` is the lowest ``Remaining``
  seen in the current window (responses can arrive out of order) and ``in_flight`` counts permits whose
  responses have not arrived (the server may or may not have counted them yet: assume it has).
* **Fixed, clock-aligned windows.**  At the server's reset (converted to local time through the clock
  offset, plus ``margin``) a new window opens with up to half the limit (one probe when another consumer
  of the account was seen) until the first answer tells its truth (a limit lowered meanwhile, another
  consumer); that answer opens the rest of the window.
* **Server time.**  ``Reset`` is converted with the same response's ``Date``: each response bounds the
  offset ``server - local`` from below by ``date - received_at`` (``Date`` is floored to the second and
  was generated before we received it), so the reset happens no earlier than
  ``reset - max(date - received_at)`` locally.  The bound tightens as responses arrive; if a response
  contradicts it (the server clock moved), the estimate restarts from that response.
* **Cold start.**  Until the first response, one probe is in flight at a time.
* **Headerless mode.**  A group whose server sends no rate-limit headers is held by its configured
  budget with a sliding log of admissions: never more than ``limit`` in any ``window``-long interval,
  whatever the alignment of the server's own windows.
* **The server's word beats the model** (:mod:`plumasync.governor.core.judge` weighs it).  The window length
  is learned from successive distinct Resets; a Reset earlier than the model rolled to, whose window is
  still open, is the truth.  One outlier (a Reset beyond one window or not after its Date, a Date
  contradicting the offset, Remaining above Limit) is discounted until a second response agrees; no blind
  wait outlasts about twice the larger window; never-usable Resets leave a sliding log of the server's
  limit.  A 429 pauses the whole group: Retry-After, else its own Reset through its own Date, else one
  window (a doubted 429: at most one window).
* **Consumers.**  A named consumer's requests are also held to its weighted share of the window while
  others want more than it holds (:mod:`plumasync.governor.core.shares`; its book is ``shares``).
* **Crashed holders.**  A permit older than one window is dropped, so a killed process holds the
  budget for at most one window.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs

from .codec import CorruptState, checked_document
from .judge import ResetKind, fold_date, horizon, learn_window, pause_after_429, reset_kind
from .model import GRANTED, Decision, GroupSnapshot, Lane, Mode, Policy, RateHeaders, bulk_reserve
from .opening import probe_wait
from .shares import Consumer, Shares, load_shares
from .sliding import merge, next_opening, record, sorted_times

__all__ = ["GroupState"]

log = logging.getLogger("plumasync")


@attrs.define(on_setattr=attrs.setters.NO_OP)  # no hook per assignment: transitions keep the log sorted
class GroupState:
    """Budget state of one group.  All times are the store's clock seconds (Unix)."""

    limit: int
    window: float
    mode: str = Mode.COLD.value
    remaining: int | None = None
    reset: float | None = None
    reset_local: float | None = None
    offset: float | None = None
    paused_until: float | None = None
    permits: dict[str, float] = attrs.field(factory=dict)
    #: Admission times, sorted: the sliding log of a headerless group (and of the probe).
    admission_times: list[float] = attrs.field(factory=list, converter=sorted_times)
    #: Responses counted in the current window (ours), against which the server's Remaining is compared.
    answers_in_window: int = 0
    contended: bool = False
    admitted: int = 0
    throttled: int = 0
    #: ``window`` was learned from the server's successive Resets (it started as the configured one).
    learned: bool = False
    #: The last Reset the server stated and the group believed (to learn the window from the next one).
    server_reset: float | None = None
    #: Local time of the last believed response: no blind sleep lasts longer than the horizon after it.
    heard: float | None = None
    #: The last response's Reset lay beyond one window: a second such one is believed.
    far: bool = False
    #: Responses in a row whose Reset was unusable (not after their own Date).
    past: int = 0
    #: The clock offset a doubted Date implied: a second Date agreeing with it is believed.
    suspect_offset: float | None = None
    #: Smoothed round trip of believed answers: when to look again while a window's probe is out.
    rtt: float | None = None
    #: The named consumers' book (:mod:`.shares`); None while no consumer has asked.
    shares: Shares | None = attrs.field(default=None, converter=load_shares)

    @classmethod
    def new(cls, policy: Policy) -> GroupState:
        """A cold group with the policy's budget."""
        return cls(limit=policy.limit, window=policy.window)

    # -- transitions -------------------------------------------------------------------------------------

    def acquire(self, now: float, policy: Policy, lane: Lane | str, permit: str,
                consumer: Consumer | None = None) -> Decision:
        """Grant ``permit`` if the group's known state says one more request fits now (and, for a named
        ``consumer``, if its weighted share of the window allows it: :mod:`.shares`)."""
        if consumer is None:
            return self._admit(now, policy, lane, permit)
        book = self.shares = self.shares or Shares()
        reserve = self._reserve(policy, lane)
        available = self.snapshot(now, policy, "").available  # rolls the window first, as _admit will
        headers = self.mode == Mode.HEADERS.value and self.reset_local is not None
        refusal = book.gate(now, consumer, capacity=self.limit - reserve, window=self.window, margin=policy.margin,
                            free=None if available is None else available - reserve,
                            epoch=self.reset_local - self.window if headers and self.reset_local else None)
        decision = self._admit(now, policy, lane, permit) if refusal is None else refusal
        book.record(now, consumer, permit, decision, self.permits)
        return decision

    def _admit(self, now: float, policy: Policy, lane: Lane | str, permit: str) -> Decision:
        self._expire(now)
        if self.paused_until is not None:
            if now < self.paused_until:
                return Decision(False, self.paused_until)
            self.paused_until = None
        self._roll(now, policy)
        reserve = self._reserve(policy, lane)

        if self.mode == Mode.HEADERLESS.value:
            return self._acquire_sliding(now, policy, reserve, permit)
        if self.mode == Mode.COLD.value or self.remaining is None:
            # Cold start, or a contended window opening: one probe until its headers arrive.
            probe_done = probe_wait(now, window=self.window, permits=self.permits, cold=self.mode == Mode.COLD.value,
                                    reset_local=self.reset_local, contended=self.contended, limit=self.limit,
                                    rtt=self.rtt)
            if probe_done is not None:
                return Decision(False, probe_done, answer_due=True)
            return self._grant(now, permit)
        available = self.remaining - len(self.permits) - reserve
        if available > 0:
            return self._grant(now, permit)
        if self.reset_local is None:
            return Decision(False, None)
        # In-flight permits only ever lower `remaining` further, so only the reset can help ...
        retry_at = self.reset_local + policy.margin
        check_at = None if self.heard is None else self.heard + horizon(policy.window, self.window)
        if check_at is None or retry_at <= check_at:
            return Decision(False, retry_at)
        # ... unless the reset lies beyond the horizon: then one probe checks the server's word.
        if now < check_at:
            return Decision(False, check_at)
        if self.permits:
            return Decision(False, None, answer_due=True)  # its answer will tell
        self.remaining = None  # the probe's answer replaces the count, even within the same Reset
        return self._grant(now, permit)

    def observe(self, now: float, policy: Policy, permit: str, status: int | None, headers: RateHeaders) -> None:
        """Record the outcome of ``permit``: an HTTP ``status`` (None: no response) and its headers."""
        admitted_at = self.permits.pop(permit, None)
        if admitted_at is None:
            admitted_at = now  # expired or unknown permit: still learn from the headers
        if headers.complete:
            self._observe_headers(now, policy, admitted_at, status, headers)
        else:
            self._observe_headerless(now, policy, admitted_at, status, headers)

    def cancel(self, permit: str) -> None:
        """Give back a permit whose request was never sent."""
        admitted_at = self.permits.pop(permit, None)
        if admitted_at is None:
            return
        self.admitted = max(0, self.admitted - 1)
        if self.shares is not None:
            self.shares.cancel(permit, admitted_at)
        if admitted_at in self.admission_times:
            self.admission_times.remove(admitted_at)

    def snapshot(self, now: float, policy: Policy, group: str, waiters: int = 0) -> GroupSnapshot:
        """A view of the group as of ``now`` (rolls the window first, as acquire would)."""
        self._expire(now)
        self._roll(now, policy)
        remaining: int | None
        if self.mode == Mode.HEADERLESS.value:
            remaining = max(0, self.limit - sum(1 for t in self.admission_times if t > now - self.window))
            times = self.admission_times
            reset_at = times[0] + self.window + policy.margin if remaining == 0 and times else None
        else:
            remaining = self.remaining
            reset_at = None if self.reset_local is None else self.reset_local + policy.margin
        if self.mode == Mode.HEADERLESS.value:
            available = remaining  # the sliding log already counts in-flight admissions
        else:
            available = None if remaining is None else max(0, remaining - len(self.permits))
        return GroupSnapshot(
            group=group,
            mode=self.mode,
            limit=self.limit,
            window=self.window,
            remaining=remaining,
            available=available,
            in_flight=len(self.permits),
            reset_at=reset_at,
            paused_until=self.paused_until if self.paused_until and self.paused_until > now else None,
            contended=self.contended,
            admitted=self.admitted,
            throttled=self.throttled,
            waiters=waiters,
        )

    # -- serialisation (SQLite keeps the state as JSON) ----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain data for a store."""
        data = attrs.asdict(self)
        if data["shares"] is None:
            del data["shares"]  # no consumer ever named: the document of before (older versions can read it)
        return data

    @classmethod
    def from_json(cls, data: Any) -> GroupState:
        """Inverse of :meth:`to_json`; :class:`CorruptState` when ``data`` is not such a document."""
        try:
            return cls(**checked_document(data))
        except (TypeError, ValueError) as exc:  # a missing or unknown field
            raise CorruptState(f"stored group state is not valid ({exc.__class__.__name__})") from None

    # -- internals -----------------------------------------------------------------------------------------

    def _grant(self, now: float, permit: str) -> Decision:
        self.permits[permit] = now
        self.admitted += 1
        if self.mode != Mode.HEADERS.value:  # the sliding log serves only headerless groups (and the probe)
            record(self.admission_times, now, self.limit)
        return GRANTED

    def _reserve(self, policy: Policy, lane: Lane | str) -> int:
        return 0 if lane is Lane.INTERACTIVE or Lane(lane) is Lane.INTERACTIVE else bulk_reserve(policy, self.limit)

    def _expire(self, now: float) -> None:
        self.permits = {p: t for p, t in self.permits.items() if t > now - self.window}

    def _roll(self, now: float, policy: Policy) -> None:
        if self.mode != Mode.HEADERS.value or self.reset_local is None:
            return
        if now < self.reset_local + policy.margin:
            return
        windows = max(1, math.floor((now - self.reset_local - policy.margin) / self.window) + 1)
        assert self.reset is not None
        self.reset += windows * self.window
        self.reset_local += windows * self.window
        self.answers_in_window = 0
        # One probe learns the new window's truth first: somebody else may spend this account's budget,
        # the server may have lowered its limit, or its window may not be the one we rolled by.  It
        # costs one round trip per window.
        self.remaining = None

    def _acquire_sliding(self, now: float, policy: Policy, reserve: int, permit: str) -> Decision:
        opening = next_opening(self.admission_times, now, self.window, policy.margin, self.limit - reserve)
        return self._grant(now, permit) if opening is None else Decision(False, opening)

    def absorb(self, times: list[float]) -> int:
        """Count admissions made elsewhere (a store's fallback while it was cut off) into this state."""
        n = 0
        if self.mode == Mode.HEADERS.value and self.remaining is not None and self.reset_local is not None:
            window_start = self.reset_local - self.window
            n = sum(1 for t in times if t >= window_start)
            self.remaining = max(0, self.remaining - n)
        elif self.mode == Mode.HEADERLESS.value:
            n = len(times)
            self.admission_times = merge(self.admission_times, times, self.limit)
        return n

    # -- the server's word -------------------------------------------------------------------------------

    def _judge_date(self, admitted_at: float, received_at: float, date: float | None) -> float | None:
        """Fold ``date`` into the offset estimate; return it when believed, None when doubted or absent."""
        self.offset, self.suspect_offset, believed = fold_date(self.offset, self.suspect_offset, admitted_at,
                                                               received_at, date)
        return date if believed else None

    def _observe_headers(
        self, now: float, policy: Policy, admitted_at: float, status: int | None, h: RateHeaders
    ) -> None:
        assert h.limit is not None and h.remaining is not None and h.reset is not None
        date = self._judge_date(admitted_at, now, h.date)
        assert self.offset is not None
        server_now = date if date is not None else now + self.offset
        kind = reset_kind(h.reset, server_now, self.window)
        if h.remaining > h.limit:
            log.debug("discounting X-RateLimit-Remaining %d above its Limit %d", h.remaining, h.limit)
        elif kind is ResetKind.PAST:
            self.past, self.far = self.past + 1, False
            log.debug("discounting X-RateLimit-Reset %.0f s before its own Date", server_now - h.reset)
            if self.mode == Mode.COLD.value or self.past >= 3:
                self._to_sliding(now, h.limit)
        elif kind is ResetKind.FAR and not self.far and not self._same_reset(h.reset):
            self.far = True
            log.debug("discounting X-RateLimit-Reset %.0f s ahead (window %g s) until another response "
                      "agrees", h.reset - server_now, self.window)
        else:
            self.far, self.past = kind is ResetKind.FAR, 0
            self._believe(now, policy, admitted_at, status, h, server_now, learn=kind is ResetKind.OK)
            return
        self._observe_headerless(now, policy, admitted_at, status, h, keep_cold=True)

    def _same_reset(self, reset: float) -> bool:
        return self.reset is not None and abs(reset - self.reset) <= 0.5

    def _believe(self, now: float, policy: Policy, admitted_at: float, status: int | None, h: RateHeaders,
                 server_now: float, *, learn: bool) -> None:
        """A response whose rate-limit facts agree with the server's other answers: it beats the model."""
        assert h.limit is not None and h.remaining is not None and h.reset is not None
        assert self.offset is not None
        if self.mode != Mode.HEADERS.value:
            self.mode = Mode.HEADERS.value
            self.reset = None
            self.admission_times = []
        self.limit = max(1, h.limit)
        remaining = max(0, h.remaining)
        # Far Resets (believed only because two agree) are a day away, not a window: nothing to learn.
        learned = (learn_window(self.server_reset, h.reset, self.window, self.learned, server_now)
                   if learn else None)
        if learned is not None:
            log.debug("the server's window is %g s (was %g s)", learned, self.window)
            self.window, self.learned = learned, True
        self.server_reset, self.heard = float(h.reset), now
        sample = max(0.001, now - admitted_at)
        self.rtt = sample if self.rtt is None else 0.75 * self.rtt + 0.25 * sample
        late = False
        if self.reset is None or h.reset > self.reset + 0.5 or (
                h.reset < self.reset - 0.5 and h.reset - self.offset > now):
            # A newer window than we knew of, or an earlier one than the model rolled to that is still
            # open: the server's window is the truth.
            self.reset = float(h.reset)
            self.remaining = remaining
            self.answers_in_window = 1
            self.contended = remaining < self.limit - 1 - len(self.permits)
        elif h.reset > self.reset - 0.5:
            # The current window: Remaining only falls within a window.
            self.answers_in_window += 1
            self.remaining = remaining if self.remaining is None else min(self.remaining, remaining)
            if remaining < self.limit - self.answers_in_window - len(self.permits):
                self.contended = True
            elif self.answers_in_window == 1 and remaining >= self.limit - 1:
                self.contended = False  # the window's first answer shows nobody else has spent
        else:
            late = True  # counted in a window that is already over; it says nothing of this one
        self.reset_local = self.reset - self.offset
        if status == 429:
            self.throttled += 1
            self.remaining = 0
            self.contended = True
            if late:
                self.paused_until = self.reset_local + policy.margin
            else:
                self.paused_until = self._pause(now, policy, h, server_now, believed=True)

    def _pause(self, now: float, policy: Policy, h: RateHeaders, server_now: float, *, believed: bool) -> float:
        until = pause_after_429(now=now, window=self.window, cap=horizon(policy.window, self.window),
                                margin=policy.margin, retry_after=h.retry_after, retry_at=h.retry_at,
                                reset=h.reset, date=h.date, server_now=server_now, believed=believed)
        if not believed and self.mode == Mode.HEADERS.value and self.reset_local is not None \
                and now < self.reset_local + policy.margin:
            until = min(until, self.reset_local + policy.margin)  # a doubted 429: never past our reset
        return until

    def _to_sliding(self, now: float, limit: int) -> None:
        """Resets that cannot be used: hold the group by a sliding log of the server's limit."""
        used = 0 if self.remaining is None else max(0, self.limit - self.remaining)
        was_headers = self.mode == Mode.HEADERS.value
        self.mode = Mode.HEADERLESS.value
        self.limit = max(1, limit)
        self.reset = self.reset_local = self.remaining = None
        if was_headers:
            self.admission_times = [now] * min(self.limit, used + len(self.permits))
        log.debug("X-RateLimit-Reset is unusable: a sliding log of %d per %g s holds the group",
                  self.limit, self.window)

    def _observe_headerless(self, now: float, policy: Policy, admitted_at: float, status: int | None,
                            h: RateHeaders | None = None, *, keep_cold: bool = False) -> None:
        if self.mode == Mode.COLD.value and status is not None and not keep_cold:
            self.mode = Mode.HEADERLESS.value
        if self.mode == Mode.HEADERS.value and self.remaining is not None:
            window_start = (self.reset_local or now) - self.window
            if admitted_at >= window_start:
                # The server counted it (or may have) but told us nothing: count it ourselves.
                self.remaining = max(0, self.remaining - 1)
        if status == 429:
            self.throttled += 1
            h = h or RateHeaders()
            # Its Retry-After, or its own Reset through its own Date, else a whole window.
            self.paused_until = self._pause(now, policy, h, now + (self.offset or 0.0), believed=False)
            if self.mode == Mode.HEADERS.value:
                self.remaining = 0
