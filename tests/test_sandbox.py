"""Tests of the simulated Plum server (plumasync.sandbox): wire shapes, rate windows, knobs, recorder."""

from __future__ import annotations

import email.utils
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from plumasync.sandbox import (
    LOG_ID_BASE,
    DroppedConnection,
    SandboxApp,
    SandboxConfig,
    SandboxServer,
)

T0 = 1_519_398_000.0  # 2018-02-23 15:00:00 UTC, a quarter-hour boundary
DEMO = ("demo", "demo-password")
XML = {"Accept": "application/xml"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, t: float = T0 + 10) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def make_app(**fields: Any) -> SandboxApp:
    fields.setdefault("clock", FakeClock())
    fields.setdefault("calls_start", int(T0) - 86400)
    return SandboxApp(SandboxConfig(**fields))


@asynccontextmanager
async def client_for(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


async def authenticate(client: httpx.AsyncClient) -> tuple[str, str]:
    r = await client.post("/api/auth", data={"tool": "dev", "login": DEMO[0], "password": DEMO[1]})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["login"], body["password"]


def rate(r: httpx.Response) -> tuple[int, int, int]:
    h = r.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


VOLUME = "/api/volume/20180201/20180208/day/ALL"
FLOAT_SERIES = {
    "transfer_rate",
    "average_call_length",
    "loops_per_call",
    "average_form_items",
    "js_errors_per_call",
    "fetch_errors_per_call",
    "average_page_load",
}


# ---- VoiceTrends authentication ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_auth_flow_form_body_and_query() -> None:
    app = make_app()
    async with client_for(app) as c:
        r = await c.post("/api/auth", data={"tool": "dev", "login": "demo", "password": "demo-password"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert set(body) == {"login", "password"}
        assert HEX32.match(body["login"]) and HEX32.match(body["password"])
        assert rate(r) == (15, 14, int(T0) + 900)
        assert email.utils.parsedate_to_datetime(r.headers["date"]).timestamp() == T0 + 10
        # the documented ambiguity: the fields as query parameters work too
        r2 = await c.post(
            "/api/auth", params={"tool": "fuseplus", "login": "demo", "password": "demo-password"}
        )
        assert r2.status_code == 200 and r2.json()["login"] != body["login"]
        assert rate(r2)[1] == 13
        # both credentials live side by side
        for cred in (body, r2.json()):
            r3 = await c.get(VOLUME, auth=(cred["login"], cred["password"]))
            assert r3.status_code == 200
        r4 = await c.post("/api/auth", data={"tool": "dev"}, headers=XML)
        assert r4.status_code == 400
        assert ET.fromstring(r4.text).tag == "auth"
    assert app.recorder.count("/api/auth", status=200) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "form", "status"),
    [
        ("POST", {"login": "demo", "password": "demo-password"}, 400),
        ("POST", {"tool": "voice", "login": "demo", "password": "demo-password"}, 400),
        ("POST", {"tool": "dev", "login": "demo"}, 400),
        ("POST", {"tool": "dev", "login": "demo", "password": "wrong"}, 401),
        ("POST", {"tool": "dev", "login": "nobody", "password": "demo-password"}, 401),
        ("PUT", {"tool": "dev", "login": "demo", "password": "demo-password"}, 405),
    ],
)
async def test_auth_errors_are_counted(method: str, form: dict[str, str], status: int) -> None:
    app = make_app()
    async with client_for(app) as c:
        r = await c.request(method, "/api/auth", data=form)
        assert r.status_code == status
        assert set(r.json()) == {"error"}
        assert rate(r)[:2] == (15, 14)
    assert app.used(form["login"], "auth") == 1


@pytest.mark.asyncio
async def test_auth_get_is_405_with_plum_text() -> None:
    async with client_for(make_app()) as c:
        r = await c.get("/api/auth", params={"login": "demo"})
        assert r.status_code == 405
        assert r.content == b'{"error":"invalid HTTP method supplied (only POST allowed)"}'


@pytest.mark.asyncio
async def test_credentials_expire_after_last_use() -> None:
    clock = FakeClock()
    app = make_app(clock=clock, credential_ttl=100)
    async with client_for(app) as c:
        cred = await authenticate(c)
        for _ in range(3):  # each use pushes expiry out
            clock.t += 90
            assert (await c.get(VOLUME, auth=cred)).status_code == 200
        assert app.live_credentials() == 1
        clock.t += 101
        r = await c.get(VOLUME, auth=cred)
        assert r.status_code == 401 and "error" in r.json()
        assert app.live_credentials() == 0


# ---- VoiceTrends data ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_data_401_uncounted_and_405_counted() -> None:
    app = make_app()
    async with client_for(app) as c:
        r = await c.get(VOLUME)
        assert r.status_code == 401 and set(r.json()) == {"error"}
        assert "x-ratelimit-limit" not in r.headers and "date" in r.headers
        r = await c.get(VOLUME, auth=("0" * 32, "1" * 32))
        assert r.status_code == 401
        r = await c.get(VOLUME, auth=DEMO)  # DEV credentials are not temporary credentials
        assert r.status_code == 401
        cred = await authenticate(c)
        r = await c.post(VOLUME, auth=cred)
        assert r.status_code == 405
        assert r.json() == {"error": "invalid HTTP method supplied (only POST allowed)"}
        assert rate(r)[:2] == (150, 149)
    assert app.recorder.count(status=401, group=None) == 3
    assert app.used("demo", "data") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/api/volume/2018020/20180208/day/ALL",
        "/api/volume/20180231/20180308/day/ALL",
        "/api/volume/20180209/20180208/day/ALL",
        "/api/volume/20180201/20180208/year/ALL",
        "/api/events/20180201/20180208/day/61771-23000",
        "/api/performance/20180201/20180208/day",
        "/api/path/20180201/20180208/day/ALL",
        "/api/profile/20180201/20180208/xx/ALL",
    ],
)
async def test_data_400s(path: str) -> None:
    app = make_app()
    async with client_for(app) as c:
        cred = await authenticate(c)
        r = await c.get(path, auth=cred)
        assert r.status_code == 400
        assert set(r.json()) == {"error"}
        x = await c.get(path, auth=cred, headers=XML)
        assert x.status_code == 400 and ET.fromstring(x.text).find("error") is not None
    assert app.used("demo", "data") == 2


