"""Deterministic VoiceTrends data: per-day statistics, period buckets, geographic and diagnostic-flow data.

Every owned number (``SandboxConfig.numbers``) has statistics for every calendar day, a pure function of
``(seed, number, day)``; ``phone="ALL"`` sums the owned numbers; any other number has no data (zeros, as
Plum only serves a number's data to its owner).  A bucket (day, week starting Monday, month) sums the days
of the period that fall within ``[start, end]``; its key is the period start at midnight America/New_York
as a Unix-epoch string.  Counts are ints; rates and averages are floats rounded to 3 places (``0`` when
there were no calls).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

from .data import NEW_YORK, hash_int, hash_unit

__all__ = [
    "MAX_RANGE_DAYS",
    "SERIES",
    "US_REGIONS",
    "DayStats",
    "Trends",
    "bucket_starts",
    "period_start",
]

#: Longest accepted ``[start, end]`` range, in days.
MAX_RANGE_DAYS = 3660

#: Series of each period resource, in wire order.
SERIES: dict[str, tuple[str, ...]] = {
    "volume": (
        "calls",
        "call_minutes",
        "transfers",
        "transfer_minutes",
        "transfer_rate",
        "average_call_length",
    ),
    "events": ("calls", "log_events", "loops_per_call", "form_items", "loop_count", "average_form_items"),
    "performance": (
        "calls",
        "js_errors",
        "js_errors_per_call",
        "fetch_errors",
        "fetch_errors_per_call",
        "average_page_load",
    ),
    "profile": ("calls", "callers"),
}

#: Geographic ``US`` keys in wire order (states by name, DC, then toll-free).
US_REGIONS: tuple[str, ...] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
    "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    "US Toll-Free",
)  # fmt: skip
_NON_US = ("CA", "MX", "GB", "DE", "IN", "BR")
_APPLICATIONS = (
    "https://demos.plumgroup.com/vxml/start.php",
    "https://ivr.example.com/support/start.php",
    "https://apps.example.net/billing/start.php",
)
_NODES = (
    ("main.php", "main_menu", "selection"),
    ("sales.php", "product_menu", "selection"),
    ("customer.php", "enter_customer_number", "customer_number"),
    ("customer.php", "confirm_customer_number", "confirmation"),
    ("support.php", "select_division", "selection"),
    ("helpdesk.php", "helpdesk_transfer", "transfer"),
    ("tier_one.php", "tier_one_transfer", "transfer"),
    ("billing.php", "billing_menu", "selection"),
    ("billing.php", "make_payment", "enter_bank_number"),
    ("billing.php", "billing_inquiry", "selection"),
    ("billing.php", "payment", "payment_transfer"),
    ("billing.php", "make_payment", "enter_payment_amount"),
    ("billing.php", "payment_success", "thank_you"),
)

Number = int | float


@dataclass
class DayStats:
    """Raw per-day (or summed) statistics from which every series is derived."""

    calls: int = 0
    call_seconds: int = 0
    call_minutes: int = 0
    transfers: int = 0
    transfer_minutes: int = 0
    log_events: int = 0
    loops: int = 0
    form_items: int = 0
    js_errors: int = 0
    fetch_errors: int = 0
    page_load_ms: int = 0
    callers: int = 0

    def add(self, other: DayStats) -> None:
        """Add ``other`` into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def series_value(self, name: str) -> Number:
        """The value of series ``name`` for these statistics."""
        calls = self.calls

        def per_call(total: float) -> Number:
            return round(total / calls, 3) if calls else 0

        derived: dict[str, Number] = {
            "transfer_rate": round(100.0 * self.transfers / calls, 3) if calls else 0,
            "average_call_length": per_call(self.call_seconds),
            "loops_per_call": per_call(self.loops),
            "loop_count": self.loops,
            "average_form_items": per_call(self.form_items),
            "js_errors_per_call": per_call(self.js_errors),
            "fetch_errors_per_call": per_call(self.fetch_errors),
            "average_page_load": per_call(self.page_load_ms / 1000.0),
        }
        if name in derived:
            return derived[name]
        value: int = getattr(self, name)
        return value


