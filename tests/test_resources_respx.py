"""Every VoiceTrends and Call Logs endpoint against respx mocks (no network), on asyncio and trio.

For each endpoint: the exact URL, method, ``Accept`` and Basic auth header; JSON and XML bodies parse to
the same typed values; HTTP errors and Call Logs failure envelopes map to the typed exceptions, whose
text names the URL and the API's error and never a password; bad arguments are refused before any
request; calls/logs pagination and the 5-day retention warning.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import quoteattr

import anyio
import httpx
import pytest
import respx

from plumasync import (
    APIError,
    AuthenticationError,
    FailureStatusError,
    InvalidRequestError,
    MethodNotAllowedError,
    PlumClient,
    RateLimitExceeded,
    ResponseParseError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from plumasync.calllogs import RetentionWarning
from plumasync.models import (
    CallLogDetail,
    CallLogPage,
    ErrorPage,
    EventsReport,
    GeographicReport,
    PathReport,
    PerformanceReport,
    ProfileReport,
    SessionPage,
    TemporaryCredentials,
    VolumeReport,
)

pytestmark = pytest.mark.anyio

VT_HOST, CL_HOST = "voicetrends.example.test", "hosting.example.test"
VT, CL = f"https://{VT_HOST}/api/", f"https://{CL_HOST}/ws/"
LOGIN, PASSWORD = "dev-user@example.test", "Dev-S3cret!pw"
TEMP_LOGIN, TEMP_PASSWORD = "57b264aa1b794ff89d4effaafdf5e4b0", "25d421b1ee6c44daa2d34808e9466f5c"
TEMP2_LOGIN, TEMP2_PASSWORD = "0b1c2d3e4f5061728394a5b6c7d8e9f0", "ffeeddccbbaa99887766554433221100"
SECRETS = (PASSWORD, TEMP_PASSWORD, TEMP2_PASSWORD)

# Call Logs ranges must lie within the 5-day retention (relative to the client's clock, the wall clock).
NOW = int(time.time())
CL_START = NOW - 2 * 86400
CL_END = NOW - 86400


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client(**options: Any) -> PlumClient:
    options.setdefault("retry", RetryPolicy(attempts=1, rate_limit_attempts=1))
    options.setdefault("engine", "httpx")  # respx mocks httpx's own transport
    return PlumClient(login=LOGIN, password=PASSWORD, voicetrends_url=VT, calllogs_url=CL, env={}, **options)


def rate_headers(limit: int = 150, remaining: int = 149, reset_in: int = 600) -> dict[str, str]:
    now = int(time.time())
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(now + reset_in), "Date": formatdate(now, usegmt=True)}


# --- bodies ----------------------------------------------------------------------------------------------

Series = dict[str, Any]  # wire series: epoch string -> number, or [] for PHP's empty map
D1, D2 = "1517461200", "1517547600"  # 2018-02-01 and 2018-02-02, midnight America/New_York


def php_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode()


def series_bodies(root: str, series: dict[str, Series]) -> tuple[bytes, bytes]:
    def items(values: Series) -> str:
        return "".join(f'<item timestamp="{ts}">{json.dumps(v)}</item>' for ts, v in dict(values).items())

    xml = "".join(f"<{name}>{items(values)}</{name}>" if values else f"<{name}/>"
                  for name, values in series.items())
    return php_json(series), f'<?xml version="1.0"?><{root}>{xml}</{root}>'.encode()


VOLUME = series_bodies("volume", {
    "calls": {D1: 0, D2: 3}, "call_minutes": {D1: 0, D2: 4.5}, "transfers": {D1: 0, D2: 1},
    "transfer_minutes": [], "transfer_rate": {D1: 0, D2: 33.333}, "average_call_length": {D1: 0, D2: 90},
})
EVENTS = series_bodies("events", {
    "calls": {D1: 2, D2: 3}, "log_events": {D1: 10, D2: 12}, "loops_per_call": {D1: 0.5, D2: 1.333},
    "form_items": {D1: 8, D2: 9}, "loop_count": {D1: 1, D2: 4}, "average_form_items": {D1: 4, D2: 3},
})
PERFORMANCE = series_bodies("performance", {
    "calls": {D1: 0, D2: 1}, "js_errors": {D1: 0, D2: 0}, "js_errors_per_call": {D1: 0, D2: 0},
    "fetch_errors": {D1: 0, D2: 2}, "fetch_errors_per_call": {D1: 0, D2: 2},
    "average_page_load": {D1: 0, D2: 0.045},
})
PROFILE = series_bodies("profile", {"calls": {D1: 0, D2: 1}, "callers": {D1: 0, D2: 1}})

US = {"AL": 0, "AK": 2, "DC": 1, "WY": 0, "US Toll-Free": 1}
GEOGRAPHIC = (
    php_json({"US": US, "NON_US": []}),
    ('<?xml version="1.0"?><geographic><US>'
     + "".join(f"<region name={quoteattr(k)}>{v}</region>" for k, v in US.items())
     + "</US><NON_US/></geographic>").encode(),
)

APP = "https://demos.plumgroup.com/vxml/start.php"
NODES = [
    {"page": "main.php", "form": "main_menu", "item": "selection", "visits": 985, "filled": 941,
     "nomatch": 32, "noinput": 12, "transfer": 0, "disconnect": 0},
    {"page": "sales.php", "form": "product_menu", "item": "selection", "visits": 462, "filled": 425,
     "nomatch": 20, "noinput": 4, "transfer": 0, "disconnect": 13},
]
PATH = (
    php_json({"applications": {APP: NODES}}),
    (f'<?xml version="1.0"?><path><applications><application url={quoteattr(APP)}>'
     + "".join("<node>" + "".join(f"<{k}>{v}</{k}>" for k, v in node.items()) + "</node>" for node in NODES)
     + "</application></applications></path>").encode(),
)

AUTH_JSON = php_json({"login": TEMP_LOGIN, "password": TEMP_PASSWORD})
AUTH2_JSON = php_json({"login": TEMP2_LOGIN, "password": TEMP2_PASSWORD})
AUTH = (AUTH_JSON, f'<?xml version="1.0"?><auth><login>{TEMP_LOGIN}</login>'
        f"<password>{TEMP_PASSWORD}</password></auth>".encode())

# seeds/003, verbatim
LOGS = (
    b'{"status":"success","error":"","result":{"total_logs":"1234","logs":[{"log_id":"421752831",'
    b'"session_id":"400050;000;1510159646","dest":"6177123000","type":"inbound","src":"2125551234",'
    b'"start":"1510159657","end":"1510159689"},{"log_id":"421627729","session_id":"300025;000;1510142108",'
    b'"dest":"6177123000","type":"inbound","src":"7185551234","start":"1510142148","end":"1510142215"}]}}',
    b'<?xml version="1.0"?><logs><status>success</status><error></error><result><total_logs>1234</total_logs>'
    b"<logs><log><log_id>421752831</log_id><session_id>400050;000;1510159646</session_id><dest>6177123000"
    b"</dest><type>inbound</type><src>2125551234</src><start>1510159657</start><end>1510159689</end></log>"
    b"<log><log_id>421627729</log_id><session_id>300025;000;1510142108</session_id><dest>6177123000</dest>"
    b"<type>inbound</type><src>7185551234</src><start>1510142148</start><end>1510142215</end></log></logs>"
    b"</result></logs>",
)
LOG = (
    b'{"status":"success","error":"","result":{"dest":"6177123000","src":"2125551234","type":"inbound",'
    b'"timestamp":"1510142148","location":"Boston","log":"...log data string..."}}',
    b'<?xml version="1.0"?><log><status>success</status><error></error><result><dest>6177123000</dest>'
    b"<src>2125551234</src><type>inbound</type><timestamp>1510142148</timestamp><location>Boston</location>"
    b"<log>...log data string...</log></result></log>",
)
SESSION_LINES = [
    r"outbound 12125551234 26 [03\/Nov\/2017:00:10:42 -0500] test@login.com 300024;026;1509673023 "
    r"1509682242 1509682255 00:00:13",
    r"inbound 7185551234 3 [03\/Nov\/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 1509734310 "
    r"1509734339 00:00:29",
    r"inbound 6175551234 1 [03\/Nov\/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 1509747067 "
    r"1509747180 00:01:53",
]
SESSIONS = (
    ('{"status":"success","error":"","result":{"total_sessions":"8","sessions":['
     + ",".join(f'"{line}"' for line in SESSION_LINES) + "]}}").encode(),
    ('<?xml version="1.0"?><sessions><status>success</status><error></error><result><total_sessions>8'
     "</total_sessions><sessions>" + "".join(f"<session>{line}</session>" for line in SESSION_LINES)
     + "</sessions></result></sessions>").encode(),
)
ERROR_LINES = [
    r"error 2125551234 6 [17\/Nov\/2016:14:40:46 -0400] 6177123000 100025;006;1479411625 "
    r"Max Disconnect Count Exceeded",
    r"error 7185551234 1 [20\/Nov\/2016:21:28:46 -0400] 8009957586 100037;001;1479692314 "
    r"errno: 210 message Maximum loop count exceeded",
    r"error 6175551234 0 [09\/Jan\/2017:08:33:31 -0400] 8009957586 000020;000;1483968637 "
    r"ReferenceError: d is not defined line 1",
]
ERRORS = (
    ('{"status":"success","error":"","result":{"total_errors":"3","errors":['
     + ",".join(f'"{line}"' for line in ERROR_LINES) + "]}}").encode(),
    ('<?xml version="1.0"?><errors><status>success</status><error></error><result><total_errors>3'
     "</total_errors><errors>" + "".join(f"<error>{line}</error>" for line in ERROR_LINES)
     + "</errors></result></errors>").encode(),
)


# --- the endpoint table ----------------------------------------------------------------------------------


def _volume(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    start, end = date(2018, 2, 1), date(2018, 2, 8)
    return plum.voicetrends.volume(start, end, "week", "+1 (617) 712-3000", format=fmt)


def _events(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.voicetrends.events("20180201", 20180208, "month", "all", format=fmt)


def _performance(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    end = datetime(2018, 2, 8, 23, 30, tzinfo=timezone.utc)
    return plum.voicetrends.performance("2018-02-01", end, period="DAY", phone="6177123000", format=fmt)


def _profile(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.voicetrends.profile(date(2018, 2, 1), date(2018, 2, 1), "day", 8009957586, format=fmt)


def _geographic(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.voicetrends.geographic(date(2018, 2, 1), date(2018, 2, 8), phone="ALL", format=fmt)


def _path(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.voicetrends.path(date(2018, 2, 1), date(2018, 2, 8), "617.712.3000", format=fmt)


def _logs(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    start = datetime.fromtimestamp(CL_START, timezone.utc)
    return plum.calllogs.logs_page(start, CL_END, number="(617) 712-3000", offset=0, limit=2, format=fmt)


def _log(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.calllogs.log("421627729", format=fmt)


def _sessions(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.calllogs.sessions_page(CL_START, CL_END, number="6177123000", offset=4, limit=3, format=fmt)


def _errors(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.calllogs.errors_page(float(CL_START) + 0.9, CL_END, format=fmt)


def _auth(plum: PlumClient, fmt: Any) -> Awaitable[Any]:
    return plum.voicetrends.authenticate()


@dataclass(frozen=True)
class Endpoint:
    name: str
    api: str  # "auth", "vt" (VoiceTrends data) or "cl" (Call Logs)
    path: str  # the exact request path
    params: dict[str, str]  # the exact query
    bodies: tuple[bytes, bytes]  # (JSON, XML)
    call: Callable[[PlumClient, Any], Awaitable[Any]]
    model: type
    root: str = ""  # XML root of error bodies
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return CL_HOST if self.api == "cl" else VT_HOST

    @property
    def url(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"https://{self.host}{self.path}" + (f"?{query}" if query else "")


CL_RANGE = f"{CL_START}/{CL_END}"
ENDPOINTS = [
    Endpoint("auth", "auth", "/api/auth", {}, AUTH, _auth, TemporaryCredentials, "auth"),
    Endpoint("volume", "vt", "/api/volume/20180201/20180208/week/16177123000", {}, VOLUME, _volume,
             VolumeReport, "volume"),
    Endpoint("events", "vt", "/api/events/20180201/20180208/month/ALL", {}, EVENTS, _events, EventsReport,
             "events"),
    Endpoint("performance", "vt", "/api/performance/20180201/20180208/day/6177123000", {}, PERFORMANCE,
             _performance, PerformanceReport, "performance"),
    Endpoint("profile", "vt", "/api/profile/20180201/20180201/day/8009957586", {}, PROFILE, _profile,
             ProfileReport, "profile"),
    Endpoint("geographic", "vt", "/api/profile/20180201/20180208/ALL", {}, GEOGRAPHIC, _geographic,
             GeographicReport, "geographic"),
    Endpoint("path", "vt", "/api/path/20180201/20180208/6177123000", {}, PATH, _path, PathReport, "path"),
    Endpoint("calls/logs", "cl", f"/ws/calls/logs/{CL_RANGE}",
             {"offset": "0", "limit": "2", "number": "6177123000"}, LOGS, _logs, CallLogPage, "logs"),
    Endpoint("calls/log", "cl", "/ws/calls/log/421627729", {}, LOG, _log, CallLogDetail, "log"),
    Endpoint("calls/sessions", "cl", f"/ws/calls/sessions/{CL_RANGE}",
             {"offset": "4", "limit": "3", "number": "6177123000"}, SESSIONS, _sessions, SessionPage,
             "sessions"),
    Endpoint("calls/errors", "cl", f"/ws/calls/errors/{CL_RANGE}", {"offset": "0", "limit": "10000"}, ERRORS,
             _errors, ErrorPage, "errors"),
]
IDS = [ep.name for ep in ENDPOINTS]
DATA = [ep for ep in ENDPOINTS if ep.api != "auth"]
CALLLOGS = [ep for ep in ENDPOINTS if ep.api == "cl"]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


def by_accept(bodies: tuple[bytes, bytes], status: int = 200,
              headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    """A side effect answering with the JSON or the XML body, as the request's Accept asks."""

    def respond(request: httpx.Request) -> httpx.Response:
        xml = request.headers.get("accept") == "application/xml"
        ctype = "application/xml" if xml else "application/json"
        return httpx.Response(status, content=bodies[xml], headers={"Content-Type": ctype, **(headers or {})})

    return respond