@pytest.mark.asyncio
async def test_series_shapes_json_and_xml() -> None:
    app = make_app()
    expected = {
        "volume": [
            "calls",
            "call_minutes",
            "transfers",
            "transfer_minutes",
            "transfer_rate",
            "average_call_length",
        ],
        "events": ["calls", "log_events", "loops_per_call", "form_items", "loop_count", "average_form_items"],
        "performance": [
            "calls",
            "js_errors",
            "js_errors_per_call",
            "fetch_errors",
            "fetch_errors_per_call",
            "average_page_load",
        ],
        "profile": ["calls", "callers"],
    }
    day_keys = [str(1517461200 + 86400 * i) for i in range(8)]  # the keys of Plum's own sample
    async with client_for(app) as c:
        cred = await authenticate(c)
        for resource, names in expected.items():
            path = f"/api/{resource}/20180201/20180208/day/ALL"
            r = await c.get(path, auth=cred)
            assert r.status_code == 200
            body = r.json()
            assert list(body) == names
            for name in names:
                assert list(body[name]) == day_keys
                for value in body[name].values():
                    if name in FLOAT_SERIES:
                        assert type(value) is float or value == 0, (name, value)
                    else:
                        assert type(value) is int, (name, value)
            x = await c.get(path, auth=cred, headers=XML)
            assert x.headers["content-type"] == "application/xml"
            assert x.text.startswith('<?xml version="1.0"?>')
            root = ET.fromstring(x.text)
            assert root.tag == resource
            for element in root:
                items = {i.get("timestamp"): json.loads(i.text or "") for i in element.findall("item")}
                assert items == body[element.tag]
        # weeks start on Monday, months on the 1st, at midnight New York
        weeks = (await c.get("/api/volume/20180201/20180228/week/ALL", auth=cred)).json()["calls"]
        assert next(iter(weeks)) == "1517202000"  # Mon 2018-01-29 00:00 EST
        assert all(int(b) - int(a) == 7 * 86400 for a, b in zip(list(weeks), list(weeks)[1:], strict=False))
        months = (await c.get("/api/volume/20180115/20180410/month/ALL", auth=cred)).json()["calls"]
        assert list(months) == ["1514782800", "1517461200", "1519880400", "1522555200"]  # Apr 1 is EDT
        # an unowned number has data of zero, a rate with no calls is 0
        zero = (await c.get("/api/performance/20180201/20180203/day/2125550000", auth=cred)).json()
        assert set(zero["average_page_load"].values()) == {0}
        # ratios: averages are rounded floats consistent with the counts
        one = (await c.get("/api/volume/20180201/20180201/day/6177123000", auth=cred)).json()
        (ts,) = one["calls"]
        if one["calls"][ts]:
            assert one["transfer_rate"][ts] == round(100 * one["transfers"][ts] / one["calls"][ts], 3)


