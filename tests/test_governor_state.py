"""The governor's budget arithmetic, sans-I/O: every time is an explicit argument."""

from __future__ import annotations

import itertools
import random

import pytest

from plumasync import Budget
from plumasync.governor import GroupState, Lane, Mode, RateHeaders

POLICY = Budget(limit=10, window=900.0, reserve=2, margin=1.0).policy()
T0 = 1_519_397_100.0  # 2018-02-23T14:45:00Z: a window boundary
RESET = T0 + 900  # 15:00:00Z, the documented example 1519398000
ids = (f"p{i}" for i in itertools.count())


def hdr(remaining: int, *, reset: float = RESET, date: float | None = None, limit: int = 10) -> RateHeaders:
    return RateHeaders(limit=limit, remaining=remaining, reset=reset, date=date)


def grant(state: GroupState, now: float, lane: Lane = Lane.INTERACTIVE) -> str | None:
    permit = next(ids)
    return permit if state.acquire(now, POLICY, lane, permit).granted else None


def warm(state: GroupState, now: float, remaining: int, *, date: float | None = None, reset: float = RESET) -> None:
    permit = grant(state, now)
    assert permit is not None
    state.observe(now, POLICY, permit, 200, hdr(remaining, reset=reset, date=now if date is None else date))


def test_cold_start_sends_one_probe_then_opens_up() -> None:
    s = GroupState.new(POLICY)
    probe = grant(s, T0)
    assert probe is not None
    d = s.acquire(T0, POLICY, Lane.INTERACTIVE, "second")
    assert not d.granted and d.retry_at == T0 + POLICY.window / 10  # the probe's headers (or its timeout)
    s.observe(T0 + 0.1, POLICY, probe, 200, hdr(9, date=T0))
    assert s.mode == Mode.HEADERS.value
    granted = [grant(s, T0 + 0.1) for _ in range(9)]
    assert all(granted)
    assert grant(s, T0 + 0.1) is None


def test_header_sync_uses_server_remaining_and_counts_in_flight() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=4)  # someone else used 5 before us
    assert s.remaining == 4
    a, b = grant(s, T0), grant(s, T0)
    assert a and b
    # 4 remaining - 2 in flight = 2 available to interactive
    assert grant(s, T0) and grant(s, T0)
    assert grant(s, T0) is None
    # responses out of order: Remaining only falls within a window
    s.observe(T0 + 1, POLICY, b, 200, hdr(2, date=T0 + 1))
    s.observe(T0 + 1, POLICY, a, 200, hdr(3, date=T0 + 1))
    assert s.remaining == 2


def test_malformed_or_missing_headers_count_the_request_ourselves() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    p = grant(s, T0)
    assert p is not None
    s.observe(T0 + 1, POLICY, p, 200, RateHeaders(limit=10, remaining=None, reset=RESET))
    assert s.remaining == 8 and s.mode == Mode.HEADERS.value


def test_window_rolls_at_the_server_reset_plus_margin() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    assert all(grant(s, T0 + 1) for _ in range(9))
    d = s.acquire(T0 + 10, POLICY, Lane.INTERACTIVE, "x")
    assert not d.granted and d.retry_at == pytest.approx(RESET + POLICY.margin)
    assert grant(s, RESET + 0.5) is None  # before the margin has passed
    assert grant(s, RESET + POLICY.margin) is not None
    # The new window opens with half the limit until the first answer says what the window holds.
    assert s.remaining is None and s.reset == RESET + 900 and not s.contended
    assert sum(grant(s, RESET + POLICY.margin) is not None for _ in range(10)) == 10 // 2 - 1


@pytest.mark.parametrize("skew", [5.0, -5.0])
def test_skew_is_handled_through_the_date_header(skew: float) -> None:
    """The server's clock is `skew` s off ours: Reset is converted with Date, not our clock."""
    s = GroupState.new(POLICY)
    local_now = T0 + 100
    server_now = local_now + skew
    warm(s, local_now, remaining=0, date=server_now)
    # The server resets at RESET (server time) = RESET - skew local time.
    d = s.acquire(local_now, POLICY, Lane.INTERACTIVE, "x")
    assert d.retry_at == pytest.approx(RESET - skew + POLICY.margin)
    assert grant(s, RESET - skew + POLICY.margin - 0.01) is None
    assert grant(s, RESET - skew + POLICY.margin) is not None