def mock_auth(router: respx.MockRouter, *bodies: bytes) -> respx.Route:
    """POST /api/auth answering with ``bodies`` in turn (the last one repeated)."""
    answers = list(bodies or (AUTH_JSON,))

    def respond(request: httpx.Request) -> httpx.Response:
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json",
                                                           **rate_headers(15, 14)})

    return router.route(host=VT_HOST, path="/api/auth").mock(side_effect=respond)


def mock_endpoint(router: respx.MockRouter, ep: Endpoint, status: int = 200,
                  bodies: tuple[bytes, bytes] | None = None,
                  headers: dict[str, str] | None = None) -> respx.Route:
    return router.route(host=ep.host, path=ep.path).mock(
        side_effect=by_accept(bodies or ep.bodies, status, headers or rate_headers()))


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


# --- request shape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("ep", ENDPOINTS, ids=IDS)
async def test_request_url_method_accept_and_auth(router: respx.MockRouter, ep: Endpoint, fmt: str) -> None:
    auth = mock_auth(router) if ep.api != "auth" else mock_endpoint(router, ep)
    route = auth if ep.api == "auth" else mock_endpoint(router, ep)
    async with client(format=fmt) as plum:
        result = await ep.call(plum, None)  # the client's default format
    assert isinstance(result, ep.model)
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == ep.url
    assert request.url.path == ep.path and dict(request.url.params) == ep.params
    if ep.api == "auth":
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert form(request) == {"tool": ["dev"], "login": [LOGIN], "password": [PASSWORD]}
        assert "authorization" not in request.headers
        # credentials are always fetched as JSON, whatever format the data calls use
        assert request.headers["accept"] == "application/json"
        assert result == TemporaryCredentials(TEMP_LOGIN, TEMP_PASSWORD)
        return
    assert request.method == "GET"
    assert request.content == b""
    assert request.headers["accept"] == f"application/{fmt}"
    if ep.api == "vt":  # the temporary credentials from /api/auth, fetched once
        assert request.headers["authorization"] == basic(TEMP_LOGIN, TEMP_PASSWORD)
        assert auth.call_count == 1
        assert form(auth.calls.last.request)["password"] == [PASSWORD]
    else:  # Call Logs: the DEV login itself, no token step
        assert request.headers["authorization"] == basic(LOGIN, PASSWORD)
        assert auth.call_count == 0