@pytest.mark.asyncio
async def test_geographic_shape_and_php_empty_array() -> None:
    app = make_app()
    seen_empty = seen_full = False
    async with client_for(app) as c:
        cred = await authenticate(c)
        for day in range(1, 15):
            path = f"/api/profile/201802{day:02d}/20180220/ALL"
            r = await c.get(path, auth=cred)
            body = r.json()
            assert list(body) == ["US", "NON_US"]
            assert len(body["US"]) == 52 and next(iter(body["US"])) == "AL"
            assert list(body["US"])[-1] == "US Toll-Free" and "DC" in body["US"]
            if body["NON_US"] == []:
                seen_empty = True
                assert b'"NON_US":[]' in r.content
            else:
                seen_full = True
                assert isinstance(body["NON_US"], dict) and all(
                    type(v) is int for v in body["NON_US"].values()
                )
            root = ET.fromstring((await c.get(path, auth=cred, headers=XML)).text)
            assert root.tag == "geographic"
            us = root.find("US")
            assert us is not None
            assert {e.get("name"): int(e.text or "") for e in us} == body["US"]
            non_us = root.find("NON_US")
            assert non_us is not None and len(non_us) == len(body["NON_US"])
    assert seen_empty and seen_full


@pytest.mark.asyncio
async def test_path_shape() -> None:
    app = make_app()
    async with client_for(app) as c:
        cred = await authenticate(c)
        r = await c.get("/api/path/20180201/20180208/ALL", auth=cred)
        assert b"https:\\/\\/" in r.content and b"https://" not in r.content
        apps = r.json()["applications"]
        assert 1 <= len(apps) <= 3
        for url, nodes in apps.items():
            assert url.startswith("https://") and url.endswith("start.php")
            for node in nodes:
                assert list(node) == [
                    "page",
                    "form",
                    "item",
                    "visits",
                    "filled",
                    "nomatch",
                    "noinput",
                    "transfer",
                    "disconnect",
                ]
                assert node["visits"] == sum(
                    node[k] for k in ("filled", "nomatch", "noinput", "transfer", "disconnect")
                )
        root = ET.fromstring((await c.get("/api/path/20180201/20180208/ALL", auth=cred, headers=XML)).text)
        assert root.tag == "path"
        xml_apps = root.findall("applications/application")
        assert [a.get("url") for a in xml_apps] == list(apps)
        first = xml_apps[0].findall("node")[0]
        assert {e.tag: e.text for e in first} == {k: str(v) for k, v in next(iter(apps.values()))[0].items()}


