"""The server's word beats the governor's model, and one lying response cannot poison it (pure state).

Every time is an explicit argument: no clock, no I/O.  The server below has fixed windows of ``W``
seconds aligned on ``T0`` and ``LIMIT`` requests per window, while the client keeps its default
``Budget(150, 900)``.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from plumasync import Budget
from plumasync.governor import GroupState, Lane, Mode, RateHeaders, parse_rate_headers

DEFAULT = Budget().policy()  # 150 per 900 s, margin 1 s
T0 = 1_519_397_100.0  # a boundary of 60-s windows
W, LIMIT = 60.0, 20
DAY = 86_400.0
ids = (f"p{i}" for i in itertools.count())


def hdr(remaining: int, reset: float, date: float, *, limit: int = LIMIT, **extra: float) -> RateHeaders:
    return RateHeaders(limit=limit, remaining=remaining, reset=reset, date=date, **extra)


def grant(s: GroupState, now: float, policy=DEFAULT) -> str | None:  # type: ignore[no-untyped-def]
    permit = next(ids)
    return permit if s.acquire(now, policy, Lane.INTERACTIVE, permit).granted else None


def server_reset(now: float, window: float = W) -> float:
    return (now - T0) // window * window + T0 + window


def spend_window(s: GroupState, now: float, used_before: int = 0, window: float = W) -> int:
    """Grant what the state allows at ``now`` and answer every permit as the honest server would."""
    sent = 0
    for _ in range(10):  # a window opens with part of the limit; its first answer opens the rest
        permits = []
        while (p := grant(s, now)) is not None:
            permits.append(p)
        if not permits:
            return sent
        for p in permits:
            sent += 1
            s.observe(now + 0.2, DEFAULT, p, 200,
                      hdr(max(0, LIMIT - used_before - sent), server_reset(now, window), float(int(now))))
    return sent


def warmed(now: float = T0 + 5.0) -> GroupState:
    """A group that has seen one honest answer (19 left of 20 in the window ending at T0 + 60)."""
    s = GroupState.new(DEFAULT)
    p = grant(s, now)
    assert p
    s.observe(now + 0.1, DEFAULT, p, 200, hdr(LIMIT - 1, server_reset(now), float(int(now))))
    return s


# -- 1. learning the window; an earlier Reset than the model's is the truth ------------------------------


def test_the_window_is_learned_from_successive_resets_and_an_earlier_reset_is_the_truth() -> None:
    s = warmed()
    assert spend_window(s, T0 + 6, used_before=1) == LIMIT - 1
    # The model rolls at the reset + margin by the configured 900 s; the server says its window ends at
    # T0 + 120: that is the truth, not a late answer.
    assert spend_window(s, T0 + W + 2) == LIMIT
    assert s.reset == T0 + 2 * W
    assert s.window == W and s.learned
    d = s.acquire(T0 + W + 2, DEFAULT, Lane.INTERACTIVE, "next")
    assert not d.granted and d.retry_at == pytest.approx(T0 + 2 * W + DEFAULT.margin, abs=0.5)
    # ... and from then on the group rolls by the learned window.
    assert spend_window(s, T0 + 2 * W + 2) == LIMIT
    assert s.reset == T0 + 3 * W


def test_a_429_pauses_until_its_own_reset_not_the_model_reset() -> None:
    s = warmed()
    spend_window(s, T0 + 6, used_before=1)
    p = grant(s, T0 + W + 2)  # the model rolled to T0 + 960
    assert p
    s.observe(T0 + W + 2.2, DEFAULT, p, 429, hdr(0, T0 + 2 * W, T0 + W + 2))
    assert s.paused_until == pytest.approx(T0 + 2 * W + DEFAULT.margin, abs=1.0)


def test_a_429_through_its_own_date_an_hour_off() -> None:
    s = warmed()
    p = grant(s, T0 + 10)
    assert p
    # The server's clock is an hour ahead on this answer, and its Reset with it: 50 s from its Date.
    s.observe(T0 + 10.1, DEFAULT, p, 429, hdr(0, T0 + 3600 + W, T0 + 3600 + 10))
    assert T0 + 10 < s.paused_until <= T0 + W + 2 * DEFAULT.margin


@pytest.mark.parametrize("retry_after", [{"retry_after": 20.0}, {"retry_at": T0 + 30.0}])
def test_a_429_pauses_for_its_retry_after_in_seconds_or_as_a_date(retry_after: dict[str, float]) -> None:
    s = GroupState.new(DEFAULT)
    p = grant(s, T0 + 10)
    assert p
    s.observe(T0 + 10.1, DEFAULT, p, 429, RateHeaders(date=T0 + 10, **retry_after))
    assert s.paused_until == pytest.approx(T0 + 30.1, abs=0.2)


def test_retry_after_is_parsed_in_both_forms_and_garbage_is_ignored() -> None:
    assert parse_rate_headers({"retry-after": "120"}).retry_after == 120.0
    assert parse_rate_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_at == 1445412480.0
    bad = parse_rate_headers({"retry-after": "soon", "x-ratelimit-remaining": "-3"})
    assert bad.retry_after is None and bad.retry_at is None and bad.remaining is None


def test_a_429_without_reset_or_retry_after_pauses_one_learned_window() -> None:
    s = warmed()
    spend_window(s, T0 + 6, used_before=1)
    spend_window(s, T0 + W + 2)
    assert s.window == W
    p = grant(s, T0 + 2 * W + 2)
    assert p
    s.observe(T0 + 2 * W + 2.1, DEFAULT, p, 429, RateHeaders())
    assert s.paused_until is not None and s.paused_until - (T0 + 2 * W + 2.1) <= W + 0.01


# -- 1. single outliers are discounted ----------------------------------------------------------------------


def _exhausted() -> GroupState:
    s = warmed()
    spend_window(s, T0 + 6, used_before=1)  # 0 left until T0 + 60
    return s


def _probe_answer(s: GroupState, now: float, status: int, headers: RateHeaders) -> None:
    """Answer a permit granted earlier in the window (one still in flight when the outlier arrives)."""
    s.permits["late"] = T0 + 6
    s.observe(now, DEFAULT, "late", status, headers)


@pytest.mark.parametrize("caseid", ["reset a day ahead", "reset in the past", "date an hour ahead",
                                    "date an hour behind", "remaining above limit"])
def test_one_outlier_causes_neither_a_long_pause_nor_a_burst(caseid: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="plumasync")
    s = _exhausted()
    now = T0 + 20
    honest = hdr(0, T0 + W, float(int(now)))
    outlier = {
        "reset a day ahead": hdr(LIMIT - 1, T0 + W + DAY, now),
        "reset in the past": hdr(LIMIT - 1, T0 - DAY, now),
        "date an hour ahead": hdr(0, T0 + W, now + 3600),
        "date an hour behind": hdr(0, T0 + W, now - 3600),
        "remaining above limit": hdr(500, T0 + 2 * W, now),
    }[caseid]
    _probe_answer(s, now + 0.1, 200, outlier)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    # No burst: the window is still spent ...
    d = s.acquire(now + 0.2, DEFAULT, Lane.INTERACTIVE, "x")
    assert not d.granted
    # ... and no long pause: the next window opens at the server's reset.
    assert d.retry_at is not None and d.retry_at <= T0 + W + DEFAULT.margin + 0.5
    # The next honest answer is believed as before.
    _probe_answer(s, now + 0.3, 200, honest)
    assert spend_window(s, T0 + W + 2) == LIMIT


@pytest.mark.parametrize("reset", [T0 + W + DAY, T0 - DAY])
def test_a_lone_429_with_an_absurd_reset_pauses_at_most_one_window(reset: float) -> None:
    s = warmed()
    p = grant(s, T0 + 10)
    assert p
    s.observe(T0 + 10.1, DEFAULT, p, 429, hdr(0, reset, T0 + 10))
    assert s.paused_until is not None and s.paused_until - (T0 + 10.1) <= DEFAULT.window + DEFAULT.margin
    # ... and since the group's own reset is believed, no later than it.
    assert s.paused_until <= T0 + W + DEFAULT.margin + 0.5


# -- 1. consistent but surprising servers -----------------------------------------------------------------


def test_a_900_s_server_under_a_4_s_client_draws_at_most_one_429_then_waits_for_its_reset() -> None:
    short = Budget(limit=10, window=4.0, margin=1.0).policy()
    s = GroupState.new(short)
    reset = T0 + 900
    now, spent = T0 + 1, 0
    throttled = 0
    for step in range(400):
        p = s.acquire(now, short, Lane.INTERACTIVE, f"q{step}")
        if p.granted:
            spent += 1
            status = 200 if spent <= 10 else 429
            throttled += status == 429
            s.observe(now + 0.05, short, f"q{step}", status, hdr(max(0, 10 - spent), reset, float(int(now)),
                                                                   limit=10))
            now += 0.1
            continue
        if throttled:
            break
        assert p.retry_at is not None, "a wait with nothing in flight must say when"
        assert p.retry_at - now <= 2 * max(short.window, s.window) + 1.01  # never blind for longer
        now = max(now + 0.01, p.retry_at)
    assert throttled == 1
    assert s.paused_until == pytest.approx(reset + short.margin, abs=1.5)


def test_resets_always_a_day_ahead_are_found_out_by_the_probe() -> None:
    s = GroupState.new(DEFAULT)
    now, used, start = T0 + 1, 0, T0  # the server's real windows: 5 s of 20 requests
    granted_at: list[float] = []
    for step in range(2000):
        if now - start >= 5:
            start, used = start + (now - start) // 5 * 5, 0
        d = s.acquire(now, DEFAULT, Lane.INTERACTIVE, f"d{step}")
        if d.granted:
            used += 1
            assert used <= 20, "the server's window was overspent"
            granted_at.append(now)
            s.observe(now + 0.01, DEFAULT, f"d{step}", 200, hdr(20 - used, float(int(now)) + DAY, float(int(now))))
            continue
        assert d.retry_at is not None and d.retry_at - now <= 2 * DEFAULT.window + 1.01
        now = d.retry_at
        if len(granted_at) > 60:
            break
    assert len(granted_at) > 60  # progress: the probe found the window open again


def test_resets_always_in_the_past_leave_a_sliding_log_of_the_known_limit() -> None:
    s = GroupState.new(DEFAULT)
    now = T0 + 1
    times: list[float] = []
    for step in range(300):
        d = s.acquire(now, DEFAULT, Lane.INTERACTIVE, f"s{step}")
        if d.granted:
            times.append(now)
            start = server_reset(now) - W
            s.observe(now + 0.1, DEFAULT, f"s{step}", 200, hdr(LIMIT - 1, start, float(int(now))))
        now += 1.0
    assert s.mode == Mode.HEADERLESS.value and s.limit == LIMIT
    assert max(sum(1 for t in times if a <= t < a + W) for a in times) <= LIMIT


def test_a_limit_lowered_then_raised_mid_run() -> None:
    s = warmed()
    p = grant(s, T0 + 10)
    assert p
    s.observe(T0 + 10.1, DEFAULT, p, 200, hdr(3, T0 + W, T0 + 10, limit=5))  # lowered to 5
    assert s.limit == 5
    lowered = [q for q in (grant(s, T0 + 11) for _ in range(10)) if q is not None]
    assert len(lowered) == 3
    for i, q in enumerate(lowered):
        s.observe(T0 + 11.1, DEFAULT, q, 200, hdr(2 - i, T0 + W, T0 + 11, limit=5))
    p = grant(s, T0 + W + 2)
    assert p
    s.observe(T0 + W + 2.1, DEFAULT, p, 200, hdr(38, T0 + 2 * W, T0 + W + 2, limit=40))  # raised to 40
    assert sum(grant(s, T0 + W + 2) is not None for _ in range(50)) == 38


def test_headers_on_only_some_responses_count_the_rest() -> None:
    s = warmed()
    sent = 1
    for i in range(30):
        p = grant(s, T0 + 10 + i * 0.1)
        if p is None:
            break
        sent += 1
        headers = hdr(LIMIT - sent, T0 + W, T0 + 10) if i % 3 == 0 else RateHeaders()
        s.observe(T0 + 10.05 + i * 0.1, DEFAULT, p, 200, headers)
    assert sent == LIMIT


# -- 3. a garbage stored state is a typed error ---------------------------------------------------------


@pytest.mark.parametrize("doc", [None, [], {"limit": "x", "window": 900}, {"limit": 10, "window": 900, "nope": 1},
                                 {"limit": 10, "window": 900, "log": ["a"]}, {"limit": 10, "window": float("nan")}])
def test_a_garbage_state_document_raises_corrupt_state(doc: object) -> None:
    from plumasync.governor.core.codec import CorruptState

    with pytest.raises(CorruptState):
        GroupState.from_json(doc)  # type: ignore[arg-type]