@pytest.mark.parametrize("tool", ["dev", "insight", "fuseplus"])
async def test_auth_form_carries_the_tool(router: respx.MockRouter, tool: str) -> None:
    auth = mock_auth(router)
    async with client(tool=tool) as plum:
        assert await plum.voicetrends.authenticate() == TemporaryCredentials(TEMP_LOGIN, TEMP_PASSWORD)
    assert form(auth.calls.last.request) == {"tool": [tool], "login": [LOGIN], "password": [PASSWORD]}


async def test_per_call_format_overrides_the_client_default(router: respx.MockRouter) -> None:
    mock_auth(router)
    ep = ENDPOINTS[1]
    route = mock_endpoint(router, ep)
    async with client(format="xml") as plum:
        await plum.voicetrends.volume("20180201", "20180208", "week", "16177123000", format="json")
        await plum.voicetrends.volume("20180201", "20180208", "week", "16177123000", format="xml")
    assert [c.request.headers["accept"] for c in route.calls] == ["application/json", "application/xml"]


# --- typed values, JSON and XML alike --------------------------------------------------------------------


@pytest.mark.parametrize("ep", DATA, ids=[ep.name for ep in DATA])
async def test_json_and_xml_give_the_same_typed_values(router: respx.MockRouter, ep: Endpoint) -> None:
    mock_auth(router)
    mock_endpoint(router, ep)
    async with client() as plum:
        from_json = await ep.call(plum, "json")
        from_xml = await ep.call(plum, "xml")
    assert isinstance(from_json, ep.model)
    assert from_json == from_xml