# ---- Call Logs ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_calllogs_logs_pagination_filter_and_strings() -> None:
    app = make_app(calls_count=100, calls_spacing=30)
    s = app.config.start_of_calls
    async with client_for(app) as c:
        r = await c.get(f"/ws/calls/logs/{s}/{s + 3000}", params={"offset": 0, "limit": 7}, auth=DEMO)
        assert r.status_code == 200
        assert r.content.startswith(b'{"status":"success","error":"","result":{"total_logs":"100","logs":[')
        result = r.json()["result"]
        assert len(result["logs"]) == 7
        entry = result["logs"][0]
        assert list(entry) == ["log_id", "session_id", "dest", "type", "src", "start", "end"]
        assert all(isinstance(v, str) for v in entry.values())
        assert entry == app.expected_log(LOG_ID_BASE).listing()
        assert int(entry["session_id"].split(";")[2]) == int(entry["start"]) - 11
        # pages concatenate to the expected ids; the end bound is exclusive
        ids: list[int] = []
        for offset in range(0, 200, 40):
            page = await c.get(
                f"/ws/calls/logs/{s}/{s + 1500}", params={"offset": offset, "limit": 40}, auth=DEMO
            )
            body = page.json()["result"]
            assert body["total_logs"] == "50"
            ids += [int(x["log_id"]) for x in body["logs"]]
        assert ids == app.expected_ids(s, s + 1500) == list(range(LOG_ID_BASE, LOG_ID_BASE + 50))
        # number filter (and the alternative "numbers" spelling, and an empty number meaning "all")
        number = app.config.numbers[1]
        for params in ({"number": number}, {"numbers": number}):
            f = (await c.get(f"/ws/calls/logs/{s}/{s + 3000}", params=params, auth=DEMO)).json()["result"]
            assert f["total_logs"] == "33" and {x["dest"] for x in f["logs"]} == {number}
            assert [int(x["log_id"]) for x in f["logs"]] == app.expected_ids(s, s + 3000, number)
        empty = await c.get(f"/ws/calls/logs/{s}/{s + 3000}?number=&offset=&limit=", auth=DEMO)
        assert empty.json()["result"]["total_logs"] == "100"
        # XML
        x = await c.get(f"/ws/calls/logs/{s}/{s + 3000}", params={"limit": 2}, auth=DEMO, headers=XML)
        root = ET.fromstring(x.text)
        assert root.tag == "logs" and root.findtext("status") == "success" and root.findtext("error") == ""
        assert "<error></error>" in x.text
        assert root.findtext("result/total_logs") == "100"
        logs = root.findall("result/logs/log")
        assert [{e.tag: e.text for e in log} for log in logs] == result["logs"][:2]


@pytest.mark.asyncio
async def test_calllogs_detail_matches_expected_log() -> None:
    app = make_app(calls_count=50)
    async with client_for(app) as c:
        for log_id in (LOG_ID_BASE, LOG_ID_BASE + 17, LOG_ID_BASE + 49):
            r = await c.get(f"/ws/calls/log/{log_id}", auth=DEMO)
            result = r.json()["result"]
            expected = app.expected_log(log_id)
            assert result == expected.detail()
            assert list(result) == ["dest", "src", "type", "timestamp", "location", "log"]
            lines = result["log"].split("\n")
            assert 5 <= len(lines) <= 40
            assert re.match(
                r"^\w{3} \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [AP]M E[SD]T \[\w+\] \(\d{6};\d{3};\d+\) "
                r"(EVENT|DEBUG|LOCAL|USAGE|ERROR): ",
                lines[0],
            )
            x = ET.fromstring((await c.get(f"/ws/calls/log/{log_id}", auth=DEMO, headers=XML)).text)
            assert x.tag == "log" and x.findtext("result/log") == result["log"]
        missing = await c.get(f"/ws/calls/log/{LOG_ID_BASE + 50}", auth=DEMO)
        assert missing.status_code == 200
        assert missing.content == b'{"status":"failure","error":"log not found",}'
        bad = await c.get("/ws/calls/log/abc", auth=DEMO, headers=XML)
        assert bad.status_code == 400
        assert bad.text.startswith("<log><status>failure</status><error>")
    with pytest.raises(KeyError):
        app.expected_log(1)


@pytest.mark.asyncio
async def test_calllogs_sessions_and_errors() -> None:
    app = make_app(calls_count=60)
    s = app.config.start_of_calls
    number = app.config.numbers[0]
    async with client_for(app) as c:
        r = await c.get(f"/ws/calls/sessions/{s}/{s + 3600}", params={"number": number}, auth=DEMO)
        result = r.json()["result"]
        assert result["total_sessions"] == "40"
        assert result["sessions"] == app.data.expected_sessions(s, s + 3600, number)
        assert b"\\/" in r.content
        main = result["sessions"][0].split()
        assert main[0] in ("inbound", "outbound") and main[5] == number and len(main) == 10
        assert result["sessions"][1].startswith("local ")
        x = await c.get(
            f"/ws/calls/sessions/{s}/{s + 3600}",
            params={"number": number, "limit": 3},
            auth=DEMO,
            headers=XML,
        )
        root = ET.fromstring(x.text)
        assert root.tag == "sessions" and root.findtext("result/total_sessions") == "40"
        lines = [e.text or "" for e in root.findall("result/sessions/session")]
        assert len(lines) == 3
        # Plum's XML quirk: the bracketed timestamp keeps its JSON-escaped slashes
        assert re.search(r"\[\d{2}\\/\w{3}\\/\d{4}:\d{2}:\d{2}:\d{2} -0[45]00\]", lines[0])
        assert [line.replace("\\/", "/") for line in lines] == result["sessions"][:3]

        e = await c.get(f"/ws/calls/errors/{s}/{s + 3600}", auth=DEMO)
        errors = e.json()["result"]
        assert errors["errors"] == app.data.expected_errors(s, s + 3600)
        assert errors["total_errors"] == str(len(errors["errors"])) == "9"
        assert all(line.startswith("error ") for line in errors["errors"])
        ex = ET.fromstring((await c.get(f"/ws/calls/errors/{s}/{s + 3600}", auth=DEMO, headers=XML)).text)
        assert ex.tag == "errors" and len(ex.findall("result/errors/error")) == 9