def test_offset_estimate_tightens_and_restarts_when_two_dates_say_the_server_clock_moved() -> None:
    s = GroupState.new(POLICY)
    # Date is floored: a response received at local 100.9 with Date 100 says offset >= -0.9
    p = grant(s, T0 + 100.8)
    assert p
    s.observe(T0 + 100.9, POLICY, p, 200, hdr(9, date=T0 + 100))
    assert s.offset == pytest.approx(-0.9)
    p = grant(s, T0 + 101.95)
    assert p
    s.observe(T0 + 102.0, POLICY, p, 200, hdr(8, date=T0 + 102))  # crossed a second: offset >= 0
    assert s.offset == pytest.approx(0.0)
    p = grant(s, T0 + 103.0)
    assert p
    s.observe(T0 + 103.1, POLICY, p, 200, hdr(7, date=T0 + 93))  # server clock jumped back 10 s ...
    assert s.offset == pytest.approx(0.0)  # ... one Date alone is doubted
    p = grant(s, T0 + 104.0)
    assert p
    s.observe(T0 + 104.1, POLICY, p, 200, hdr(6, date=T0 + 94))  # a second one agrees: believed
    assert s.offset == pytest.approx(-10.1)


def test_429_pauses_the_whole_group_until_reset() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=5)
    p = grant(s, T0 + 1)
    assert p
    s.observe(T0 + 2, POLICY, p, 429, hdr(0, date=T0 + 2))
    assert s.throttled == 1
    for lane in Lane:
        d = s.acquire(T0 + 3, POLICY, lane, "y")
        assert not d.granted and d.retry_at == pytest.approx(RESET + POLICY.margin)
    assert grant(s, RESET + POLICY.margin) is not None


def test_bulk_leaves_the_reserve_to_interactive() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    bulk = [grant(s, T0, Lane.BULK) for _ in range(7)]  # 9 - reserve 2
    assert all(bulk)
    d = s.acquire(T0, POLICY, Lane.BULK, "b")
    assert not d.granted and d.retry_at == pytest.approx(RESET + POLICY.margin)
    assert grant(s, T0, Lane.INTERACTIVE) and grant(s, T0, Lane.INTERACTIVE)
    assert grant(s, T0, Lane.INTERACTIVE) is None


def test_reserve_scales_with_the_server_limit() -> None:
    s = GroupState.new(POLICY)  # configured 10 with reserve 2
    warm(s, T0, remaining=99, reset=RESET)
    s.observe(T0, POLICY, "unknown", 200, hdr(99, limit=100))
    s.limit = 100
    assert s._reserve(POLICY, Lane.BULK) == 20


def test_other_tenant_detected_and_next_window_opens_with_a_probe() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    p = grant(s, T0 + 1)
    assert p
    s.observe(T0 + 2, POLICY, p, 200, hdr(5, date=T0 + 2))  # we used 2, yet 5 remain: someone else spends
    assert s.contended
    assert grant(s, RESET + 1) is not None  # the probe
    assert grant(s, RESET + 1) is None  # the rest wait for its headers


def test_stale_response_from_previous_window_does_not_touch_new_window() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=1)
    assert s.contended  # 8 spent by somebody else
    late = grant(s, T0 + 899)
    assert late
    probe = grant(s, RESET + 1)  # new window: the late request does not block the probe
    assert probe
    s.observe(RESET + 1.5, POLICY, late, 200, hdr(0, reset=RESET, date=RESET - 1))
    assert s.remaining is None  # still waiting for the probe: the stale answer said nothing
    s.observe(RESET + 1.6, POLICY, probe, 200, hdr(9, reset=RESET + 900, date=RESET + 1))
    assert s.remaining == 9


def test_cancelled_permit_is_given_back() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=1)
    p = grant(s, T0)
    assert p and grant(s, T0) is None
    s.cancel(p)
    assert grant(s, T0) is not None


def test_crashed_holder_releases_after_one_window() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=10)
    for _ in range(10):
        assert grant(s, T0 + 1)  # never observed: their process died
    assert grant(s, RESET + 1) is not None