async def test_typed_values(router: respx.MockRouter) -> None:
    mock_auth(router)
    for ep in DATA:
        mock_endpoint(router, ep)
    ny = timezone(timedelta(hours=-5))
    d1, d2 = datetime(2018, 2, 1, tzinfo=ny), datetime(2018, 2, 2, tzinfo=ny)
    async with client() as plum:
        volume = await _volume(plum, "xml")
        assert dict(volume.calls) == {d1: 0, d2: 3}
        assert volume.call_minutes[d2] == 4.5 and isinstance(volume.calls[d2], int)
        assert len(volume.transfer_minutes) == 0  # [] is an empty map
        assert set(volume.series) == {"calls", "call_minutes", "transfers", "transfer_minutes",
                                      "transfer_rate", "average_call_length"}
        events = await _events(plum, "json")
        assert events.loops_per_call[d2] == 1.333 and events.loop_count[d2] == 4
        assert (await _performance(plum, "xml")).average_page_load[d2] == 0.045
        assert dict((await _profile(plum, "json")).callers) == {d1: 0, d2: 1}
        geo = await _geographic(plum, "xml")
        assert dict(geo.us) == US and dict(geo.non_us) == {}
        path = await _path(plum, "json")
        (nodes,) = path.applications.values()
        assert list(path.applications) == [APP]
        assert [(n.page, n.visits, n.disconnect) for n in nodes] == [
            ("main.php", 985, 0), ("sales.php", 462, 13)]
        page = await _logs(plum, "xml")
        assert (page.total, page.offset, page.limit) == (1234, 0, 2)
        assert [e.log_id for e in page] == [421752831, 421627729]
        first = page.entries[0]
        assert (first.dest, first.src, first.type, first.start_ts, first.end_ts) == (
            "6177123000", "2125551234", "inbound", 1510159657, 1510159689)
        assert first.session_id.raw == "400050;000;1510159646"
        detail = await _log(plum, "xml")
        assert (detail.location, detail.log, detail.timestamp_ts) == (
            "Boston", "...log data string...", 1510142148)
        sessions = await _sessions(plum, "xml")
        assert (sessions.total, len(sessions), sessions.offset, sessions.limit) == (8, 3, 4, 3)
        errors = await _errors(plum, "json")
        assert (errors.total, len(errors)) == (3, 3)


