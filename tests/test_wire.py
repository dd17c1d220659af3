"""Wire layer: every example body of Plum's pages (seeds/ and plum-api.md) parsed to typed values,
the quirks (string numbers, ``[]`` for ``{}``, trailing comma, XML ``\\/``), and fuzzing."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumasync import wire
from plumasync.errors import FailureStatusError, ResponseParseError
from plumasync.models import (
    EMPTY_SERIES,
    CallLogDetail,
    CallLogEntry,
    CallLogPage,
    ErrorLine,
    EventsReport,
    GeographicReport,
    PathNode,
    PathReport,
    PerformanceReport,
    ProfileReport,
    Series,
    SessionId,
    SessionLine,
    TemporaryCredentials,
    UnknownLine,
    VolumeReport,
)

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The example pages of Plum's API reference, kept verbatim beside the tests so that every clone runs them.
SEEDS = Path(__file__).parent / "fixtures" / "seeds"

# --- the documented bodies, verbatim -------------------------------------------------------------------

# seeds/000 (Caller Profile)
PROFILE_JSON = """{
  "calls":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":1,"1518066000":0},
  "callers":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":1,"1518066000":0}
}"""

# seeds/002 (Performance)
PERFORMANCE_JSON = """{
  "calls":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":1,"1518066000":0},
  "js_errors":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":0,"1518066000":0},
  "js_errors_per_call":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":0,"1518066000":0},
  "fetch_errors":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":0,"1518066000":0},
  "fetch_errors_per_call":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":0,"1518066000":0},
  "average_page_load":{"1517461200":0,"1517547600":0,"1517634000":0,"1517720400":0,"1517806800":0,"1517893200":0,"1517979600":0.045,"1518066000":0}
}"""

# seeds/004 (Diagnostic Flow), one node per line
PATH_JSON = r"""{
  "applications":{
    "https:\/\/demos.plumgroup.com\/vxml\/start.php":[
      {"page":"main.php","form":"main_menu","item":"selection","visits":985,"filled":941,"nomatch":32,"noinput":12,"transfer":0,"disconnect":0},
      {"page":"sales.php","form":"product_menu","item":"selection","visits":462,"filled":425,"nomatch":20,"noinput":4,"transfer":0,"disconnect":13},
      {"page":"customer.php","form":"enter_customer_number","item":"customer_number","visits":523,"filled":488,"nomatch":12,"noinput":8,"transfer":0,"disconnect":15},
      {"page":"customer.php","form":"confirm_customer_number","item":"confirmation","visits":508,"filled":481,"nomatch":9,"noinput":4,"transfer":0,"disconnect":14},
      {"page":"support.php","form":"select_division","item":"selection","visits":316,"filled":292,"nomatch":6,"noinput":3,"transfer":0,"disconnect":15},
      {"page":"helpdesk.php","form":"helpdesk_transfer","item":"transfer","visits":134,"filled":56,"nomatch":0,"noinput":0,"transfer":56,"disconnect":134},
      {"page":"tier_one.php","form":"tier_one_transfer","item":"transfer","visits":89,"filled":44,"nomatch":0,"noinput":0,"transfer":44,"disconnect":89},
      {"page":"tier_three.php","form":"tier_three_transfer","item":"transfer","visits":78,"filled":32,"nomatch":0,"noinput":0,"transfer":32,"disconnect":78},
      {"page":"sales.php","form":"insight","item":"insight_transfer","visits":87,"filled":23,"nomatch":0,"noinput":0,"transfer":23,"disconnect":87},
      {"page":"sales.php","form":"fuse","item":"fuse_transfer","visits":50,"filled":13,"nomatch":0,"noinput":0,"transfer":13,"disconnect":50},
      {"page":"sales.php","form":"dev","item":"dev_transfer","visits":312,"filled":8,"nomatch":0,"noinput":0,"transfer":8,"disconnect":312},
      {"page":"billing.php","form":"billing_menu","item":"selection","visits":178,"filled":151,"nomatch":0,"noinput":20,"transfer":0,"disconnect":7},
      {"page":"billing.php","form":"make_payment","item":"enter_bank_number","visits":87,"filled":64,"nomatch":9,"noinput":5,"transfer":0,"disconnect":9},
      {"page":"billing.php","form":"billing_inquiry","item":"selection","visits":84,"filled":57,"nomatch":14,"noinput":9,"transfer":0,"disconnect":4},
      {"page":"billing.php","form":"payment","item":"payment_transfer","visits":12,"filled":12,"nomatch":0,"noinput":0,"transfer":12,"disconnect":12},
      {"page":"billing.php","form":"make_payment","item":"enter_billing_address","visits":78,"filled":63,"nomatch":8,"noinput":4,"transfer":0,"disconnect":3},
      {"page":"billing.php","form":"make_payment","item":"enter_payment_amount","visits":75,"filled":58,"nomatch":6,"noinput":3,"transfer":0,"disconnect":8},
      {"page":"billing.php","form":"payment_success","item":"thank_you","visits":55,"filled":55,"nomatch":0,"noinput":0,"transfer":0,"disconnect":55},
      {"page":"billing.php","form":"billing_inquiry","item":"billing_transfer","visits":80,"filled":12,"nomatch":0,"noinput":0,"transfer":12,"disconnect":80}
    ]
  }
}"""

# plum-api.md §1.3 (Authenticate)
AUTH_JSON = '{"login":"57b264aa1b794ff89d4effaafdf5e4b0","password":"25d421b1ee6c44daa2d34808e9466f5c"}'

# plum-api.md §1.10 (Geographic): the 50 states and DC, plus "US Toll-Free"; NON_US is []
STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]
GEOGRAPHIC_JSON = '{"US":{' + ",".join(f'"{s}":0' for s in STATES) + ',"US Toll-Free":1},"NON_US":[]}'

# seeds/003 (Call Logs), one body per line as on the page
ENVELOPE_SUCCESS_JSON = r"""{"status":"success","error":"","result": {// SAMPLE RESULT DATA}}"""
ENVELOPE_FAILURE_JSON = r"""{"status":"failure","error":"Unauthorized access to sample service",}"""
ENVELOPE_SUCCESS_XML = (
    r"""<sample><status>success</status><error/><result><!-- SAMPLE RESULT DATA --></result></sample>"""
)
ENVELOPE_FAILURE_XML = (
    r"""<sample><status>failure</status><error>Unauthorized access to sample service</error></sample>"""
)
LOGS_JSON = r"""{"status":"success","error":"","result":{"total_logs":"1234","logs":[{"log_id":"421752831","session_id":"400050;000;1510159646","dest":"6177123000","type":"inbound","src":"2125551234","start":"1510159657","end":"1510159689"},{"log_id":"421627729","session_id":"300025;000;1510142108","dest":"6177123000","type":"inbound","src":"7185551234","start":"1510142148","end":"1510142215"}]}}"""  # noqa: E501
LOGS_XML = r"""<?xml version="1.0"?><logs><status>success</status><error></error><result><total_logs>1234</total_logs><logs><log><log_id>421752831</log_id><session_id>400050;000;1510159646</session_id><dest>6177123000</dest><type>inbound</type><src>2125551234</src><start>1510159657</start><end>1510159689</end></log><log><log_id>421627729</log_id><session_id>300025;000;1510142108</session_id><dest>6177123000</dest><type>inbound</type><src>7185551234</src><start>1510142148</start><end>1510142215</end></log></logs></result></logs>"""  # noqa: E501
LOG_JSON = r"""{"status":"success","error":"","result":{"dest":"6177123000","src":"2125551234","type":"inbound","timestamp":"1510142148","location":"Boston","log":"...log data string..."}}"""  # noqa: E501
LOG_XML = r"""<?xml version="1.0"?><log><status>success</status><error></error><result><dest>6177123000</dest><src>2125551234</src><type>inbound</type><timestamp>1510142148</timestamp><location>Boston</location><log>...log data string...</log></result></log>"""  # noqa: E501
SESSIONS_JSON = r"""{"status":"success","error":"","result":{"total_sessions":"8","sessions":["outbound 12125551234 26 [03\/Nov\/2017:00:10:42 -0500] test@login.com 300024;026;1509673023 1509682242 1509682255 00:00:13","inbound 7185551234 3 [03\/Nov\/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 1509734310 1509734339 00:00:29","inbound 6175551234 1 [03\/Nov\/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 1509747067 1509747180 00:01:53"]}}"""  # noqa: E501
SESSIONS_XML = r"""<?xml version="1.0"?><sessions><status>success</status><error></error><result><total_sessions>8</total_sessions><sessions><session>outbound 12125551234 26 [03\/Nov\/2017:00:10:42 -0500] test@login.com 300024;026;1509673023 1509682242 1509682255 00:00:13</session><session>inbound 7185551234 3 [03\/Nov\/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 1509734310 1509734339 00:00:29</session><session>inbound 6175551234 1 [03\/Nov\/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 1509747067 1509747180 00:01:53</session></sessions></result></sessions>"""  # noqa: E501
ERRORS_JSON = r"""{"status":"success","error":"","result":{"total_errors":"3","errors":["error 2125551234 6 [17\/Nov\/2016:14:40:46 -0400] 6177123000 100025;006;1479411625 Max Disconnect Count Exceeded","error 7185551234 1 [20\/Nov\/2016:21:28:46 -0400] 8009957586 100037;001;1479692314 errno: 210 message Maximum loop count exceeded","error 6175551234 0 [09\/Jan\/2017:08:33:31 -0400] 8009957586 000020;000;1483968637 ReferenceError: d is not defined line 1"]}}"""  # noqa: E501
ERRORS_XML = r"""<?xml version="1.0"?><errors><status>success</status><error></error><result><total_errors>3</total_errors><errors><error>error 2125551234 6 [17\/Nov\/2016:14:40:46 -0400] 6177123000 100025;006;1479411625 Max Disconnect Count Exceeded</error><error>error 7185551234 1 [20\/Nov\/2016:21:28:46 -0400] 8009957586 100037;001;1479692314 errno: 210 message Maximum loop count exceeded</error><error>error 6175551234 0 [09\/Jan\/2017:08:33:31 -0400] 8009957586 000020;000;1483968637 ReferenceError: d is not defined line 1</error></errors></result></errors>"""  # noqa: E501


def ny(day: int) -> datetime:
    """Midnight of 2018-02-<day> in New York."""
    return datetime(2018, 2, day, tzinfo=NY)


# --- VoiceTrends ---------------------------------------------------------------------------------------


def test_profile_seed() -> None:
    report = wire.parse_trend(PROFILE_JSON, "json", ProfileReport)
    assert set(report.series) == {"calls", "callers"}
    for series in (report.calls, report.callers):
        assert len(series) == 8
        assert list(series) == [ny(d) for d in range(1, 9)]
        # 1517979600 is 2018-02-07 00:00-05:00 (six days after 1517461200 = 2018-02-01 00:00-05:00)
        stamp = datetime.fromtimestamp(1517979600, NY)
        assert stamp == ny(7) and stamp.utcoffset() == timedelta(hours=-5)
        assert series[stamp] == 1 and type(series[stamp]) is int
        assert series[datetime(2018, 2, 7, 5, tzinfo=UTC)] == 1  # any aware datetime of the instant
        assert series.total() == 1
    key = next(iter(report.calls))
    assert key.tzinfo is NY
    assert report.to_dict()["callers"]["2018-02-07T00:00:00-05:00"] == 1
    json.dumps(report.to_dict())


def test_performance_seed() -> None:
    report = wire.parse_trend(PERFORMANCE_JSON, "json", PerformanceReport)
    assert set(report.series) == {
        "calls",
        "js_errors",
        "js_errors_per_call",
        "fetch_errors",
        "fetch_errors_per_call",
        "average_page_load",
    }
    load = report.average_page_load[ny(7)]
    assert load == 0.045 and type(load) is float
    assert report.average_page_load[ny(1)] == 0 and type(report.average_page_load[ny(1)]) is int
    assert report.calls[ny(7)] == 1
    assert report.js_errors.total() == report.fetch_errors.total() == 0
    assert report.js_errors_per_call == report.fetch_errors_per_call == {ny(d): 0 for d in range(1, 9)}


def test_path_seed() -> None:
    report = wire.parse_path(PATH_JSON, "json")
    url = "https://demos.plumgroup.com/vxml/start.php"
    assert list(report.applications) == [url]
    nodes = report.for_application(url)
    assert len(nodes) == 19 and len(list(report.nodes())) == 19
    assert nodes[0] == PathNode("main.php", "main_menu", "selection", 985, 941, 32, 12, 0, 0)
    assert nodes[-1] == PathNode("billing.php", "billing_inquiry", "billing_transfer", 80, 12, 0, 0, 12, 80)
    assert nodes[1].disconnect == 13 and nodes[5].transfer == 56
    assert next(report.nodes()) == (url, nodes[0])
    assert report.for_application("https://elsewhere.example/") == ()
    assert report.to_dict()[url][0]["visits"] == 985


def test_auth_seed() -> None:
    creds = wire.parse_credentials(AUTH_JSON, "json")
    assert creds == TemporaryCredentials(
        "57b264aa1b794ff89d4effaafdf5e4b0", "25d421b1ee6c44daa2d34808e9466f5c"
    )
    assert "25d421b1" not in repr(creds) and "57b264aa" in repr(creds)


def test_geographic_doc_example() -> None:
    report = wire.parse_geographic(GEOGRAPHIC_JSON, "json")
    assert len(report.us) == 52 and len([k for k in report.us if len(k) == 2]) == 51
    assert report.us["US Toll-Free"] == 1 and report.us["AL"] == 0 and report.us["WY"] == 0
    assert report.non_us == {} and report.total == 1
    assert report.to_dict() == {"us": dict(report.us), "non_us": {}}


def test_geographic_non_us_map_and_string_counts() -> None:
    report = wire.parse_geographic('{"US":{"MA":"3"},"NON_US":{"Canada":2,"Mexico":"1"}}', "json")
    assert report == GeographicReport({"MA": 3}, {"Canada": 2, "Mexico": 1})
    assert wire.parse_geographic("[]", "json") == GeographicReport()


VOLUME_JSON = (
    '{"calls":{"1517461200":"10","1517547600":4},"call_minutes":{"1517461200":"12.5","1517547600":3.0},'
    '"transfers":{"1517461200":1,"1517547600":0},"transfer_minutes":[],'
    '"transfer_rate":{"1517461200":"10","1517547600":0},"average_call_length":{"1517461200":75,"1517547600":45.5},'
    '"undocumented_series":{"1517461200":7},"error":""}'
)


def test_volume_string_numbers_empty_array_and_unknown_series() -> None:
    report = wire.parse_trend(VOLUME_JSON, "json", VolumeReport)
    assert report.calls == {ny(1): 10, ny(2): 4} and type(report.calls[ny(1)]) is int
    assert report.call_minutes[ny(1)] == 12.5 and type(report.call_minutes[ny(2)]) is float
    assert report.transfers.total() == 1
    assert report.transfer_minutes == EMPTY_SERIES and len(report.transfer_minutes) == 0
    assert report.transfer_rate[ny(1)] == 10
    assert report.average_call_length[ny(2)] == 45.5
    assert report.get("undocumented_series")[ny(1)] == 7  # every series the server sent is kept
    assert "error" not in report.series  # scalars are not series
    assert report.timestamps() == (ny(1), ny(2))


def test_events_documented_and_missing_series() -> None:
    body = (
        '{"calls":{"1517461200":2},"log_events":{"1517461200":"9"},"loops_per_call":{"1517461200":1.5},'
        '"form_items":{"1517461200":6},"average_form_items":{"1517461200":"3.0"}}'
    )
    report = wire.parse_trend(body, "json", EventsReport)
    assert report.calls[ny(1)] == 2 and report.log_events[ny(1)] == 9
    assert report.loops_per_call[ny(1)] == 1.5 and report.form_items[ny(1)] == 6
    assert report.average_form_items[ny(1)] == 3.0 and type(report.average_form_items[ny(1)]) is float
    assert report.loop_count == Series() and not report.loop_count  # not sent: empty series


def test_trend_null_bucket_omitted_and_other_timezone() -> None:
    body = '{"calls":{"1517461200":null,"1517547600":1}}'
    report = wire.parse_trend(body, "json", ProfileReport, ZoneInfo("America/Chicago"))
    (stamp,) = report.calls
    assert stamp == datetime(2018, 2, 2, 5, tzinfo=UTC) and stamp.utcoffset() == timedelta(hours=-6)


def test_trend_xml_matches_json() -> None:
    items = "".join(f'<item timestamp="{1517461200 + 86400 * i}">{v}</item>' for i, v in enumerate([0, 1]))
    body = (
        f'<?xml version="1.0"?><performance><calls>{items}</calls><average_page_load>'
        f'<item timestamp="1517461200">0</item><item timestamp="1517547600">0.045</item></average_page_load>'
        "<js_errors></js_errors><js_errors_per_call/><error/></performance>"
    )
    report = wire.parse_trend(body, "xml", PerformanceReport)
    assert report.calls == {ny(1): 0, ny(2): 1}
    assert report.average_page_load[ny(2)] == 0.045
    assert report.js_errors == {} and report.js_errors_per_call == {} and "error" not in report.series
    assert wire.parse_trend(b"<volume/>", "xml", VolumeReport) == VolumeReport()


def test_geographic_path_credentials_xml() -> None:
    geo = wire.parse_geographic(
        '<geographic><US><region name="AL">0</region><region name="US Toll-Free">1</region></US><NON_US/>'
        "</geographic>",
        "xml",
    )
    assert geo == GeographicReport({"AL": 0, "US Toll-Free": 1}, {})
    geo = wire.parse_geographic(
        '<geographic><US/><NON_US><region name="CA">4</region></NON_US></geographic>', "xml"
    )
    assert geo.non_us == {"CA": 4}
    path = wire.parse_path(
        '<path><applications><application url="https://x.example/start.php"><node><page>main.php</page>'
        "<form>main_menu</form><item>selection</item><visits>985</visits><filled>941</filled>"
        "<nomatch>32</nomatch><noinput>12</noinput><transfer>0</transfer><disconnect>0</disconnect></node>"
        "</application></applications></path>",
        "xml",
    )
    assert path == PathReport(
        {
            "https://x.example/start.php": (
                PathNode("main.php", "main_menu", "selection", 985, 941, 32, 12, 0, 0),
            )
        }
    )
    creds = wire.parse_credentials("<auth><login>abc</login><password>def</password></auth>", "xml")
    assert creds == TemporaryCredentials("abc", "def")


def test_models_are_frozen_and_friendly() -> None:
    report = wire.parse_trend(PROFILE_JSON, "json", ProfileReport)
    with pytest.raises(AttributeError):
        report.series = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.series["calls"] = Series()  # type: ignore[index]
    assert report.calls == dict(report.calls.items()) and hash(report.calls) == hash(
        Series(dict(report.calls))
    )
    assert "2018-02-07T00:00:00-05:00: 1" in repr(report.calls)
    assert report == wire.parse_trend(PROFILE_JSON.encode(), "json", ProfileReport)
    other: object = ProfileReport(report.series)
    assert VolumeReport(report.series) != other  # same series, different report


# --- Call Logs -----------------------------------------------------------------------------------------

FIRST_ENTRY = CallLogEntry(
    log_id=421752831,
    session_id=SessionId("400050", 0, 1510159646, "400050;000;1510159646"),
    dest="6177123000",
    type="inbound",
    src="2125551234",
    start=datetime(2017, 11, 8, 16, 47, 37, tzinfo=UTC),
    end=datetime(2017, 11, 8, 16, 48, 9, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("body", "fmt"), [(LOGS_JSON, "json"), (LOGS_XML, "xml"), (LOGS_JSON.encode(), "json")]
)
def test_logs_seed(body: str | bytes, fmt: wire.Format) -> None:
    page = wire.parse_log_page(body, fmt, 0, 2)
    assert page.total == 1234 and page.offset == 0 and page.limit == 2 and len(page) == 2
    first, second = page.entries
    assert first == FIRST_ENTRY
    assert first.start_ts == 1510159657 and first.end_ts == 1510159689
    assert first.end == datetime.fromtimestamp(1510159689, UTC) and first.duration == timedelta(seconds=32)
    assert (first.session_id.server, first.session_id.channel, first.session_id.start) == (
        "400050",
        0,
        1510159646,
    )
    assert str(first.session_id) == "400050;000;1510159646"
    assert second.log_id == 421627729 and second.src == "7185551234" and second.session_id.server == "300025"
    assert page.next_offset == 2
    assert first.to_dict()["start"] == "2017-11-08T16:47:37+00:00"


@pytest.mark.parametrize(("body", "fmt"), [(LOG_JSON, "json"), (LOG_XML, "xml")])
def test_log_detail_seed(body: str, fmt: wire.Format) -> None:
    detail = wire.parse_log_detail(body, fmt)
    assert detail == CallLogDetail(
        dest="6177123000",
        src="2125551234",
        type="inbound",
        timestamp=datetime.fromtimestamp(1510142148, UTC),
        location="Boston",
        log="...log data string...",
    )
    assert detail.timestamp_ts == 1510142148
    assert detail.lines() == (UnknownLine("...log data string...", "not a call-log line"),)


def test_log_detail_lines_and_xml_unescape() -> None:
    log = "Wed 28 Aug 2002 10:16:58 AM EDT [vxi] (400050;000;1510159646) EVENT: fetching http:\\/\\/x.example"
    body = (
        '<?xml version="1.0"?><log><status>success</status><error></error><result><dest>1</dest><src>2</src>'
        f"<type>inbound</type><timestamp>1510142148</timestamp><location/><log>{log}</log></result></log>"
    )
    detail = wire.parse_log_detail(body, "xml")
    assert detail.location == ""
    (line,) = detail.lines()
    assert line.message == "fetching http://x.example"  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "fmt"), [(SESSIONS_JSON, "json"), (SESSIONS_XML, "xml")])
def test_sessions_seed(body: str, fmt: wire.Format) -> None:
    page = wire.parse_session_page(body, fmt, 0, 2)
    assert page.total == 8 and len(page.lines) == 3 and page.next_offset == 3
    outbound, inbound, last = page.lines
    assert (
        isinstance(outbound, SessionLine)
        and isinstance(last, SessionLine)
        and isinstance(inbound, SessionLine)
    )
    assert outbound.call_type == "outbound" and outbound.ani == "12125551234" and outbound.channel == 26
    assert outbound.dnis == "test@login.com"
    assert outbound.length == timedelta(seconds=13)
    assert outbound.session_id == SessionId("300024", 26, 1509673023, "300024;026;1509673023")
    assert outbound.start == datetime.fromtimestamp(1509682242, UTC) and outbound.end_ts == 1509682255
    assert outbound.timestamp_text == "03/Nov/2017:00:10:42 -0500"  # XML's \/ unescaped too
    assert inbound.dnis == "6177123000" and inbound.length == timedelta(seconds=29)
    assert last.length == timedelta(minutes=1, seconds=53) and last.session_id.server == "400050"


@pytest.mark.parametrize(("body", "fmt"), [(ERRORS_JSON, "json"), (ERRORS_XML, "xml")])
def test_errors_seed(body: str, fmt: wire.Format) -> None:
    page = wire.parse_error_page(body, fmt, 0, 2)
    assert page.total == 3 and len(page) == 3
    first, second, third = page.lines
    assert isinstance(first, ErrorLine) and isinstance(second, ErrorLine) and isinstance(third, ErrorLine)
    assert first.message == "Max Disconnect Count Exceeded" and first.channel == 6
    assert second.message == "errno: 210 message Maximum loop count exceeded"
    assert second.timestamp == datetime(2016, 11, 20, 21, 28, 46, tzinfo=timezone(timedelta(hours=-4)))
    assert third.message == "ReferenceError: d is not defined line 1"
    assert third.session_id == SessionId("000020", 0, 1483968637, "000020;000;1483968637")
    assert third.ani == "6175551234" and third.dnis == "8009957586"


def test_generic_envelopes() -> None:
    assert wire.unwrap_envelope(wire.loads_json(ENVELOPE_SUCCESS_JSON, endpoint="sample")) == {}
    result = wire.parse_xml_envelope(ENVELOPE_SUCCESS_XML)
    assert result.tag == "result" and len(result) == 0
    data = wire.loads_json(ENVELOPE_FAILURE_JSON, endpoint="sample")
    assert data == {"status": "failure", "error": "Unauthorized access to sample service"}
    with pytest.raises(FailureStatusError) as json_failure:
        wire.unwrap_envelope(data, method="GET", url="https://h.example/ws/calls/logs/1/2", status=200)
    with pytest.raises(FailureStatusError) as xml_failure:
        wire.parse_xml_envelope(ENVELOPE_FAILURE_XML, method="GET", url="u", status=403)
    for failure, status in ((json_failure.value, 200), (xml_failure.value, 403)):
        assert failure.error == "Unauthorized access to sample service" and failure.status == status
    assert (
        json_failure.value.url == "https://h.example/ws/calls/logs/1/2" and json_failure.value.method == "GET"
    )


@pytest.mark.parametrize(
    "parse",
    [
        lambda b, f: wire.parse_log_page(b, f, 0, 10),
        wire.parse_log_detail,
        wire.parse_session_page,
        wire.parse_error_page,
    ],
)
@pytest.mark.parametrize(("body", "fmt"), [(ENVELOPE_FAILURE_JSON, "json"), (ENVELOPE_FAILURE_XML, "xml")])
def test_every_calllogs_parser_raises_failure_status(parse: Any, body: str, fmt: wire.Format) -> None:
    with pytest.raises(FailureStatusError, match="Unauthorized access to sample service"):
        parse(body, fmt)


def test_empty_results() -> None:
    empty = '{"status":"success","error":"","result":[]}'
    assert wire.parse_log_page(empty, "json", 0, 5) == CallLogPage(0, (), 0, 5)
    assert wire.parse_log_page(empty, "json", 0, 5).next_offset is None
    xml = (
        "<ROOT><status>success</status><result><total_sessions>0</total_sessions><sessions/></result></ROOT>"
    )
    assert wire.parse_session_page(xml, "xml").lines == ()
    body = (
        '{"status":"success","error":"","result":{"total_logs":0,"logs":{"0":'
        + json.dumps(json.loads(LOGS_JSON)["result"]["logs"][0])
        + "}}}"
    )
    assert wire.parse_log_page(body, "json").entries == (FIRST_ENTRY,)  # PHP sparse array as object


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ('{"error":"Rate limit exceeded"}', "Rate limit exceeded"),
        ("<error>Invalid credentials</error>", "Invalid credentials"),
        ("<root><error>Invalid credentials</error></root>", "Invalid credentials"),
        (b'<?xml version="1.0"?><root><error> spaced </error></root>', "spaced"),
        (ENVELOPE_FAILURE_JSON, "Unauthorized access to sample service"),
        (ENVELOPE_FAILURE_XML, "Unauthorized access to sample service"),
        ('{"error":"json although xml was asked"}', "json although xml was asked"),
        ("<html>Bad gateway</html>", ""),
        ("Service Unavailable", ""),
        (b"\xff\xfe\x00", ""),
        ("", ""),
        ("[1,2]", ""),
        ('{"error":42}', "42"),
        ('{"error":', ""),
    ],
)
def test_error_texts(body: str | bytes, text: str) -> None:
    """One sniffing reader serves both APIs, whatever Accept asked for."""
    assert wire.error_text(body) == text