@pytest.mark.asyncio
async def test_calllogs_failures() -> None:
    app = make_app()
    s = app.config.start_of_calls
    async with client_for(app) as c:
        r = await c.get(f"/ws/calls/logs/{s}/{s + 60}")
        assert r.status_code == 401
        assert r.content == b'{"status":"failure","error":"Unauthorized access to calls\\/logs service",}'
        r = await c.get(f"/ws/calls/logs/{s}/{s + 60}", auth=("demo", "nope"), headers=XML)
        assert r.status_code == 401
        assert (
            r.text
            == "<logs><status>failure</status><error>Unauthorized access to calls/logs service</error></logs>"
        )
        for path, params in [
            (f"/ws/calls/logs/{s}/{s}", {}),
            (f"/ws/calls/logs/{s}/x", {}),
            (f"/ws/calls/logs/{s}/{s + 60}", {"limit": 0}),
            (f"/ws/calls/logs/{s}/{s + 60}", {"limit": 10001}),
            (f"/ws/calls/sessions/{s}/{s + 60}", {"offset": -1}),
            (f"/ws/calls/errors/{s}", {}),
        ]:
            bad = await c.get(path, params=params, auth=DEMO)
            assert bad.status_code == 400, path
            assert bad.content.startswith(b'{"status":"failure","error":"') and bad.content.endswith(b'",}')
        ok = await c.get(f"/ws/calls/logs/{s}/{s + 60}", params={"limit": 10000}, auth=DEMO)
        assert ok.status_code == 200
        assert (await c.post(f"/ws/calls/logs/{s}/{s + 60}", auth=DEMO)).status_code == 405
    assert app.used("demo", "calllogs") == 8  # the 401s count against nothing


# ---- rate windows and knobs -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fixed_window_counting() -> None:
    clock = FakeClock(T0 + 5)
    app = make_app(clock=clock, limits={"data": (3, 60)})
    async with client_for(app) as c:
        cred = await authenticate(c)
        seen = []
        for _ in range(3):
            r = await c.get(VOLUME, auth=cred)
            assert r.status_code == 200
            seen.append(rate(r))
        assert seen == [(3, 2, int(T0) + 60), (3, 1, int(T0) + 60), (3, 0, int(T0) + 60)]
        r = await c.get(VOLUME, auth=cred, headers={"Accept": "application/xml"})
        assert r.status_code == 429
        assert rate(r) == (3, 0, int(T0) + 60)
        assert ET.fromstring(r.text).findtext("error") == "rate limit exceeded"
        r = await c.get("/api/path/20180201/20180208/ALL", auth=cred)  # all data resources share the group
        assert r.status_code == 429 and r.json() == {"error": "rate limit exceeded"}
        clock.t = T0 + 59.999
        assert (await c.get(VOLUME, auth=cred)).status_code == 429
        clock.t = T0 + 60
        r = await c.get(VOLUME, auth=cred)
        assert r.status_code == 200 and rate(r) == (3, 2, int(T0) + 120)
        # auth has its own group (and its own 900 s window: this is its second request)
        r = await c.post("/api/auth", data={"tool": "dev", "login": "demo", "password": "demo-password"})
        assert rate(r) == (15, 13, int(T0) + 900)
    assert app.recorder.statuses()[429] == 3
    assert app.recorder.count("/api/", status=429, group="data", login="demo") == 3


