"""Typed results of the VoiceTrends API (no wire details: see :mod:`plumasync.wire`).

Every report is a frozen value.  Mappings inside reports are read-only views
(:class:`types.MappingProxyType`), so a report can be shared between tasks safely.
"""

from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

__all__ = [
    "EMPTY_SERIES",
    "EventsReport",
    "GeographicReport",
    "Number",
    "PathNode",
    "PathReport",
    "PerformanceReport",
    "ProfileReport",
    "Series",
    "TemporaryCredentials",
    "TrendReport",
    "VolumeReport",
]

_K = TypeVar("_K")
_V = TypeVar("_V")

Number = int | float
"""A series value: ``int`` for counts, ``float`` for averages, rates and minutes."""


def _read_only(data: Mapping[_K, _V]) -> Mapping[_K, _V]:
    # Frozen models hold read-only views; a view built by the wire layer is kept as is (no copy).
    return data if type(data) is MappingProxyType else MappingProxyType(dict(data))


# attrs converters must be concrete for mypy's attrs plugin, hence these one-line wrappers.
def _frozen_numbers(data: Mapping[datetime, Number]) -> Mapping[datetime, Number]:
    return _read_only(data)


def _frozen_series(data: Mapping[str, "Series"]) -> Mapping[str, "Series"]:
    return _read_only(data)


def _frozen_counts(data: Mapping[str, int]) -> Mapping[str, int]:
    return _read_only(data)


def _frozen_apps(data: Mapping[str, tuple["PathNode", ...]]) -> Mapping[str, tuple["PathNode", ...]]:
    return _read_only(data)


@attrs.frozen
class TemporaryCredentials:
    """The temporary VoiceTrends Basic-auth pair returned by ``POST /api/auth``.

    They expire 24 hours after their last use.  ``repr()`` never shows the password.
    """

    login: str
    password: str = attrs.field(repr=False)


@attrs.frozen(eq=False, repr=False)
class Series(Mapping[datetime, Number]):
    """One time series: period start (timezone-aware, in the account's time zone) → value.

    A read-only mapping in time order.  Index it with any aware datetime naming the same instant
    (``series[datetime(2018, 2, 7, 5, tzinfo=timezone.utc)]`` finds the 2018-02-07 00:00-05:00 bucket);
    iterate it, use ``.items()``, ``.keys()``, ``.values()``; compare it with any mapping.
    A bucket for which the server sent no value (``null``) is absent.
    """

    _data: Mapping[datetime, Number] = attrs.field(factory=dict, converter=_frozen_numbers)

    def __getitem__(self, key: datetime) -> Number:
        return self._data[key]

    def __iter__(self) -> Iterator[datetime]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k.isoformat()}: {v!r}" for k, v in self._data.items())
        return f"Series({{{inner}}})"

    def total(self) -> Number:
        """Sum of all values (0 for an empty series)."""
        return sum(self._data.values())

    def to_dict(self) -> dict[str, Number]:
        """JSON-friendly copy: ISO-8601 timestamp (with offset) → value."""
        return {k.isoformat(): v for k, v in self._data.items()}


EMPTY_SERIES = Series()
"""The series returned for a name the server did not send."""


@attrs.frozen
class TrendReport:
    """A VoiceTrends time-series report.

    ``series`` keeps **every** series the server sent, by its wire name (the documented field lists are
    incomplete); the subclasses add typed properties for the documented ones.  A property or
    :meth:`get` for a series the server did not send returns an empty :class:`Series`.
    """

    series: Mapping[str, Series] = attrs.field(factory=dict, converter=_frozen_series)
    #: True when this is the last cached result, served because a fresh one could not be had in time.
    stale: bool = attrs.field(default=False, kw_only=True, eq=False)
    #: When the result was fetched from Plum (aware UTC datetime of the client's clock; None: unknown).
    fetched_at: datetime | None = attrs.field(default=None, kw_only=True, eq=False)

    def get(self, name: str) -> Series:
        """The series called ``name`` (its wire name), or an empty series."""
        return self.series.get(name, EMPTY_SERIES)

    def timestamps(self) -> tuple[datetime, ...]:
        """Every period start found in any series, in time order."""
        return tuple(sorted({ts for s in self.series.values() for ts in s}))

    def to_dict(self) -> dict[str, dict[str, Number]]:
        """JSON-friendly copy: series name → {ISO timestamp: value}."""
        return {name: s.to_dict() for name, s in self.series.items()}