# --- malformed bodies ------------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    "<logs><status>success</status><result><total_logs>&lol2;</total_logs></result></logs>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<logs><status>success</status><error>&x;</error></logs>"
)


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        ("{", "json"),
        ("", "json"),
        ("<logs><status>success", "xml"),
        ("", "xml"),
        (BILLION_LAUGHS, "xml"),
        (XXE, "xml"),
        ('{"status":"success","result":{"total_logs":"x","logs":[]}}', "json"),
        ('{"status":"success","result":{"total_logs":"1","logs":[{"log_id":"1"}]}}', "json"),
        ('{"status":"success","result":{"total_logs":"1","logs":["x"]}}', "json"),
        (
            '{"status":"success","result":{"logs":['
            + json.dumps({**json.loads(LOGS_JSON)["result"]["logs"][0], "session_id": "nope"})
            + "]}}",
            "json",
        ),
        ('{"status":"maybe"}', "json"),
        ("[1]", "json"),
        (
            "<logs><status>success</status><result><logs><log><log_id>1</log_id></log></logs></result></logs>",
            "xml",
        ),
        ("<logs><error>no status</error></logs>", "xml"),
    ],
)
def test_malformed_calllogs_bodies(body: str, fmt: wire.Format) -> None:
    with pytest.raises(ResponseParseError) as info:
        wire.parse_log_page(body, fmt, 0, 1)
    assert info.value.endpoint == "calls/logs" and info.value.snippet == body[:200]


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        ('{"calls":[1,2]}', "json"),
        ('{"calls":{"notanepoch":1}}', "json"),
        ('{"calls":{"1517461200":"many"}}', "json"),
        ('{"calls":{"1517461200":true}}', "json"),
        ("<error>Invalid</error>", "xml"),
        ("<volume><calls><item>1</item></calls></volume>", "xml"),
        ("not json", "json"),
        ('"a string"', "json"),
    ],
)
def test_malformed_trend_bodies(body: str, fmt: wire.Format) -> None:
    with pytest.raises(ResponseParseError):
        wire.parse_trend(body, fmt, VolumeReport)


