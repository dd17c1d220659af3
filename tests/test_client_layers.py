"""The request path, one hop per layer: front door → base client → retry policy → governed transport.

The retry loop is one call that owns it (one log line per retry, a backoff that cannot overflow); a 429's
pause travels up from the transport in ``response.extensions`` (right even on a shared store, where the
governor's own view may be stale); a user's ``httpx.AsyncClient`` is wrapped from outside, so its mounts
and hooks apply and every request is still governed.
"""

from __future__ import annotations

import logging
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from plumasync import Budget, FakeClock, PlumClient, RateLimitExceeded, RetryPolicy, ServerError

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
LOG_PATH = "/ws/calls/log/4216"
DETAIL = (b'{"status":"success","error":"","result":{"dest":"6177123000","src":"2125551234","type":"inbound",'
          b'"timestamp":"1510142148","location":"Boston","log":"...log data string..."}}')


def rate_headers(clock: FakeClock, remaining: int, reset_in: float) -> dict[str, str]:
    now = clock.now()
    return {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(now + reset_in)), "Date": formatdate(now, usegmt=True),
            "Content-Type": "application/json"}


def client(handler: httpx.MockTransport | None = None, **options: object) -> PlumClient:
    http = httpx.AsyncClient(transport=handler) if handler is not None else None
    return PlumClient(login="dev-login", password="dev-password", http_client=http, env={},
                      **options)  # type: ignore[arg-type]


# --- the retry loop -------------------------------------------------------------------------------------


def test_backoff_never_overflows() -> None:
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=30.0, jitter=0.0)
    assert policy.backoff(1) == 0.5
    assert policy.backoff(3) == 2.0
    assert policy.backoff(5_000) == 30.0  # 2.0 ** 4999 would raise OverflowError


@pytest.mark.anyio
async def test_one_log_line_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    answers = iter([500, 502, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, content=DETAIL if status == 200 else b"")

    caplog.set_level(logging.INFO, logger="plumasync")
    async with client(httpx.MockTransport(handler), retry=RetryPolicy(attempts=3, backoff_initial=0.0,
                                                                      jitter=0.0)) as plum:
        await plum.calllogs.log(4216)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "ServerError (1 of 3 tries failed)" in retries[0] and LOG_PATH in retries[0]
    assert "ServerError (2 of 3 tries failed)" in retries[1]


@pytest.mark.anyio
async def test_the_last_failure_is_raised_when_attempts_run_out() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    async with client(httpx.MockTransport(handler), retry=RetryPolicy(attempts=3, backoff_initial=0.0,
                                                                      jitter=0.0)) as plum:
        with pytest.raises(ServerError):
            await plum.calllogs.log(4216)
    assert len(calls) == 3


# --- a 429's pause comes up from the transport ----------------------------------------------------------


@pytest.mark.anyio
async def test_a_429_carries_its_pause_without_asking_the_governor_again(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """On a SQLite store the governor's own view is only what it last read: the pause must come back with
    the transition that recorded the 429."""
    clock = FakeClock(T0 + 100)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, content=b'{"error":"Rate limit exceeded"}', headers=rate_headers(clock, 0, 500))

    async with client(httpx.MockTransport(handler), clock=clock, store=f"sqlite:///{tmp_path}/budget.db",
                      retry=RetryPolicy(rate_limit_attempts=1)) as plum:
        monkeypatch.setattr(plum.governor, "peek", lambda key: pytest.fail("asked the governor again"))
        with pytest.raises(RateLimitExceeded) as caught:
            await plum.calllogs.log(4216)
        snap = (await plum.fetch_budget_snapshot())["calllogs"]
    assert caught.value.status == 429
    assert caught.value.retry_at is not None
    assert caught.value.retry_at == snap.paused_until
    assert T0 + 100 < caught.value.retry_at <= T0 + 100 + 500 + Budget().margin + 1


# --- a user's http client -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_users_client_is_wrapped_with_its_mounts_and_hooks_and_still_governed() -> None:
    seen: list[str] = []
    hooked: list[str] = []

    def mounted(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, content=DETAIL)

    def unmounted(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the mount for the Call Logs host was bypassed")

    async def hook(request: httpx.Request) -> None:
        hooked.append(request.url.host)

    user = httpx.AsyncClient(transport=httpx.MockTransport(unmounted),
                             mounts={"https://hosting.plumvoice.com": httpx.MockTransport(mounted)},
                             event_hooks={"request": [hook]})
    async with PlumClient(login="dev-login", password="dev-password", http_client=user, env={}) as plum:
        await plum.calllogs.log(4216)
        assert plum.budget_snapshot()["calllogs"].admitted == 1  # admitted by the governor
    assert seen == [LOG_PATH] and hooked == ["hosting.plumvoice.com"]
    assert not user.is_closed  # the user's client is the user's to close
    await user.aclose()


@pytest.mark.anyio
async def test_the_users_client_sees_our_auth_not_its_own() -> None:
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["authorization"])
        return httpx.Response(200, content=DETAIL)

    user = httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=("someone", "else"))
    async with PlumClient(login="dev-login", password="dev-password", http_client=user, env={}) as plum:
        await plum.calllogs.log(4216)
    assert headers == [httpx.BasicAuth("dev-login", "dev-password")._auth_header]
    await user.aclose()