def period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period (``day``/``week`` from Monday/``month``) containing ``day``."""
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_period(day: dt.date, period: str) -> dt.date:
    if period == "week":
        return day + dt.timedelta(days=7)
    if period == "month":
        return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return day + dt.timedelta(days=1)


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp())


def bucket_starts(start: dt.date, end: dt.date, period: str) -> list[dt.date]:
    """Starts of the periods overlapping ``[start, end]``."""
    out: list[dt.date] = []
    day = period_start(start, period)
    while day <= end:
        out.append(day)
        day = _next_period(day, period)
    return out


class Trends:
    """VoiceTrends data for one seed and set of owned numbers."""

    def __init__(self, *, seed: int, numbers: Sequence[str]) -> None:
        self.seed = seed
        self.numbers = tuple(numbers)

    def _phones(self, phone: str) -> tuple[str, ...]:
        if phone == "ALL":
            return self.numbers
        return (phone,) if phone in self.numbers else ()

    def day_stats(self, number: str, day: dt.date) -> DayStats:
        """Statistics of one owned number on one day."""
        h = hash_int(self.seed, "day", number, day.toordinal())
        h, quiet = divmod(h, 10)
        if quiet == 0:  # an idle day now and then, like the samples
            return DayStats()
        h, base = divmod(h, 120)
        calls = base + (5 if day.weekday() >= 5 else 20)
        h, avg_len = divmod(h, 180)
        call_seconds = calls * (45 + avg_len)
        h, tr = divmod(h, 30)
        transfers = calls * tr // 100
        h, tlen = divmod(h, 240)
        h, ev = divmod(h, 5)
        h, lp = divmod(h, 150)
        h, fi = divmod(h, 6)
        h, js = divmod(h, 6)
        h, fe = divmod(h, 8)
        h, pl = divmod(h, 400)
        h, cr = divmod(h, 35)
        return DayStats(
            calls=calls,
            call_seconds=call_seconds,
            call_minutes=-(-call_seconds // 60),
            transfers=transfers,
            transfer_minutes=-(-transfers * (30 + tlen) // 60),
            log_events=calls * (2 + ev),
            loops=calls * lp // 100,
            form_items=calls * (3 + fi),
            js_errors=calls * js // 100,
            fetch_errors=calls * fe // 100,
            page_load_ms=calls * (20 + pl),
            callers=max(1, calls * (60 + cr) // 100),
        )

    def range_stats(self, phone: str, start: dt.date, end: dt.date) -> DayStats:
        """Statistics of ``phone`` (or ``ALL``) summed over ``[start, end]``."""
        total = DayStats()
        phones = self._phones(phone)
        day = start
        while day <= end:
            for number in phones:
                total.add(self.day_stats(number, day))
            day += dt.timedelta(days=1)
        return total

    def series(
        self, resource: str, start: dt.date, end: dt.date, period: str, phone: str
    ) -> dict[str, dict[str, Number]]:
        """The series of ``resource`` (volume/events/performance/profile): name → {epoch string: value}."""
        buckets: list[tuple[int, DayStats]] = []
        for first in bucket_starts(start, end, period):
            last = min(end, _next_period(first, period) - dt.timedelta(days=1))
            buckets.append((_epoch(first), self.range_stats(phone, max(first, start), last)))
        return {
            name: {str(ts): stats.series_value(name) for ts, stats in buckets} for name in SERIES[resource]
        }

    def geographic(self, start: dt.date, end: dt.date, phone: str) -> tuple[dict[str, int], dict[str, int]]:
        """``(US, NON_US)`` caller counts over ``[start, end]``; NON_US is empty for about half the inputs."""
        total = self.range_stats(phone, start, end).calls
        non_us_total = 0
        non_us_keys: tuple[str, ...] = ()
        if total and hash_unit(self.seed, "geo-non-us", phone, start.toordinal(), end.toordinal()) < 0.5:
            non_us_total = max(1, total * (2 + hash_int(self.seed, "geo-share", phone) % 7) // 100)
            non_us_keys = _NON_US[: 1 + hash_int(self.seed, "geo-n", phone, start.toordinal()) % 4]
        us = _allocate(total - non_us_total, US_REGIONS, lambda key: _weight(self.seed, phone, key))
        non_us = _allocate(non_us_total, non_us_keys, lambda key: _weight(self.seed, phone, "x" + key))
        return us, non_us

    def path(self, start: dt.date, end: dt.date, phone: str) -> dict[str, list[dict[str, str | int]]]:
        """Diagnostic flow: application start URL → nodes (1-3 applications)."""
        calls = self.range_stats(phone, start, end).calls
        apps = 1 + hash_int(self.seed, "apps", phone) % 3
        out: dict[str, list[dict[str, str | int]]] = {}
        for a, url in enumerate(_APPLICATIONS[:apps]):
            share = calls // (a + 1)
            count = 4 + hash_int(self.seed, "nodes", phone, a) % (len(_NODES) - 3)
            out[url] = [_node(self.seed, phone, a, n, share) for n in range(count)]
        return out


def _weight(seed: int, phone: str, key: str) -> float:
    if key == "US Toll-Free":
        return 0.05
    return hash_unit(seed, "geo-w", phone, key) ** 3 + 0.01


def _allocate(total: int, keys: Sequence[str], weight: Callable[[str], float]) -> dict[str, int]:
    """Split ``total`` over ``keys`` in proportion to ``weight(key)`` (largest remainder, deterministic)."""
    if not keys:
        return {}
    weights = [weight(k) for k in keys]
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    counts = [int(s) for s in shares]
    order = sorted(range(len(keys)), key=lambda i: (counts[i] - shares[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return dict(zip(keys, counts, strict=True))


def _node(seed: int, phone: str, app: int, n: int, calls: int) -> dict[str, str | int]:
    page, form, item = _NODES[(n + app * 5) % len(_NODES)]
    h = hash_int(seed, "node", phone, app, n)
    h, reach = divmod(h, 90)
    visits = calls * (10 + reach) // 100
    h, nm = divmod(h, 6)
    h, ni = divmod(h, 4)
    h, dc = divmod(h, 5)
    nomatch, noinput, disconnect = visits * nm // 100, visits * ni // 100, visits * dc // 100
    transfer = (visits - nomatch - noinput - disconnect) // 2 if "transfer" in item else 0
    filled = visits - nomatch - noinput - disconnect - transfer
    return {
        "page": page,
        "form": form,
        "item": item,
        "visits": visits,
        "filled": filled,
        "nomatch": nomatch,
        "noinput": noinput,
        "transfer": transfer,
        "disconnect": disconnect,
    }