@pytest.mark.parametrize(
    ("parse", "body", "fmt"),
    [
        (wire.parse_credentials, '{"login":"only"}', "json"),
        (wire.parse_credentials, '{"error":"Invalid"}', "json"),
        (wire.parse_credentials, "<auth><login>x</login></auth>", "xml"),
        (wire.parse_geographic, '{"US":{"AL":"x"}}', "json"),
        (wire.parse_geographic, "<geographic><US><region>1</region></US></geographic>", "xml"),
        (wire.parse_path, '{"applications":{"u":[{"page":"p"}]}}', "json"),
        (
            wire.parse_path,
            "<path><applications><application><node/></application></applications></path>",
            "xml",
        ),
    ],
)
def test_malformed_other_bodies(parse: Any, body: str, fmt: wire.Format) -> None:
    with pytest.raises(ResponseParseError):
        parse(body, fmt)


def test_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="fmt"):
        wire.parse_log_page("{}", "yaml", 0, 1)  # type: ignore[arg-type]


# --- every example body in the seed pages, found by shape --------------------------------------------------


def _seed_bodies() -> list[str]:
    bodies: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text()
        # multi-line JSON after an HTTP header block; then one-line envelopes and XML documents
        bodies += re.findall(r"^\{\n.*?^\}$", text, flags=re.M | re.S)
        bodies += [m[m.index("{") :] for m in re.findall(r"^.*\{\"status\".*$", text, flags=re.M)]
        bodies += re.findall(r"^(?:<\?xml|<sample>).*$", text, flags=re.M)
    return bodies