# --- error mapping ---------------------------------------------------------------------------------------

STATUSES = [
    (400, InvalidRequestError, "supplied data improperly formatted or invalid"),
    (401, AuthenticationError, "authentication parameters invalid or the account is inactive"),
    (405, MethodNotAllowedError, "invalid HTTP method supplied (only POST allowed)"),
    (429, RateLimitExceeded, "rate limit exceeded"),
    (500, ServerError, "unknown error"),
]


def error_bodies(ep: Endpoint, text: str) -> tuple[bytes, bytes]:
    if ep.api == "cl":  # the documented failure envelope, trailing comma included
        return (b'{"status":"failure","error":' + php_json(text) + b",}",
                f"<{ep.root}><status>failure</status><error>{text}</error></{ep.root}>".encode())
    xml = f'<?xml version="1.0"?><{ep.root}><error>{text}</error></{ep.root}>'
    return php_json({"error": text}), xml.encode()


def assert_safe(exc: BaseException, url: str, text: str) -> None:
    shown = str(exc)
    assert url in shown and text in shown, shown
    for secret in SECRETS:
        assert secret not in shown and secret not in repr(exc)
        assert all(secret not in str(arg) for arg in exc.args)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("status", "exc_type", "text"), STATUSES, ids=[str(s[0]) for s in STATUSES])