@pytest.mark.asyncio
async def test_skew_shifts_date_and_reset() -> None:
    clock = FakeClock(T0 + 10)
    app = make_app(clock=clock, skew=-20.0)
    async with client_for(app) as c:
        r = await c.post("/api/auth", data={"tool": "dev", "login": "demo", "password": "demo-password"})
        assert r.headers["date"] == email.utils.formatdate(T0 - 10, usegmt=True)
        assert rate(r)[2] == int(T0)  # server is still in the previous window
        app.set(skew=3.7)
        r = await c.post("/api/auth", data={"tool": "dev", "login": "demo", "password": "demo-password"})
        assert r.headers["date"] == email.utils.formatdate(T0 + 13, usegmt=True)
        assert rate(r) == (15, 14, int(T0) + 900)


@pytest.mark.asyncio
async def test_tenant_spend_precharges_each_window() -> None:
    clock = FakeClock()
    app = make_app(clock=clock, limits={"calllogs": (10, 30)}, tenant_spend={"calllogs": 7})
    s = app.config.start_of_calls
    async with client_for(app) as c:
        statuses = [(await c.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO)) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert rate(statuses[0])[1] == 2
        assert statuses[3].content == b'{"status":"failure","error":"rate limit exceeded",}'
        clock.t += 30
        r = await c.get(f"/ws/calls/logs/{s}/{s + 60}", auth=DEMO)
        assert rate(r)[1] == 2
    assert app.recorder.tenant["calllogs"] == 14
    assert app.recorder.count() == 5


@pytest.mark.asyncio
async def test_calllogs_headers_off_still_enforced() -> None:
    app = make_app(limits={"calllogs": (2, 900)}, calllogs_headers=False)
    async with client_for(app) as c:
        rs = [await c.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO) for _ in range(3)]
        assert [r.status_code for r in rs] == [200, 200, 429]
        for r in rs:
            assert not any(k.startswith("x-ratelimit") for k in r.headers)
            assert "date" in r.headers


@pytest.mark.asyncio
async def test_injected_failures_and_drops_are_counted() -> None:
    app = make_app(fail_requests={2}, drop_requests={3})
    async with client_for(app) as c:
        cred = await authenticate(c)  # request 1
        r = await c.get(VOLUME, auth=cred)  # request 2: injected 500
        assert r.status_code == 500 and r.json() == {"error": "unknown error"}
        assert rate(r)[1] == 149
        with pytest.raises(DroppedConnection):
            await c.get(VOLUME, auth=cred)  # request 3: dropped after the response start
        r = await c.get(VOLUME, auth=cred)
        assert r.status_code == 200 and rate(r)[1] == 147  # the 500 and the drop counted
    rec = app.recorder
    assert rec.count(dropped=True) == 1 and [r.number for r in rec.select(dropped=True)] == [3]
    assert [r.injected for r in rec.records] == [False, True, True, False]
    assert rec.statuses() == {200: 3, 500: 1}


@pytest.mark.asyncio
async def test_fail_rate_is_deterministic() -> None:
    async def run() -> list[int]:
        app = make_app(fail_rate=0.5, fail_seed=7)
        async with client_for(app) as c:
            return [(await c.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO)).status_code for _ in range(20)]

    first = await run()
    assert first == await run()
    assert 500 in first and 200 in first
    app = make_app()
    async with client_for(app) as c:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as quiet:
            app.set(drop_rate=1.0)
            r = await quiet.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO)
            assert r.content == b""  # the body never came
            app.set(drop_rate=0.0)
            assert (await c.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO)).status_code == 200


@pytest.mark.asyncio
async def test_latency_knob() -> None:
    app = make_app(latency=0.05)
    async with client_for(app) as c:
        started = time.perf_counter()
        await c.get("/ws/calls/log/1", auth=DEMO)
        assert time.perf_counter() - started >= 0.05


@pytest.mark.asyncio
async def test_recorder_and_reset() -> None:
    app = make_app()
    async with client_for(app) as c:
        await authenticate(c)
        await c.get("/nowhere", headers=XML)
        await c.get(f"/ws/calls/log/{LOG_ID_BASE}", auth=DEMO)
        await c.get(f"/ws/calls/log/{LOG_ID_BASE + 1}?x=1", auth=DEMO)
    rec = app.recorder
    assert len(rec) == 4
    assert rec.count("/ws/calls/log/") == 2 and rec.count(group="auth") == 1
    assert rec.count(status=404) == 1
    last = rec.records[-1]
    assert (last.method, last.path, last.query, last.group, last.login) == (
        "GET",
        f"/ws/calls/log/{LOG_ID_BASE + 1}",
        "x=1",
        "calllogs",
        "demo",
    )
    assert last.server_time == T0 + 10 and last.accept
    nowhere = rec.select(status=404)[0]
    assert nowhere.group is None and nowhere.accept == "application/xml"
    app.reset()
    assert len(rec) == 0 and app.requests_seen == 0 and app.used("demo", "calllogs") == 0