def _parse_any(body: str) -> object:
    fmt: wire.Format = "json" if body.startswith("{") else "xml"
    for marker, parse in (
        ("total_logs", lambda: wire.parse_log_page(body, fmt)),
        ("total_sessions", lambda: wire.parse_session_page(body, fmt)),
        ("total_errors", lambda: wire.parse_error_page(body, fmt)),
        ("location", lambda: wire.parse_log_detail(body, fmt)),
        (
            "status",
            lambda: (
                wire.unwrap_envelope(wire.loads_json(body, endpoint="x"))
                if fmt == "json"
                else wire.parse_xml_envelope(body)
            ),
        ),
        ("applications", lambda: wire.parse_path(body, fmt)),
        ("js_errors", lambda: wire.parse_trend(body, fmt, PerformanceReport)),
        ("callers", lambda: wire.parse_trend(body, fmt, ProfileReport)),
    ):
        if marker in body:
            return parse()
    raise AssertionError(f"unclassified seed body {body[:60]!r}")


def test_every_seed_body_parses() -> None:
    bodies = _seed_bodies()
    assert len(bodies) >= 15
    for body in bodies:
        try:
            _parse_any(body)
        except FailureStatusError as exc:
            assert exc.error == "Unauthorized access to sample service"
    by_marker = {m: [b for b in bodies if m in b] for m in ("applications", "js_errors", "callers")}
    assert [len(v) for v in by_marker.values()] == [1, 1, 1]
    assert wire.parse_path(by_marker["applications"][0], "json") == wire.parse_path(PATH_JSON, "json")
    assert wire.parse_trend(by_marker["callers"][0], "json", ProfileReport) == wire.parse_trend(
        PROFILE_JSON, "json", ProfileReport
    )


