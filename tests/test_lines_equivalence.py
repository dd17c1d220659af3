"""The partition-based session and error line parsers give exactly what the regex parsers gave: the same
model (every field, lazily built ones included) or the same UnknownLine and reason, on every documented
line, every line the sandbox writes, and generated lines around the grammar's edges."""

from __future__ import annotations

import json
import pickle

import legacy_lines as old
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire import ERRORS_JSON, ERRORS_XML, SESSIONS_JSON, SESSIONS_XML

from plumasync import lines, wire
from plumasync.models import BaseSessionLine, SessionLine
from plumasync.testing import sandbox_bodies

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same(new: object, before: object) -> None:
    """Same type, equal (every field read, so every lazy one built), same repr."""
    assert type(new) is type(before)
    assert new == before
    assert repr(new) == repr(before)


def check(line: str) -> None:
    assert_same(lines.parse_session_line(line), old.parse_session_line(line))
    assert_same(lines.parse_error_line(line), old.parse_error_line(line))


def _documented_lines() -> list[str]:
    found = []
    for body in (SESSIONS_JSON, ERRORS_JSON):
        result = json.loads(body)["result"]
        found += result.get("sessions", []) + result.get("errors", [])
    for body, service in ((SESSIONS_XML, "sessions"), (ERRORS_XML, "errors")):
        page = wire.parse_session_page(body, "xml") if service == "sessions" else wire.parse_error_page(body, "xml")
        found += [line.raw for line in page]
    return found


def test_every_documented_line() -> None:
    documented = _documented_lines()
    assert len(documented) == 12
    for line in documented:
        check(line)


def test_every_sandbox_line() -> None:
    bodies = sandbox_bodies(300)
    sandbox = [line for service in ("sessions", "errors")
               for line in json.loads(bodies[service, "json"])["result"][service]]
    assert len(sandbox) > 300
    for line in sandbox:
        check(line)


@pytest.mark.parametrize(
    "line",
    [
        "inbound  3 [03/Nov/2017:14:38:30 -0500]  (200035;003;1509734279) 1 2 00:00:29",  # empty ANI, DNIS
        "inbound 1 3 [x] d (200035;003;1509734279 1 2 00:00:29",  # one parenthesis only
        "inbound 1 3 [x] d 200035;003;1509734279) 1 2 00:00:29",
        "inbound 1 3 [x] d a.b-c@d;003;1509734279 1 2\t\t00:00:29",  # any server without ()/; or blanks
        "inbound 1 3 [x] d 2;3;4  1 2 00:00:29",  # two spaces: the tail starts with a blank
        "inbound 1 3 [x] d 2;3;4 1 2 00:00:29\n",
        "inbound\t1 3 [x] d 2;3;4 1 2 00:00:29",
        "inbound 1 3 [x]] d 2;3;4 1 2 00:00:29",
        "inbound 1 3 [a\nb] d 2;3;4 1 2 00:00:29",  # anything but ] inside the brackets
        "inbound 1 ٣ [x] d 2;3;4 1 2 00:00:29",  # a non-ASCII digit is no channel
        "inbound 1 3 [x] d 2;٣;4 1 2 00:00:29",
        "inbound 1 3 [x] d 2;3;4 99999999999999999999 2 00:00:29",  # epoch out of range
        "inbound 1 3 [x] d 2;3;4 1 2 999999999999:00:00",  # length out of range
        "inbound 1 3 [x] d 2;3;" + "9" * 5000 + " 1 2 00:00:01",  # int() refuses 5,000 digits
        "inbound 1 " + "9" * 5000 + " [x] d 2;3;4 1 2 00:00:01",
        "local 1 3 [x] d 2;3;4 fetchurl: http://x",
        "local 1 3 [x] d 2;3;4 FetchURL:",
        "local 1 3 [x] d 2;3;4 no label here",
        "local 1 3 [x] d 2;3;4",
        "error 1 3 [x] d 2;3;4",
        "error 1 3 [x] d (2;3;4) multi  spaced\tmessage: yes",
        "error 1 3 [] d 2;3;4 m",
        "error 1 3 [x] d 2;3 m",
        "\u3000error 1 3 [x] d 2;3;4 m\u3000",
        "error 1 3 [x]\xa0d 2;3;4 m",
    ],
)
def test_edges(line: str) -> None:
    check(line)