def test_config_validation_and_runtime_changes() -> None:
    with pytest.raises(ValueError, match="whole number"):
        SandboxConfig(limits={"data": (10, 2.5)})
    with pytest.raises(ValueError, match="unknown"):
        SandboxConfig(limits={"other": (10, 60)})
    with pytest.raises(ValueError):
        SandboxConfig(fail_rate=2)
    app = make_app()
    with pytest.raises(ValueError):
        app.set(limits={"auth": (1, 0)})
    assert app.set(limits={"auth": (1, 30.0)}).limit_for("auth") == (1, 30)
    cfg = SandboxConfig(clock=FakeClock(T0 + 1234))
    assert cfg.calls_start == int(T0) - 3 * 86400


@pytest.mark.asyncio
async def test_determinism_same_seed_same_bytes() -> None:
    paths = [
        "/api/volume/20180201/20180310/week/ALL",
        "/api/events/20180201/20180208/day/6177123000",
        "/api/profile/20180101/20180301/ALL",
        "/api/path/20180201/20180208/ALL",
    ]
    cl_paths = [
        f"/ws/calls/logs/{int(T0) - 86400}/{int(T0)}?limit=50",
        f"/ws/calls/log/{LOG_ID_BASE + 3}",
        f"/ws/calls/sessions/{int(T0) - 86400}/{int(T0)}?limit=50",
        f"/ws/calls/errors/{int(T0) - 86400}/{int(T0)}",
    ]

    async def bodies(seed: int) -> list[bytes]:
        app = make_app(seed=seed)
        out = []
        async with client_for(app) as c:
            cred = await authenticate(c)
            for accept in ("application/json", "application/xml"):
                for p in paths:
                    out.append((await c.get(p, auth=cred, headers={"Accept": accept})).content)
                for p in cl_paths:
                    out.append((await c.get(p, auth=DEMO, headers={"Accept": accept})).content)
        return out

    a, b, other = await bodies(1), await bodies(1), await bodies(2)
    assert a == b
    assert all(x != y for x, y in zip(a, other, strict=True))


def test_lazy_data_scales() -> None:
    app = make_app(calls_count=1_000_000, calls_spacing=0.5)
    data = app.data
    s = app.config.start_of_calls
    ids = data.expected_ids(s + 400_000, s + 400_010, app.config.numbers[2])
    assert ids == [LOG_ID_BASE + i for i in range(800_000, 800_020) if i % 3 == 2]
    assert len(data.select(s, s + 10**9)) == 1_000_000


# ---- the real server ------------------------------------------------------------------------------------


def test_sandbox_server_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="0.0.0.0")
    started = time.perf_counter()
    with SandboxServer(SandboxConfig(drop_requests={3})) as server:
        assert time.perf_counter() - started < 2
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert server.voicetrends_url == server.url + "/api/" and server.calllogs_url == server.url + "/ws/"
        with httpx.Client() as client:
            r = client.post(
                server.voicetrends_url + "auth",
                data={"tool": "dev", "login": "demo", "password": "demo-password"},
            )
            assert r.status_code == 200 and "server" not in r.headers
            assert r.headers["date"].endswith("GMT") and rate(r)[:2] == (15, 14)
            r = client.get(
                server.voicetrends_url + "volume/20180201/20180208/day/ALL", auth=tuple(r.json().values())
            )
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(server.calllogs_url + f"calls/log/{LOG_ID_BASE}", auth=DEMO)
        assert server.app.recorder.count(dropped=True) == 1
    assert not server.running


@pytest.mark.asyncio
async def test_sandbox_server_async_context() -> None:
    async with SandboxServer() as server, httpx.AsyncClient(base_url=server.calllogs_url) as client:
        r = await client.get(f"calls/log/{LOG_ID_BASE}", auth=DEMO, headers=XML)
        assert r.status_code == 200 and ET.fromstring(r.text).tag == "log"