@pytest.mark.parametrize("ep", ENDPOINTS, ids=IDS)
async def test_error_statuses_map_to_typed_errors(router: respx.MockRouter, ep: Endpoint, status: int,
                                                  exc_type: type[APIError], text: str, fmt: str) -> None:
    # 429: a reset two seconds away, and a single attempt, so that nothing waits
    headers = rate_headers(remaining=0, reset_in=2) if status == 429 else rate_headers()
    if ep.api == "auth":
        auth = route = mock_endpoint(router, ep, status, error_bodies(ep, text), headers)
    else:
        auth = mock_auth(router, AUTH_JSON, AUTH2_JSON)
        route = mock_endpoint(router, ep, status, error_bodies(ep, text), headers)
    with anyio.fail_after(10):
        async with client(format=fmt) as plum:
            with pytest.raises(exc_type) as info:
                await ep.call(plum, None)
    exc = info.value
    url = str(route.calls.last.request.url)
    assert url == ep.url
    method = route.calls.last.request.method
    assert (exc.method, exc.url, exc.status, exc.error) == (method, url, status, text)
    assert_safe(exc, url, text)
    if ep.api == "vt" and status == 401:  # refreshed once, then given up
        assert (auth.call_count, route.call_count) == (2, 2)
        sent = [c.request.headers["authorization"] for c in route.calls]
        assert sent == [basic(TEMP_LOGIN, TEMP_PASSWORD), basic(TEMP2_LOGIN, TEMP2_PASSWORD)]
    else:
        assert route.call_count == 1
        assert auth.call_count == (0 if ep.api == "cl" else 1)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("ep", CALLLOGS, ids=[ep.name for ep in CALLLOGS])
async def test_calllogs_failure_envelope_under_http_200(router: respx.MockRouter, ep: Endpoint,
                                                        fmt: str) -> None:
    text = "Unauthorized access to sample service"
    route = mock_endpoint(router, ep, 200, (
        b'{"status":"failure","error":"Unauthorized access to sample service",}',  # seeds/003, verbatim
        b"<sample><status>failure</status><error>Unauthorized access to sample service</error></sample>",
    ))
    async with client() as plum:
        with pytest.raises(FailureStatusError) as info:
            await ep.call(plum, fmt)
    exc = info.value
    assert (exc.status, exc.error, exc.method) == (200, text, "GET")
    assert exc.url == ep.url == str(route.calls.last.request.url)
    assert_safe(exc, ep.url, text)
    assert route.call_count == 1  # a failure envelope is not retried


@pytest.mark.parametrize("body", [
    b'{"login":"%s","password":"%s"' % (TEMP_LOGIN.encode(), TEMP_PASSWORD.encode()),  # truncated
    b'{"password":"%s"}' % TEMP_PASSWORD.encode(),  # no login
    b'{"login":"%s","password":["%s"]}' % (TEMP_LOGIN.encode(), TEMP_PASSWORD.encode()),  # wrong type
], ids=["truncated", "no login", "wrong type"])
async def test_unreadable_auth_body_never_carries_the_temporary_password(router: respx.MockRouter,
                                                                         body: bytes) -> None:
    router.route(host=VT_HOST, path="/api/auth").respond(200, content=body)
    data = router.route(host=VT_HOST, path__startswith="/api/volume/").respond(500)
    async with client() as plum:
        with pytest.raises(ResponseParseError) as info:
            await _volume(plum, None)
    exc: BaseException | None = info.value
    assert str(exc).startswith("auth: ")
    while exc is not None:  # the exception, its snippet, and its whole chain
        for secret in SECRETS:
            assert secret not in str(exc) and secret not in repr(vars(exc)) and secret not in repr(exc.args)
        exc = exc.__cause__ or exc.__context__
    assert data.call_count == 0


async def test_voicetrends_401_refreshes_once_and_succeeds(router: respx.MockRouter) -> None:
    ep = ENDPOINTS[1]
    auth = mock_auth(router, AUTH_JSON, AUTH2_JSON)
    refused = httpx.Response(401, content=php_json({"error": "invalid or expired credentials"}))
    ok = by_accept(ep.bodies)
    answers = iter([refused])
    route = router.route(host=VT_HOST, path=ep.path).mock(side_effect=lambda r: next(answers, None) or ok(r))
    async with client() as plum:
        report = await _volume(plum, None)
        assert report.calls.total() == 3
        await _volume(plum, None)  # now cached: no request, no auth
        assert plum.voicetrends.authentications == 2
    assert (auth.call_count, route.call_count) == (2, 2)
    assert route.calls[1].request.headers["authorization"] == basic(TEMP2_LOGIN, TEMP2_PASSWORD)


