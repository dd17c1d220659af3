"""Models parsed from the wire build their datetimes and session ids on first read, and are otherwise
the models they were: equal to the eagerly built ones, same repr, hash, pickle, attrs and cattrs views,
and a page with a bad value still fails while parsing."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timezone
from typing import Any

import attrs
import legacy_lines as old
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire import LOG_JSON, LOG_XML, LOGS_JSON, LOGS_XML

from plumasync import wire
from plumasync.converter import converter, structure_entry
from plumasync.errors import ResponseParseError
from plumasync.lines import parse_session_id
from plumasync.models import CallLogDetail, CallLogEntry, SessionId

UTC = timezone.utc
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORD = json.loads(LOGS_JSON)["result"]["logs"][0]


def eager(entry: CallLogEntry) -> CallLogEntry:
    """The same entry built by its constructor (every field set)."""
    sid = entry.session_id
    return CallLogEntry(entry.log_id, SessionId(sid.server, sid.channel, sid.start, sid.raw), entry.dest,
                        entry.type, entry.src, entry.start, entry.end)


def unread(model: object, name: str) -> bool:
    """True while the slot ``name`` is empty (read through the slot itself, not the lazy fallback)."""
    try:
        getattr(type(model), name).__get__(model)
    except AttributeError:
        return True
    return False


@pytest.mark.parametrize(("body", "fmt"), [(LOGS_JSON, "json"), (LOGS_XML, "xml")])
def test_a_page_builds_no_datetime_and_no_session_id(body: str, fmt: wire.Format) -> None:
    entry = wire.parse_log_page(body, fmt).entries[0]
    assert all(unread(entry, name) for name in ("session_id", "start", "end"))
    assert (entry.log_id, entry.start_ts, entry.end_ts) == (421752831, 1510159657, 1510159689)  # what a harvest reads
    assert all(unread(entry, name) for name in ("session_id", "start", "end"))
    sid = entry.session_id
    assert sid.raw == "400050;000;1510159646" and all(unread(sid, n) for n in ("server", "channel", "start"))
    assert (sid.server, sid.channel, sid.start) == ("400050", 0, 1510159646)
    assert entry.start == datetime(2017, 11, 8, 16, 47, 37, tzinfo=UTC) and entry.start.tzinfo is UTC
    assert CallLogEntry.start.__get__(entry) is entry.start  # filled once: later reads are slot reads


def test_a_parsed_entry_is_the_eager_entry() -> None:
    def fresh() -> CallLogEntry:  # nothing read yet
        return wire.parse_log_page(LOGS_JSON, "json").entries[0]

    for views in range(2):  # unread, then read
        parsed = fresh()
        if views:
            parsed.start, parsed.end, parsed.session_id.server  # noqa: B018
        built = eager(fresh())
        assert parsed == built and built == parsed and hash(parsed) == hash(built)
        assert repr(fresh()) == repr(built)
        assert converter.unstructure(fresh()) == converter.unstructure(built)
        assert attrs.asdict(fresh()) == attrs.asdict(built)
        assert fresh().to_dict() == built.to_dict()
        assert attrs.evolve(fresh(), dest="1") == attrs.evolve(built, dest="1")
        for clone in (pickle.loads(pickle.dumps(parsed)), copy.copy(parsed), copy.deepcopy(parsed)):
            assert clone == built and clone.start_ts == built.start_ts
        assert {parsed, built} == {built}


def test_frozen_still() -> None:
    entry = wire.parse_log_page(LOGS_JSON, "json").entries[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.start = datetime.now(UTC)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        entry.nonexistent  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize(("body", "fmt"), [(LOG_JSON, "json"), (LOG_XML, "xml")])
def test_detail_timestamp_on_first_read(body: str, fmt: wire.Format) -> None:
    detail = wire.parse_log_detail(body, fmt)
    assert detail.timestamp_ts == 1510142148 and unread(detail, "timestamp")
    built = CallLogDetail(detail.dest, detail.src, detail.type, datetime.fromtimestamp(1510142148, UTC),
                          detail.location, detail.log)
    assert detail == built and repr(detail) == repr(built) and pickle.loads(pickle.dumps(detail)) == built


@pytest.mark.parametrize("epoch", ["253402300800", "-62135596801", "99999999999999999999", "1e3", "", " 1"])
def test_an_unbuildable_epoch_still_fails_while_parsing(epoch: str) -> None:
    """Built lazily, but checked eagerly: the page fails at once, as when the datetimes were built."""
    body = json.dumps({"status": "success", "result": {"logs": [{**RECORD, "end": epoch}]}})
    if epoch == " 1":
        assert wire.parse_log_page(body, "json").entries[0].end_ts == 1  # int() reads it, as it did
        return
    with pytest.raises(ResponseParseError):
        wire.parse_log_page(body, "json")
    detail = json.dumps({"status": "success", "result": {**json.loads(LOG_JSON)["result"], "timestamp": epoch}})
    with pytest.raises(ResponseParseError):
        wire.parse_log_detail(detail, "json")


# --- every record: the lazy entry and the eager one agree, or fail alike ----------------------------------

VALUES = st.one_of(
    st.sampled_from(["1510159657", "0", "007", "253402300799", "253402300800", "-62135596800", "-1", "+5",
                     " 7", "1_0", "١٢", "²", "9" * 11, "9" * 12, "", "x", "400050;000;1510159646",
                     "(1;2;3)", "(1;2;3", "a.b;1;2", "1;2;3;4", "é;1;2", "1;٣;2", "1;²;2", "1;2;" + "9" * 70]),
    st.integers(-(2**40), 2**40), st.none(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=8),
)


def _outcome(build: Any, record: dict[str, Any]) -> object:
    try:
        entry = build(record)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return repr(entry), entry.start_ts, entry.end_ts, entry.session_id.raw


@FUZZ
@given(st.dictionaries(st.sampled_from(list(RECORD)), VALUES, max_size=7))
def test_fuzz_records(changes: dict[str, Any]) -> None:
    record = {**RECORD, **changes}
    assert _outcome(structure_entry, record) == _outcome(old.structure_entry, record)


@FUZZ
@given(st.one_of(VALUES.filter(lambda v: isinstance(v, str)),
                 st.lists(st.sampled_from(["1", "a", "é", ";", "(", ")", " ", "٣", "0"]), max_size=12).map("".join)))
def test_fuzz_session_ids(text: str) -> None:
    new, before = parse_session_id(text), old.parse_session_id(text)
    assert new == before and repr(new) == repr(before)
