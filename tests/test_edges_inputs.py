"""Inputs are bounded before any request: what Plum cannot accept is a ValidationError, never a
request.  Each case here reached the server before the bounds existed."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest

from plumasync import PlumClient, ValidationError, validation

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("value", [date(1, 1, 1), date(999, 12, 31), datetime(999, 1, 1), "09990101",
                                   "0999-01-01", 99_90_101])
def test_dates_need_a_four_digit_year(value: Any) -> None:
    with pytest.raises(ValidationError, match="start"):
        validation.vt_range(value, date(2018, 2, 1))


def test_a_four_digit_year_is_sent_as_yyyymmdd() -> None:
    assert validation.vt_range(date(1000, 1, 1), date(1000, 1, 2)) == ("10000101", "10000102")


@pytest.mark.parametrize("value", ["1234567890123456", 10**15, "+1 617 712 3000 00000 1", "1" * 100, 10**40])
def test_phones_and_numbers_have_at_most_15_digits(value: Any) -> None:
    with pytest.raises(ValidationError, match="phone"):
        validation.phone(value)
    with pytest.raises(ValidationError, match="number"):
        validation.number(value)


@pytest.mark.parametrize("value", ["123456789012345", "ALL", "all", "+1 (617) 712-3000", 7])
def test_phones_of_1_to_15_digits_or_all_pass(value: Any) -> None:
    assert validation.phone(value)


@pytest.mark.parametrize("value", [10**30, 1e30, 253_402_300_800, datetime(9999, 12, 31, 23, 59, 59, 999999,
                                                                           tzinfo=timezone.utc).timestamp() + 1])
def test_timestamps_stop_at_year_9999(value: Any) -> None:
    with pytest.raises(ValidationError, match="9999"):
        validation.cl_timestamp(value, "end")


def test_the_last_second_of_9999_passes() -> None:
    assert validation.cl_timestamp(253_402_300_799) == 253_402_300_799


@pytest.mark.parametrize("value", [2**63, 10**50, str(2**63), str(10**30)])
def test_log_ids_fit_a_signed_64_bit_integer(value: Any) -> None:
    with pytest.raises(ValidationError, match="log_id"):
        validation.log_id(value)
    assert validation.log_id(2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_offsets_fit_a_signed_64_bit_integer(value: int) -> None:
    with pytest.raises(ValidationError, match="offset"):
        validation.offset(value)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_no_bad_input_reaches_the_server() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with PlumClient(login="demo", password="pw", http_client=http) as plum:
        calls = [
            lambda: plum.calllogs.log(2**63),
            lambda: plum.calllogs.log(10**50),
            lambda: plum.calllogs.logs_page(0, 10**30),
            lambda: plum.calllogs.logs_page(0, 100, offset=10**30),
            lambda: plum.calllogs.logs_page(0, 100, number="1" * 16),
            lambda: plum.voicetrends.volume(date(999, 1, 1), date(2018, 1, 1)),
            lambda: plum.voicetrends.volume(date(1, 1, 1), date(2018, 1, 1)),
            lambda: plum.voicetrends.volume(date(2018, 1, 1), date(2018, 1, 2), phone="1" * 16),
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                await call()
    await http.aclose()
    assert sent == []