@pytest.mark.parametrize("seed", range(5))
def test_headerless_group_never_exceeds_limit_in_any_window(seed: int) -> None:
    rng = random.Random(seed)
    s = GroupState.new(POLICY)
    now = T0 + rng.random() * 900
    admitted: list[float] = []
    pending: list[str] = []
    for _ in range(3000):
        lane = rng.choice(list(Lane))
        permit = next(ids)
        d = s.acquire(now, POLICY, lane, permit)
        if d.granted:
            admitted.append(now)
            pending.append(permit)
        if pending and rng.random() < 0.7:
            s.observe(now, POLICY, pending.pop(rng.randrange(len(pending))), 200, RateHeaders())
        now += rng.expovariate(1 / 20)
    assert s.mode == Mode.HEADERLESS.value
    assert len(admitted) > 30
    j = 0
    for i, t in enumerate(admitted):  # any window-long interval [t, t + window)
        while j < len(admitted) and admitted[j] < t + POLICY.window:
            j += 1
        assert j - i <= POLICY.limit


def test_headerless_wait_points_at_the_oldest_admission() -> None:
    s = GroupState.new(POLICY)
    p = grant(s, T0)
    assert p
    s.observe(T0, POLICY, p, 200, RateHeaders())
    for k in range(1, 8):  # fill up to limit - reserve for bulk
        assert grant(s, T0 + k, Lane.BULK)
    d = s.acquire(T0 + 10, POLICY, Lane.BULK, "z")
    assert not d.granted and d.retry_at == pytest.approx(T0 + 900 + POLICY.margin)


def test_headers_appearing_later_win() -> None:
    s = GroupState.new(POLICY)
    p = grant(s, T0)
    assert p
    s.observe(T0, POLICY, p, 200, RateHeaders())
    assert s.mode == Mode.HEADERLESS.value
    warm(s, T0 + 1, remaining=3)
    assert s.mode == Mode.HEADERS.value and s.remaining == 3


def test_state_round_trips_through_json() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=7)
    grant(s, T0)
    clone = GroupState.from_json(s.to_json())
    assert clone == s


def test_snapshot_reports_the_group() -> None:
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=7)
    grant(s, T0)
    snap = s.snapshot(T0, POLICY, "data", waiters=3)
    assert (snap.limit, snap.remaining, snap.available, snap.in_flight, snap.waiters) == (10, 7, 6, 1, 3)
    assert snap.reset_at == pytest.approx(RESET + POLICY.margin)


def test_headers_mode_keeps_no_admission_log() -> None:
    """Only headerless groups need the sliding log; a governed burst must not grow memory."""
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    for _ in range(9):
        p = grant(s, T0)
        assert p
        s.observe(T0, POLICY, p, 200, hdr(5, date=T0))
    assert s.admission_times == []


def test_headerless_log_stays_sorted_when_the_clock_steps_back() -> None:
    s = GroupState.new(POLICY)
    p = grant(s, T0)
    assert p
    s.observe(T0, POLICY, p, 200, RateHeaders())
    assert grant(s, T0 + 10) and grant(s, T0 + 5)  # the system clock was stepped back by 5 s
    assert s.admission_times == [T0, T0 + 5, T0 + 10]
    later = T0 + 5 + POLICY.window + POLICY.margin + 0.1  # the first two have left the interval
    assert grant(s, later)
    assert s.admission_times == [T0 + 10, later]
    assert GroupState.from_json({**s.to_json(), "admission_times": [later, T0 + 10]}).admission_times == [
        T0 + 10, later]


def test_a_document_written_before_the_field_renames_still_loads() -> None:
    """Stores outlive upgrades: ``log``/``used`` were the names of ``admission_times``/``answers_in_window``."""
    old = {"limit": 10, "window": 900.0, "mode": "headerless", "log": [T0 + 5, T0 + 1], "used": 3}
    state = GroupState.from_json(old)
    assert state.admission_times == [T0 + 1, T0 + 5] and state.answers_in_window == 3


@pytest.mark.parametrize("carried", range(10))
def test_requests_in_flight_across_the_reset_come_out_of_the_new_windows_opening(carried: int) -> None:
    """A request admitted just before the reset may reach the server after it and count in the new window:
    the window's opening (half the limit until its first answer) must leave room for those still in flight."""
    s = GroupState.new(POLICY)
    warm(s, T0, remaining=9)
    in_flight = [grant(s, RESET - 5) for _ in range(carried)]
    assert all(in_flight)
    opened = sum(grant(s, RESET + POLICY.margin) is not None for _ in range(10))
    assert opened >= 1  # one probe always checks the new window
    assert carried + opened <= max(POLICY.limit // 2, carried + 1) <= POLICY.limit