# --- fuzzing: only ResponseParseError / FailureStatusError may escape ---------------------------------------

PARSERS: list[Any] = [
    lambda b, f: wire.parse_trend(b, f, VolumeReport),
    wire.parse_geographic,
    wire.parse_path,
    wire.parse_credentials,
    lambda b, f: wire.parse_log_page(b, f, 0, 10),
    wire.parse_log_detail,
    wire.parse_session_page,
    wire.parse_error_page,
]
ALLOWED = (ResponseParseError, FailureStatusError)


def _run_all(body: bytes | str) -> None:
    for fmt in ("json", "xml"):
        for parse in PARSERS:
            with contextlib.suppress(*ALLOWED):
                parse(body, fmt)
    assert isinstance(wire.error_text(body), str)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_binary(body: bytes) -> None:
    _run_all(body)


KEYS = st.sampled_from(
    [
        "status",
        "error",
        "result",
        "total_logs",
        "logs",
        "log_id",
        "session_id",
        "dest",
        "type",
        "src",
        "start",
        "end",
        "total_sessions",
        "sessions",
        "total_errors",
        "errors",
        "timestamp",
        "location",
        "log",
        "login",
        "password",
        "US",
        "NON_US",
        "applications",
        "page",
        "visits",
        "calls",
        "1517461200",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["success", "failure", "1510159657", "400050;000;1510159646", "1.5", "", "[]"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=25,
)


@FUZZ
@given(JSONISH, st.booleans())
def test_fuzz_jsonish(data: Any, envelope: bool) -> None:
    if envelope:
        data = {"status": "success", "error": "", "result": data}
    _run_all(json.dumps(data))


ENTRY_VALUES = st.one_of(st.text(max_size=12), st.integers(-5, 2**40), st.none(), st.floats(allow_nan=False))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["log_id", "session_id", "dest", "type", "src", "start", "end"]),
        ENTRY_VALUES,
        max_size=7,
    )
)
def test_fuzz_log_entries(entry: dict[str, Any]) -> None:
    full = {**json.loads(LOGS_JSON)["result"]["logs"][0], **entry}
    body = json.dumps({"status": "success", "error": "", "result": {"total_logs": 1, "logs": [full]}})
    try:
        page = wire.parse_log_page(body, "json", 0, 1)
    except ResponseParseError:
        return
    assert isinstance(page.entries[0].log_id, int) and page.entries[0].start.tzinfo is UTC


TAGS = st.sampled_from(
    [
        "status",
        "error",
        "result",
        "total_logs",
        "logs",
        "log",
        "log_id",
        "session_id",
        "start",
        "sessions",
        "session",
        "US",
        "region",
        "applications",
        "application",
        "node",
        "calls",
        "item",
        "login",
        "password",
    ]
)


@st.composite
def xml_trees(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(TAGS)
    attrs = draw(st.sampled_from(["", ' timestamp="1517461200"', ' name="AL"', ' url="u"', ' timestamp="x"']))
    if depth < 3 and draw(st.booleans()):
        children = "".join(draw(st.lists(xml_trees(depth + 1), max_size=3)))
    else:
        children = draw(st.sampled_from(["", "success", "failure", "1", "x", "400050;000;1510159646", "1.5"]))
    return f"<{tag}{attrs}>{children}</{tag}>"


@FUZZ
@given(xml_trees())
def test_fuzz_xmlish(body: str) -> None:
    _run_all(body)
    _run_all(f"<ROOT><status>success</status><error/><result>{body}</result></ROOT>")