@attrs.frozen
class VolumeReport(TrendReport):
    """Call Volume (``GET /api/volume/...``)."""

    @property
    def calls(self) -> Series:
        """Calls (inbound plus outbound) per period."""
        return self.get("calls")

    @property
    def call_minutes(self) -> Series:
        """Call minutes per period."""
        return self.get("call_minutes")

    @property
    def transfers(self) -> Series:
        """Transfers out of the application per period."""
        return self.get("transfers")

    @property
    def transfer_minutes(self) -> Series:
        """Transfer minutes per period."""
        return self.get("transfer_minutes")

    @property
    def transfer_rate(self) -> Series:
        """Transfer rate percentage per period."""
        return self.get("transfer_rate")

    @property
    def average_call_length(self) -> Series:
        """Average call length in seconds per period."""
        return self.get("average_call_length")


@attrs.frozen
class EventsReport(TrendReport):
    """Event Tracker (``GET /api/events/...``)."""

    @property
    def calls(self) -> Series:
        """Calls per period."""
        return self.get("calls")

    @property
    def log_events(self) -> Series:
        """``<log>`` tag executions per period."""
        return self.get("log_events")

    @property
    def loops_per_call(self) -> Series:
        """Average loops (re-entered form items) per call."""
        return self.get("loops_per_call")

    @property
    def form_items(self) -> Series:
        """Form items met per period."""
        return self.get("form_items")

    @property
    def loop_count(self) -> Series:
        """Loops per period."""
        return self.get("loop_count")

    @property
    def average_form_items(self) -> Series:
        """Average form items per call."""
        return self.get("average_form_items")


@attrs.frozen
class PerformanceReport(TrendReport):
    """Performance (``GET /api/performance/...``)."""

    @property
    def calls(self) -> Series:
        """Calls per period."""
        return self.get("calls")

    @property
    def js_errors(self) -> Series:
        """JavaScript errors per period."""
        return self.get("js_errors")

    @property
    def js_errors_per_call(self) -> Series:
        """Average JavaScript errors per call."""
        return self.get("js_errors_per_call")

    @property
    def fetch_errors(self) -> Series:
        """Fetch errors per period."""
        return self.get("fetch_errors")

    @property
    def fetch_errors_per_call(self) -> Series:
        """Average fetch errors per call."""
        return self.get("fetch_errors_per_call")

    @property
    def average_page_load(self) -> Series:
        """Average page load time in seconds."""
        return self.get("average_page_load")


@attrs.frozen
class ProfileReport(TrendReport):
    """Caller Profile (``GET /api/profile/{start}/{end}/{period}/{phone}``)."""

    @property
    def calls(self) -> Series:
        """Calls per period."""
        return self.get("calls")

    @property
    def callers(self) -> Series:
        """Unique callers (distinct inbound or outbound numbers) per period."""
        return self.get("callers")


@attrs.frozen
class GeographicReport:
    """Caller Profile geographic data: call counts by US region and by non-US region."""

    us: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    non_us: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)
    #: True when this is the last cached result, served because a fresh one could not be had in time.
    stale: bool = attrs.field(default=False, kw_only=True, eq=False)
    #: When the result was fetched from Plum (aware UTC datetime of the client's clock; None: unknown).
    fetched_at: datetime | None = attrs.field(default=None, kw_only=True, eq=False)

    @property
    def total(self) -> int:
        """All calls, US and non-US."""
        return sum(self.us.values()) + sum(self.non_us.values())

    def to_dict(self) -> dict[str, dict[str, int]]:
        """JSON-friendly copy: ``{"us": {...}, "non_us": {...}}``."""
        return {"us": dict(self.us), "non_us": dict(self.non_us)}


@attrs.frozen
class PathNode:
    """One form item of the Diagnostic Flow and how its visits ended."""

    page: str
    form: str
    item: str
    visits: int
    filled: int
    nomatch: int
    noinput: int
    transfer: int
    disconnect: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return attrs.asdict(self)


@attrs.frozen
class PathReport:
    """Diagnostic Flow (``GET /api/path/...``): application start URL → its nodes, in server order."""

    applications: Mapping[str, tuple[PathNode, ...]] = attrs.field(factory=dict, converter=_frozen_apps)
    #: True when this is the last cached result, served because a fresh one could not be had in time.
    stale: bool = attrs.field(default=False, kw_only=True, eq=False)
    #: When the result was fetched from Plum (aware UTC datetime of the client's clock; None: unknown).
    fetched_at: datetime | None = attrs.field(default=None, kw_only=True, eq=False)

    def nodes(self) -> Iterator[tuple[str, PathNode]]:
        """Every ``(application_url, node)`` pair."""
        for url, nodes in self.applications.items():
            for node in nodes:
                yield url, node

    def for_application(self, url: str) -> tuple[PathNode, ...]:
        """The nodes of one application (empty if the server sent none for ``url``)."""
        return self.applications.get(url, ())

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-friendly copy: application URL → list of node dicts."""
        return {url: [n.to_dict() for n in nodes] for url, nodes in self.applications.items()}