async def test_server_errors_are_retried_through_the_policy(router: respx.MockRouter) -> None:
    ep = ENDPOINTS[8]  # calls/log
    failing = httpx.Response(500, content=b'{"status":"failure","error":"unknown error",}')
    answers = iter([failing])
    ok = by_accept(ep.bodies)
    route = router.route(host=CL_HOST, path=ep.path).mock(side_effect=lambda r: next(answers, None) or ok(r))
    policy = RetryPolicy(attempts=2, backoff_initial=0.0, jitter=0.0)
    async with client(retry=policy) as plum:
        assert (await _log(plum, None)).location == "Boston"
    assert route.call_count == 2


# --- validation before any request -----------------------------------------------------------------------

TODAY = date(2026, 1, 2)
VT_BAD: list[tuple[str, Callable[[PlumClient], Awaitable[Any]]]] = [
    ("month 13", lambda p: p.voicetrends.volume("2026-13-01", "2026-12-31")),
    ("day 32", lambda p: p.voicetrends.events("20260132", "20260201")),
    ("start after end", lambda p: p.voicetrends.performance(TODAY, TODAY - timedelta(days=1))),
    ("not a date", lambda p: p.voicetrends.profile("yesterday", TODAY)),
    ("bad period", lambda p: p.voicetrends.volume(TODAY, TODAY, period="hour")),
    ("bad phone", lambda p: p.voicetrends.volume(TODAY, TODAY, phone="12ab")),
    ("bad phone geo", lambda p: p.voicetrends.geographic(TODAY, TODAY, phone="12ab")),
    ("bad phone path", lambda p: p.voicetrends.path(TODAY, TODAY, phone="")),
    ("bad date path", lambda p: p.voicetrends.path("2026-02-30", TODAY)),
]
CL_BAD: list[tuple[str, Callable[[PlumClient], Awaitable[Any]]]] = [
    ("page size 0", lambda p: p.calllogs.logs_page(CL_START, CL_END, limit=0)),
    ("page size 10001", lambda p: p.calllogs.logs_page(CL_START, CL_END, limit=10_001)),
    ("negative offset", lambda p: p.calllogs.sessions_page(CL_START, CL_END, offset=-1)),
    ("end == start", lambda p: p.calllogs.logs_page(CL_START, CL_START)),
    ("end < start", lambda p: p.calllogs.errors_page(CL_END, CL_START)),
    ("naive datetime", lambda p: p.calllogs.logs_page(datetime(2026, 1, 1), CL_END)),
    ("bad number", lambda p: p.calllogs.sessions_page(CL_START, CL_END, number="12ab")),
    ("non-numeric log_id", lambda p: p.calllogs.log("abc")),
    ("log_id with letters", lambda p: p.calllogs.log("4216x7729")),
    ("log_id 0", lambda p: p.calllogs.log(0)),
]


@pytest.mark.parametrize(("name", "call"), VT_BAD + CL_BAD, ids=[n for n, _ in VT_BAD + CL_BAD])
async def test_bad_arguments_are_refused_before_any_request(
        router: respx.MockRouter, name: str, call: Callable[[PlumClient], Awaitable[Any]]) -> None:
    anything = router.route().respond(500)
    async with client() as plum:
        with pytest.raises(ValidationError):
            await call(plum)
        assert plum.governor.usage(plum.groups["data"]).sent == 0
    assert anything.call_count == 0


@pytest.mark.parametrize("kind", ["logs", "sessions", "errors"])
async def test_paginating_iterators_check_arguments_when_called(router: respx.MockRouter, kind: str) -> None:
    anything = router.route().respond(500)
    async with client() as plum:
        listing = getattr(plum.calllogs, kind)
        for bad in ({"page_size": 0}, {"page_size": 10_001}, {"end": CL_START}, {"number": "12ab"}):
            args: dict[str, Any] = {"start": CL_START, "end": CL_END, **bad}
            with pytest.raises(ValidationError):
                listing(args.pop("start"), args.pop("end"), **args)  # raises before iteration starts
    assert anything.call_count == 0


# --- retention warning -----------------------------------------------------------------------------------


