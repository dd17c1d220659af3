"""Bad configuration fails at construction; malformed headers never crash; secrets stay out of reprs."""

from __future__ import annotations

import logging

import httpx
import pytest

from plumasync import Budget, ConfigurationError, PlumClient, RetryPolicy
from plumasync.governor import parse_rate_headers


def client(**kw: object) -> PlumClient:
    kw.setdefault("login", "acct")
    kw.setdefault("password", "s3cret-pw")
    return PlumClient(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", [
    "http://voicetrends.plumvoice.com/api/",  # plain http to a real host: credentials in clear
    "ftp://voicetrends.plumvoice.com/api/",
    "voicetrends.plumvoice.com/api/",
    "https://user:pw@voicetrends.plumvoice.com/api/",
])
def test_base_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigurationError, match="voicetrends_url"):
        client(voicetrends_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/ws/", "http://localhost/ws", "http://[::1]:9/ws/"])
def test_plain_http_is_allowed_only_for_loopback(url: str) -> None:
    plum = client(calllogs_url=url)
    assert plum.calllogs_url.endswith("/")


@pytest.mark.parametrize("kwargs", [
    {"limit": 0}, {"limit": -5}, {"limit": 1.5}, {"window": 0}, {"window": -900.0}, {"window": float("inf")},
    {"limit": 10, "reserve": 10}, {"limit": 10, "reserve": -1}, {"margin": -1.0},
])
def test_budget_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Budget(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"rate_limit_attempts": 0}, {"backoff_initial": -1}])
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_client_needs_credentials_and_a_known_tool_and_format() -> None:
    with pytest.raises(ConfigurationError, match="credentials"):
        PlumClient(env={})
    with pytest.raises(ConfigurationError, match="tool"):
        client(tool="fuse")
    with pytest.raises(ConfigurationError, match="format"):
        client(format="csv")
    with pytest.raises(ConfigurationError, match="store"):
        client(store="postgres://db/0")


def test_environment_is_the_fallback() -> None:
    plum = PlumClient(env={"PLUM_LOGIN": "envlogin", "PLUM_PASSWORD": "envpw",
                           "PLUM_CALLLOGS_URL": "http://127.0.0.1:1/ws"})
    assert plum.calllogs_url == "http://127.0.0.1:1/ws/"
    assert plum.dev_auth()._auth_header == httpx.BasicAuth("envlogin", "envpw")._auth_header


def test_secrets_stay_out_of_reprs_and_budget_keys() -> None:
    plum = client()
    assert "s3cret-pw" not in repr(plum)
    assert "acct" not in repr(plum) and all("acct" not in str(key) for key in plum.groups.values())


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "soon"},
    {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "", "X-RateLimit-Reset": "60", "Date": "yesterday"},
    {"X-RateLimit-Limit": "150\x00", "Date": "Mon, 99 Foo 2018 25:61:61 GMT"},
])
def test_malformed_rate_limit_headers_are_ignored_with_a_debug_log(
    headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="plumasync"):
        parsed = parse_rate_headers(httpx.Headers(headers))
    assert not parsed.complete
    assert parsed.date is None
    assert any("ignoring" in record.message for record in caplog.records)


def test_well_formed_headers_parse() -> None:
    parsed = parse_rate_headers(httpx.Headers({
        "X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "149", "X-RateLimit-Reset": "1519660800",
        "Date": "Mon, 26 Feb 2018 15:45:01 GMT"}))
    assert (parsed.limit, parsed.remaining, parsed.reset, parsed.date) == (150, 149, 1519660800.0, 1519659901.0)


@pytest.mark.parametrize(("now", "expected"), [
    (1000.0, 1000.0),          # phase 1000 % 300 = 100 → 0.33: fine as it is
    (1195.0, 1215.0),          # phase 0.98: too close to the reset → 5% into the next window
    (1201.0, 1215.0),          # phase 0.003: just after a reset → wait until 5% in
])
def test_start_time_in_window_avoids_the_reset(now: float, expected: float) -> None:
    from plumasync.testing import start_time_in_window

    assert start_time_in_window(now, 300) == pytest.approx(expected)
    assert start_time_in_window(now - 100, 300, skew=100) == pytest.approx(expected - 100)