# --- generated lines: the grammar's pieces, right and wrong ---------------------------------------------

KINDS = st.sampled_from(["inbound", "outbound", "transfer", "local", "error", "", "in\tbound", "x[y", "é"])
TOKENS = st.sampled_from(["", "12125551234", "test@login.com", "a b", "(", ")", "[x]", "a\tb", "\xa0", "٣", "-"])
CHANNELS = st.sampled_from(["0", "26", "007", "", "x", "٣", "1 ", "99999999999999999999"])
STAMPS = st.sampled_from(["03/Nov/2017:00:10:42 -0500", "03\\/Nov\\/2017:00:10:42 -0500", "", "x]y", "a\nb",
                          "31/Feb/2017:00:00:00 +0000", "1/jan/2017:1:02:03+0130", "03/Nov/2017:00:10:42"])
SIDS = st.sampled_from(["300024;026;1509673023", "(300024;026;1509673023)", "(1;2;3", "1;2;3)", "a;b;c",
                        "1;2", "1;2;3;4", "x.y;1;2", "(;1;2)", ";1;2", "1;;2", "1;2;", "é;1;2", "1;٣;2",
                        "1;2;" + "9" * 70, "a(b;1;2"])
TAILS = st.sampled_from(["1509682242 1509682255 00:00:13", "1 2 3:4:5", "1\t2\t\t3:4:5", "1 2 3:4", "1 2",
                         "fetchurl: http://x", "label: msg", "label:", "msg", "", " 1 2 3:4:5", "1 2 3:4:5 ",
                         "99999999999999 1 00:00:01", "1 2 3:4:5:6", "١ 2 3:4:5", "Max Disconnect  Count"])
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", "\t", ""])


@st.composite
def session_lines(draw: st.DrawFn) -> str:
    sep = [draw(SEPARATORS) for _ in range(6)]
    parts = [draw(KINDS), sep[0], draw(TOKENS), sep[1], draw(CHANNELS), sep[2], "[", draw(STAMPS), "]", sep[3],
             draw(TOKENS), sep[4], draw(SIDS), sep[5], draw(TAILS)]
    return "".join(parts)


@FUZZ
@given(session_lines())
def test_fuzz_grammar(line: str) -> None:
    check(line)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*"ab 1;2()[]:/\\\t\n\xa0٣-+", "inbound ", "error ", "local "]), max_size=40)
       .map("".join))
def test_fuzz_text(line: str) -> None:
    check(line)


# --- the lazily read fields ------------------------------------------------------------------------------

DOCUMENTED = (
    "outbound 12125551234 26 [03\\/Nov\\/2017:00:10:42 -0500] test@login.com 300024;026;1509673023 "
    "1509682242 1509682255 00:00:13"
)


def test_timestamps_are_read_on_first_use_only() -> None:
    parsed = lines.parse_session_line(DOCUMENTED)
    assert isinstance(parsed, SessionLine)
    for name in ("timestamp", "start", "end"):  # the slots are empty: nothing built yet
        with pytest.raises(AttributeError):
            getattr(type(parsed), name).__get__(parsed)
    assert parsed.start_ts == 1509682242 and parsed.end_ts == 1509682255  # from the text, still nothing built
    with pytest.raises(AttributeError):
        SessionLine.start.__get__(parsed)
    assert parsed.timestamp is not None and parsed.timestamp.utcoffset() is not None
    assert BaseSessionLine.timestamp.__get__(parsed) is parsed.timestamp  # filled once, then a plain read
    assert pickle.loads(pickle.dumps(lines.parse_session_line(DOCUMENTED))) == old.parse_session_line(DOCUMENTED)