async def test_calls_logs_older_than_5_days_warns_but_is_sent(router: respx.MockRouter) -> None:
    ep = ENDPOINTS[7]
    old_start, old_end = NOW - 6 * 86400, NOW - 4 * 86400
    route = router.route(host=CL_HOST, path=f"/ws/calls/logs/{old_start}/{old_end}").mock(
        side_effect=by_accept(ep.bodies))
    async with client() as plum:
        with pytest.warns(RetentionWarning, match="5 days"):
            page = await plum.calllogs.logs_page(old_start, old_end)
        assert page.total == 1234
    assert route.call_count == 1


async def test_paginated_logs_warn_once_from_the_callers_line(router: respx.MockRouter) -> None:
    old_start, old_end = NOW - 6 * 86400, NOW - 4 * 86400
    route = router.route(host=CL_HOST, path=f"/ws/calls/logs/{old_start}/{old_end}").mock(
        side_effect=paged_logs(5, 5))
    async with client() as plum:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ids = [entry.log_id async for entry in plum.calllogs.logs(old_start, old_end, page_size=2)]
    assert ids == [1, 2, 3, 4, 5] and route.call_count == 3
    assert [w.category for w in caught] == [RetentionWarning]  # not one more per page
    assert caught[0].filename == __file__


async def test_no_retention_warning_within_5_days_or_for_sessions(router: respx.MockRouter) -> None:
    mock_endpoint(router, ENDPOINTS[7])
    old_start, old_end = NOW - 300 * 86400, NOW - 299 * 86400
    router.route(host=CL_HOST, path=f"/ws/calls/sessions/{old_start}/{old_end}").mock(
        side_effect=by_accept(SESSIONS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with client() as plum:
            await _logs(plum, None)
            await plum.calllogs.sessions_page(old_start, old_end)  # sessions are kept for a year


# --- pagination ------------------------------------------------------------------------------------------


def log_entry(log_id: int) -> dict[str, str]:
    start = CL_START + log_id * 60
    return {"log_id": str(log_id), "session_id": f"400050;000;{start - 11}", "dest": "6177123000",
            "type": "inbound", "src": "2125551234", "start": str(start), "end": str(start + 30)}


def paged_logs(total: int, stored: int) -> Callable[[httpx.Request], httpx.Response]:
    """calls/logs claiming ``total`` matches while holding ``stored`` entries (ids 1..stored)."""

    def respond(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        logs = [log_entry(i) for i in range(1 + offset, 1 + min(stored, offset + limit))]
        result = {"total_logs": str(total), "logs": logs}
        return httpx.Response(200, content=php_json({"status": "success", "error": "", "result": result}))

    return respond


async def test_logs_paginates_until_total_logs(router: respx.MockRouter) -> None:
    route = router.route(host=CL_HOST, path=f"/ws/calls/logs/{CL_RANGE}").mock(side_effect=paged_logs(5, 5))
    async with client() as plum:
        ids = [entry.log_id async for entry in plum.calllogs.logs(CL_START, CL_END, page_size=2)]
    assert ids == [1, 2, 3, 4, 5]
    assert [dict(c.request.url.params) for c in route.calls] == [
        {"offset": str(o), "limit": "2"} for o in (0, 2, 4)]


async def test_logs_stops_on_an_empty_page(router: respx.MockRouter) -> None:
    route = router.route(host=CL_HOST, path=f"/ws/calls/logs/{CL_RANGE}").mock(side_effect=paged_logs(10, 4))
    async with client() as plum:
        ids = [entry.log_id async for entry in plum.calllogs.logs(CL_START, CL_END, number="6177123000",
                                                                   page_size=2)]
    assert ids == [1, 2, 3, 4]
    # the page at offset 4 came back empty: stop, although total_logs says 10
    assert [c.request.url.params["offset"] for c in route.calls] == ["0", "2", "4"]
    assert all(c.request.url.params["number"] == "6177123000" for c in route.calls)


async def test_sessions_paginate_until_total(router: respx.MockRouter) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        lines = [line.replace("\\/", "/") for line in SESSION_LINES[offset:offset + limit]]
        result = {"total_sessions": str(len(SESSION_LINES)), "sessions": lines}
        return httpx.Response(200, json={"status": "success", "error": "", "result": result})

    route = router.route(host=CL_HOST, path=f"/ws/calls/sessions/{CL_RANGE}").mock(side_effect=respond)
    async with client() as plum:
        lines = [line async for line in plum.calllogs.sessions(CL_START, CL_END, page_size=2)]
    assert len(lines) == 3
    assert [c.request.url.params["offset"] for c in route.calls] == ["0", "2"]
