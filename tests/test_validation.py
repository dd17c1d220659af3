"""Argument checks: every accepted form gives the canonical wire value, every rejected one a clear
ValidationError naming the argument."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plumasync import validation
from plumasync.errors import PlumError, ValidationError

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2018, 2, 1), date(2018, 2, 1)),
        (datetime(2018, 2, 1, 23, 59), date(2018, 2, 1)),
        (datetime(2018, 2, 1, 23, 59, tzinfo=ZoneInfo("America/New_York")), date(2018, 2, 1)),
        ("20180201", date(2018, 2, 1)),
        (" 20180201 ", date(2018, 2, 1)),
        ("2018-02-01", date(2018, 2, 1)),
        (20180201, date(2018, 2, 1)),
        (20200229, date(2020, 2, 29)),
    ],
)
def test_vt_date_accepts(value: Any, expected: date) -> None:
    assert validation.vt_date(value, "start") == expected


@pytest.mark.parametrize(
    "value",
    [
        "2018021",
        "201802011",
        "2018-0201",
        "20180230",
        "20181301",
        "2018/02/01",
        "",
        "today",
        2018021,
        -20180201,
        True,
        2018.0201,
        None,
        [2018, 2, 1],
        "２０１８０２０１",
    ],
)
def test_vt_date_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="start"):
        validation.vt_date(value, "start")


def test_vt_range() -> None:
    assert validation.vt_range(date(2018, 2, 1), "20180208") == ("20180201", "20180208")
    assert validation.vt_range(20180201, 20180201) == ("20180201", "20180201")  # one day, both inclusive
    with pytest.raises(ValidationError, match=r"start .* after end"):
        validation.vt_range("20180209", "20180208")
    with pytest.raises(ValidationError, match="end"):
        validation.vt_range("20180201", "x")


@pytest.mark.parametrize(("value", "expected"), [("day", "day"), ("WEEK", "week"), (" Month ", "month")])
def test_period_accepts(value: str, expected: str) -> None:
    assert validation.period(value) == expected


@pytest.mark.parametrize("value", ["days", "year", "", None, 1, "d"])
def test_period_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="period must be one of 'day', 'week', 'month'"):
        validation.period(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ALL", "ALL"),
        ("all", "ALL"),
        (" All ", "ALL"),
        ("6177123000", "6177123000"),
        ("+1 (617) 712-3000", "16177123000"),
        ("617.712.3000", "6177123000"),
        ("0044 20 7946 0000", "00442079460000"),
        (6177123000, "6177123000"),
    ],
)
def test_phone_accepts(value: Any, expected: str) -> None:
    assert validation.phone(value) == expected


@pytest.mark.parametrize(
    "value", ["", "+", "617-CALL-NOW", "61+7", "ALL numbers", None, True, -1, 6.17, "١٢٣"]
)
def test_phone_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="phone must be 'ALL' or a phone number"):
        validation.phone(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("6177123000", "6177123000"),
        ("+1 617-712-3000", "16177123000"),
        (6177123000, "6177123000"),
    ],
)
def test_number_accepts(value: Any, expected: str | None) -> None:
    assert validation.number(value) == expected


@pytest.mark.parametrize("value", ["ALL", "", "abc", True, -5, 1.5])
def test_number_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="number must be None or a phone number"):
        validation.number(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2017, 11, 3, 4, 10, 42, tzinfo=UTC), 1509682242),
        (datetime(2017, 11, 3, 0, 10, 42, tzinfo=ZoneInfo("America/New_York")), 1509682242),
        (datetime(2017, 11, 3, 4, 10, 42, 999999, tzinfo=UTC), 1509682242),
        (1509682242, 1509682242),
        (1509682242.9, 1509682242),
        (0, 0),
        (date(2017, 11, 3), 1509667200),
    ],
)
def test_cl_timestamp_accepts(value: Any, expected: int) -> None:
    result = validation.cl_timestamp(value, "start")
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2017, 11, 3, 4, 10, 42), "naive datetime"),
        (-1, "before 1970"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (True, "aware datetime"),
        ("1509682242", "aware datetime"),
        (None, "aware datetime"),
    ],
)
def test_cl_timestamp_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        validation.cl_timestamp(value, "start")
    assert "start" in str(info.value)


def test_cl_range() -> None:
    start = datetime(2017, 11, 3, tzinfo=UTC)
    assert validation.cl_range(start, start + timedelta(hours=1)) == (1509667200, 1509670800)
    assert validation.cl_range(1509681600, 1510203600) == (1509681600, 1510203600)
    with pytest.raises(ValidationError, match=r"end .* must be after start"):
        validation.cl_range(start, start)
    with pytest.raises(ValidationError, match=r"end .* must be after start"):
        validation.cl_range(1510203600, 1509681600)
    with pytest.raises(ValidationError, match=r"end=.*naive"):
        validation.cl_range(start, datetime(2017, 11, 4))


@pytest.mark.parametrize("value", [1, 2, 1000, 10_000])
def test_page_size_accepts(value: int) -> None:
    assert validation.page_size(value) == value


@pytest.mark.parametrize("value", [0, -1, 10_001, True, 1.0, "10", None])
def test_page_size_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="limit must be an int from 1 to 10000"):
        validation.page_size(value)


@pytest.mark.parametrize("value", [0, 1, 10_000, 10**9])
def test_offset_accepts(value: int) -> None:
    assert validation.offset(value) == value


@pytest.mark.parametrize("value", [-1, False, 1.0, "0", None])
def test_offset_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="offset must be an int >= 0"):
        validation.offset(value)


@pytest.mark.parametrize(
    ("value", "expected"), [(421752831, 421752831), ("421627729", 421627729), (" 7 ", 7)]
)
def test_log_id_accepts(value: Any, expected: int) -> None:
    assert validation.log_id(value) == expected


@pytest.mark.parametrize("value", [0, -3, "0", "", "12a", "-5", True, 1.0, None, "9" * 5000, "４２"])
def test_log_id_rejects(value: Any) -> None:
    with pytest.raises(ValidationError, match="log_id must be a positive int or a string of digits"):
        validation.log_id(value)


def test_validation_error_is_in_the_tree() -> None:
    with pytest.raises(PlumError):
        validation.page_size(0)
    with pytest.raises(ValueError):
        validation.page_size(0)
