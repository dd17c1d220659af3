"""Log-line parsers: the documented examples, every line format, and fuzzing (never raise, raw kept)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumasync.lines import (
    ZONE_OFFSETS,
    parse_clf_timestamp,
    parse_detail_line,
    parse_detail_log,
    parse_detail_timestamp,
    parse_error_line,
    parse_session_id,
    parse_session_line,
)
from plumasync.models import (
    DetailLine,
    ErrorLine,
    LocalFetchLine,
    LocalLogLine,
    SessionId,
    SessionLine,
    UnknownLine,
)

UTC = timezone.utc
FUZZ = settings(max_examples=200, deadline=None)


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


# --- session lines -------------------------------------------------------------------------------------

OUTBOUND = (
    "outbound 12125551234 26 [03/Nov/2017:00:10:42 -0500] test@login.com 300024;026;1509673023 "
    "1509682242 1509682255 00:00:13"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            OUTBOUND,
            dict(
                call_type="outbound",
                ani="12125551234",
                channel=26,
                dnis="test@login.com",
                session_id=SessionId("300024", 26, 1509673023, "300024;026;1509673023"),
                start=datetime.fromtimestamp(1509682242, UTC),
                end=datetime.fromtimestamp(1509682255, UTC),
                length=timedelta(seconds=13),
                timestamp_text="03/Nov/2017:00:10:42 -0500",
                timestamp=datetime(2017, 11, 3, 0, 10, 42, tzinfo=tz(-5)),
            ),
        ),
        (
            "inbound 7185551234 3 [03\\/Nov\\/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 "
            "1509734310 1509734339 00:00:29",
            dict(
                call_type="inbound",
                ani="7185551234",
                channel=3,
                dnis="6177123000",
                session_id=SessionId("200035", 3, 1509734279, "200035;003;1509734279"),
                length=timedelta(seconds=29),
                timestamp=datetime(2017, 11, 3, 14, 38, 30, tzinfo=tz(-5)),
                timestamp_text="03\\/Nov\\/2017:14:38:30 -0500",
            ),
        ),
        (
            "inbound 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 1509747067 "
            "1509747180 00:01:53",
            dict(length=timedelta(minutes=1, seconds=53), end=datetime(2017, 11, 3, 22, 13, 0, tzinfo=UTC)),
        ),
        (
            "transfer 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 (400050;001;1509747051) "
            "1509747067 1509747180 01:02:03",
            dict(
                call_type="transfer",
                length=timedelta(hours=1, minutes=2, seconds=3),
                session_id=SessionId("400050", 1, 1509747051, "(400050;001;1509747051)"),
            ),
        ),
        (  # empty ANI and DNIS still parse
            "inbound  3 [03/Nov/2017:14:38:30 -0500]  200035;003;1509734279 1509734310 1509734339 00:00:29",
            dict(ani="", dnis="", channel=3),
        ),
        (  # an unreadable bracket keeps the literal and gives no datetime
            "inbound 1 2 [yesterday] 3 1;2;3 10 20 00:00:10",
            dict(timestamp=None, timestamp_text="yesterday", start=datetime.fromtimestamp(10, UTC)),
        ),
    ],
)
def test_session_lines(line: str, expected: dict[str, object]) -> None:
    parsed = parse_session_line(line)
    assert isinstance(parsed, SessionLine)
    assert parsed.raw == line
    for name, value in expected.items():
        assert getattr(parsed, name) == value, name


def test_epoch_fields_are_the_truth() -> None:
    parsed = parse_session_line(OUTBOUND)
    assert isinstance(parsed, SessionLine)
    # The bracket reads 00:10:42 -0500 (05:10:42Z) but EDT was in force: the call started 04:10:42Z.
    assert parsed.start == datetime(2017, 11, 3, 4, 10, 42, tzinfo=UTC) and parsed.start_ts == 1509682242
    assert parsed.timestamp is not None and parsed.timestamp - parsed.start == timedelta(hours=1)
    assert parsed.end_ts - parsed.start_ts == parsed.length.total_seconds() == 13


@pytest.mark.parametrize(
    ("line", "cls", "fields"),
    [
        (
            "local 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 fetchurl: "
            "https://demos.plumgroup.com/vxml/start.php?a=b c",
            LocalFetchLine,
            dict(url="https://demos.plumgroup.com/vxml/start.php?a=b c", ani="6175551234", channel=1),
        ),
        (
            "local 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 menu_choice: 2",
            LocalLogLine,
            dict(label="menu_choice", message="2"),
        ),
        (
            "local 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 "
            "note: caller said: hello there",
            LocalLogLine,
            dict(label="note", message="caller said: hello there"),
        ),
        (
            "local 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 empty:",
            LocalLogLine,
            dict(label="empty", message=""),
        ),
        (
            "local 6175551234 1 [03/Nov/2017:18:11:07 -0500] 8009957586 400050;001;1509747051 no label here",
            LocalLogLine,
            dict(label="", message="no label here"),
        ),
    ],
)
def test_local_lines(line: str, cls: type, fields: dict[str, object]) -> None:
    parsed = parse_session_line(line)
    assert type(parsed) is cls and parsed.raw == line
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "...log data string...",
        "inbound 7185551234 3 [03/Nov/2017:14:38:30 -0500] 6177123000 200035;003;1509734279",  # no tail
        "inbound 7185551234 3 [03/Nov/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 1 2 3",
        "inbound 7185551234 x [03/Nov/2017:14:38:30 -0500] 6177123000 200035;003;1509734279 1 2 00:00:01",
        "inbound 7185551234 3 03/Nov/2017:14:38:30 6177123000 200035;003;1509734279 1 2 00:00:01",
        "inbound 7185551234 3 [03/Nov/2017:14:38:30 -0500] 6177123000 200035-003-1509734279 1 2 00:00:01",
        "inbound 1 2 [x] 3 1;2;3 " + "9" * 30 + " 1 00:00:01",  # epoch out of range
        "inbound 1 2 [x] 3 1;2;3 1 2 " + "9" * 30 + ":00:00",  # duration out of range
    ],
)
def test_unknown_session_lines(line: str) -> None:
    parsed = parse_session_line(line)
    assert isinstance(parsed, UnknownLine) and parsed.raw == line and parsed.reason
    assert not parsed.known


# --- error lines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message", "session"),
    [
        (
            "error 2125551234 6 [17\\/Nov\\/2016:14:40:46 -0400] 6177123000 100025;006;1479411625 "
            "Max Disconnect Count Exceeded",
            "Max Disconnect Count Exceeded",
            SessionId("100025", 6, 1479411625, "100025;006;1479411625"),
        ),
        (
            "error 7185551234 1 [20/Nov/2016:21:28:46 -0400] 8009957586 100037;001;1479692314 "
            "errno: 210 message Maximum loop count exceeded",
            "errno: 210 message Maximum loop count exceeded",
            SessionId("100037", 1, 1479692314, "100037;001;1479692314"),
        ),
        (
            "error 6175551234 0 [09/Jan/2017:08:33:31 -0400] 8009957586 000020;000;1483968637 "
            "ReferenceError: d is not defined line 1",
            "ReferenceError: d is not defined line 1",
            SessionId("000020", 0, 1483968637, "000020;000;1483968637"),
        ),
        ("error 1 0 [09/Jan/2017:08:33:31 -0400] 2 000020;000;1483968637", "", None),
    ],
)
def test_error_lines(line: str, message: str, session: SessionId | None) -> None:
    parsed = parse_error_line(line)
    assert isinstance(parsed, ErrorLine) and parsed.raw == line and parsed.known
    assert parsed.message == message
    if session is not None:
        assert parsed.session_id == session
    assert parsed.timestamp is not None and parsed.timestamp.utcoffset() == timedelta(hours=-4)


def test_error_line_fields() -> None:
    parsed = parse_error_line(
        "error 7185551234 1 [20/Nov/2016:21:28:46 -0400] 8009957586 100037;001;1479692314 "
        "errno: 210 message Maximum loop count exceeded"
    )
    assert isinstance(parsed, ErrorLine)
    assert (parsed.ani, parsed.channel, parsed.dnis) == ("7185551234", 1, "8009957586")
    assert parsed.timestamp == datetime(2016, 11, 20, 21, 28, 46, tzinfo=tz(-4))
    assert parsed.timestamp_text == "20/Nov/2016:21:28:46 -0400"


@pytest.mark.parametrize("line", ["", OUTBOUND, "error x", "error 1 2 [t] 3 4;5 msg"])
def test_unknown_error_lines(line: str) -> None:
    parsed = parse_error_line(line)
    assert isinstance(parsed, UnknownLine) and parsed.raw == line


# --- detail ("last call log") lines ----------------------------------------------------------------------

SID = SessionId("400050", 0, 1510159646, "400050;000;1510159646")


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        (
            "Wed 28 Aug 2002 10:16:58 AM EDT [vxi] (400050;000;1510159646) EVENT: call started",
            dict(
                timestamp_text="Wed 28 Aug 2002 10:16:58 AM EDT",
                module="vxi",
                session_id=SID,
                entry_type="EVENT",
                message="call started",
                timestamp=datetime(2002, 8, 28, 10, 16, 58, tzinfo=tz(-4)),
            ),
        ),
        (
            "Fri 03 Nov 2017 12:05:01 PM EST [log] (400050;000;1510159646) LOCAL: menu_choice: 2",
            dict(
                module="log",
                entry_type="LOCAL",
                message="menu_choice: 2",
                timestamp=datetime(2017, 11, 3, 12, 5, 1, tzinfo=tz(-5)),
            ),
        ),
        (
            "Fri 03 Nov 2017 12:05:01 AM CDT [tel] (400050;000;1510159646) USAGE: seconds=13",
            dict(timestamp=datetime(2017, 11, 3, 0, 5, 1, tzinfo=tz(-5)), entry_type="USAGE"),
        ),
        (
            "03 Nov 2017 17:05:01 -0700 [sip] (400050;000;1510159646) DEBUG: INVITE sip:x@y",
            dict(timestamp=datetime(2017, 11, 3, 17, 5, 1, tzinfo=tz(-7)), module="sip"),
        ),
        (
            "Fri 03 Nov 2017 11:05:01 PM PDT [jsi] (400050;000;1510159646) ERROR: ReferenceError: d",
            dict(
                timestamp=datetime(2017, 11, 3, 23, 5, 1, tzinfo=tz(-7)),
                message="ReferenceError: d",
            ),
        ),
        (  # an unknown zone or none at all: the literal only
            "Fri 03 Nov 2017 11:05:01 PM XYZ [jsi] (400050;000;1510159646) ERROR: boom",
            dict(timestamp=None, timestamp_text="Fri 03 Nov 2017 11:05:01 PM XYZ"),
        ),
        (
            "Fri 03 Nov 2017 11:05:01 PM [jsi] (400050;000;1510159646) ERROR: boom",
            dict(timestamp=None),
        ),
        (
            "Fri 31 Feb 2017 11:05:01 PM EST [custom] () NOTICE: not a real date, new module and type",
            dict(timestamp=None, module="custom", session_id=None, entry_type="NOTICE"),
        ),
        (
            "Fri 03 Nov 2017 13:05:01 PM EST [vxi] (garbage) EVENT:",
            dict(timestamp=None, session_id=None, message=""),
        ),
    ],
)
def test_detail_lines(line: str, fields: dict[str, object]) -> None:
    parsed = parse_detail_line(line)
    assert isinstance(parsed, DetailLine) and parsed.raw == line
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


@pytest.mark.parametrize(
    "line", ["...log data string...", "", "Wed 28 Aug 2002 [vxi] EVENT: no session", "[vxi] (1;2;3) no type"]
)
def test_unknown_detail_lines(line: str) -> None:
    parsed = parse_detail_line(line)
    assert isinstance(parsed, UnknownLine) and parsed.raw == line


def test_detail_log() -> None:
    text = (
        "Wed 28 Aug 2002 10:16:58 AM EDT [tel] (400050;000;1510159646) EVENT: call started\r\n"
        "\n"
        "  continuation of a long message\n"
        "Wed 28 Aug 2002 10:17:11 AM EDT [tel] (400050;000;1510159646) EVENT: call ended"
    )
    lines = parse_detail_log(text)
    assert [type(line) for line in lines] == [DetailLine, UnknownLine, DetailLine]
    assert lines[1].raw == "  continuation of a long message"
    assert parse_detail_log("") == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 Jan 2020 12:00:00 AM UTC", datetime(2020, 1, 12, 0, 0, tzinfo=UTC)),
        ("Sun, 12 Jan 2020 12:00:00 PM GMT", datetime(2020, 1, 12, 12, 0, tzinfo=UTC)),
        ("12 jan 2020 07:00:00 +05:30", datetime(2020, 1, 12, 7, 0, tzinfo=tz(5.5))),
        ("12 Jan 2020 07:00:00 NST", datetime(2020, 1, 12, 7, 0, tzinfo=tz(-3.5))),
        ("12 Foo 2020 07:00:00 EST", None),
        ("12 Jan 2020 00:00:00 AM EST", None),
        ("12 Jan 2020 07:00:00 +9999", None),
    ],
)
def test_detail_timestamps(text: str, expected: datetime | None) -> None:
    assert parse_detail_timestamp(text) == expected


def test_zone_table_is_fixed_offsets() -> None:
    assert ZONE_OFFSETS["EDT"] == -240 and ZONE_OFFSETS["EST"] == -300 and ZONE_OFFSETS["CDT"] == -300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("03/Nov/2017:00:10:42 -0500", datetime(2017, 11, 3, 0, 10, 42, tzinfo=tz(-5))),
        ("17\\/Nov\\/2016:14:40:46 -0400", datetime(2016, 11, 17, 14, 40, 46, tzinfo=tz(-4))),
        ("1/jan/2020:00:00:00 +0000", datetime(2020, 1, 1, tzinfo=UTC)),
        ("03/Nov/2017:00:10:42", None),
        ("31/Feb/2017:00:10:42 -0500", None),
        ("03/Nov/2017:00:10:42 -2500", None),
        ("", None),
    ],
)
def test_clf_timestamps(text: str, expected: datetime | None) -> None:
    assert parse_clf_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("400050;000;1510159646", SessionId("400050", 0, 1510159646, "400050;000;1510159646")),
        ("(000020;000;1483968637)", SessionId("000020", 0, 1483968637, "(000020;000;1483968637)")),
        ("srv-a.1;12;0", SessionId("srv-a.1", 12, 0, "srv-a.1;12;0")),
        ("400050;000", None),
        ("400050;000;1;2", None),
        (";000;1", None),
        ("a b;1;2", None),
        ("4;x;1", None),
        ("4;1;²", None),
        ("4;1;" + "9" * 5000, None),
        ("", None),
    ],
)
def test_session_ids(text: str, expected: SessionId | None) -> None:
    assert parse_session_id(text) == expected


# --- fuzzing -------------------------------------------------------------------------------------------


@FUZZ
@given(st.text())
def test_fuzz_text(text: str) -> None:
    for parse in (parse_session_line, parse_error_line, parse_detail_line):
        assert parse(text).raw == text
    assert all(line.raw.strip() for line in parse_detail_log(text))
    parse_clf_timestamp(text)
    parse_detail_timestamp(text)
    parse_session_id(text)


WORD = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="[]()"), min_size=1, max_size=12
)
DIGITS = st.integers(0, 2**31).map(str)
MONTHS = st.sampled_from(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])


@st.composite
def clf(draw: st.DrawFn) -> tuple[str, datetime]:
    when = draw(st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1))).replace(microsecond=0)
    minutes = draw(st.integers(-12 * 60, 14 * 60))
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    text = f"{when.day:02d}/{when:%b}/{when.year}:{when:%H:%M:%S} {sign}{hours:02d}{mins:02d}"
    if draw(st.booleans()):
        text = text.replace("/", "\\/")
    return text, when.replace(tzinfo=timezone(timedelta(minutes=minutes)))


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    ani, dnis = draw(WORD | st.just("")), draw(WORD | st.just(""))
    channel, server = draw(st.integers(0, 999)), draw(st.from_regex(r"[0-9A-Za-z]{1,8}", fullmatch=True))
    schan, sstart = draw(st.integers(0, 999)), draw(st.integers(0, 2**31))
    stamp, when = draw(clf())
    sid = f"{server};{schan:03d};{sstart}"
    fields = dict(
        ani=ani, channel=channel, dnis=dnis, timestamp=when, session_id=SessionId(server, schan, sstart, sid)
    )
    return f"{ani} {channel} [{stamp}] {dnis} {sid}", fields


@FUZZ
@given(
    headers(),
    st.sampled_from(["inbound", "outbound", "transfer"]),
    st.integers(0, 2**33),
    st.integers(0, 2**20),
    st.integers(0, 99),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_fuzz_session_grammar(
    head: tuple[str, dict[str, object]], kind: str, start: int, length: int, hh: int, mm: int, ss: int
) -> None:
    text, fields = head
    line = f"{kind} {text} {start} {start + length} {hh:02d}:{mm:02d}:{ss:02d}"
    parsed = parse_session_line(line)
    assert isinstance(parsed, SessionLine) and parsed.raw == line
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name
    assert parsed.call_type == kind and parsed.start_ts == start and parsed.end_ts == start + length
    assert parsed.length == timedelta(hours=hh, minutes=mm, seconds=ss)


MESSAGE = st.text(st.characters(exclude_categories=("Cs", "Zl", "Zp", "Cc")), max_size=40).map(str.strip)


@FUZZ
@given(headers(), MESSAGE, st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.booleans())
def test_fuzz_local_and_error_grammar(
    head: tuple[str, dict[str, object]], message: str, label: str, fetch: bool
) -> None:
    text, fields = head
    error = parse_error_line(f"error {text} {message}".rstrip())
    assert isinstance(error, ErrorLine) and error.message == message
    assert all(getattr(error, name) == value for name, value in fields.items())
    label = "fetchurl" if fetch else label
    local = parse_session_line(f"local {text} {label}: {message}")
    assert isinstance(local, LocalFetchLine if fetch else LocalLogLine)
    assert all(getattr(local, name) == value for name, value in fields.items())
    if isinstance(local, LocalFetchLine):
        assert local.url == message
    else:
        assert (local.label, local.message) == (label, message)


@FUZZ
@given(
    st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)),
    st.sampled_from(sorted(ZONE_OFFSETS)),
    st.sampled_from(
        sorted({"client", "dxi", "inet", "jsi", "log", "prompt", "rec", "tel", "vxi", "dlg", "sip"})
    ),
    st.sampled_from(["EVENT", "DEBUG", "LOCAL", "USAGE", "ERROR"]),
    MESSAGE,
    st.booleans(),
)
def test_fuzz_detail_grammar(
    when: datetime, zone: str, module: str, kind: str, message: str, twelve_hour: bool
) -> None:
    when = when.replace(microsecond=0)
    clock = f"{when:%I:%M:%S %p}" if twelve_hour else f"{when:%H:%M:%S}"
    stamp = f"{when:%a} {when.day:02d} {when:%b} {when.year} {clock} {zone}"
    line = f"{stamp} [{module}] (400050;000;1510159646) {kind}: {message}"
    parsed = parse_detail_line(line)
    assert isinstance(parsed, DetailLine) and parsed.raw == line
    assert (parsed.timestamp_text, parsed.module, parsed.entry_type, parsed.message) == (
        stamp,
        module,
        kind,
        message,
    )
    assert parsed.timestamp == when.replace(tzinfo=timezone(timedelta(minutes=ZONE_OFFSETS[zone])))
    assert parsed.session_id == SID
