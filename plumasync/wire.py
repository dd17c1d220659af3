"""The wire layer: the one cattrs converter and the parsers for Plum's wire quirks.

Quirks handled here and nowhere else:

* numbers sent as strings (``"total_logs":"1234"``, every Call Logs field) and as JSON numbers;
* ``[]`` where a map is expected (PHP encodes an empty map as an empty array);
* the documented failure body with a trailing comma (``{"status":"failure","error":"...",}``);
* series keyed by Unix-epoch strings, bucketed at midnight in the account's time zone;
* XML bodies (the C ElementTree behind a DTD-refusing pre-scan, :mod:`plumasync.safexml`), whose log
  lines keep PHP's escaped slash ``\\/``.

XML is first turned into the same plain data the JSON gives, so both formats go through one converter.
Body decoding and the Call Logs envelope live in :mod:`plumasync.envelope`; they are re-exported here.
Every ``parse_*`` function takes the raw body and raises only :class:`~plumasync.errors.ResponseParseError`
(shape) or :class:`~plumasync.errors.FailureStatusError` (Call Logs envelope said ``failure``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from .converter import (
    as_list,
    as_map,
    check_format,
    converter,
    fields,
    shape,
    structure_entry,
    to_int,
    to_number,
    to_str,
    unescape,
)
from .envelope import (
    Format,
    error_text,
    loads_json,
    loads_xml,
    parse_xml_envelope,
    unwrap_envelope,
)
from .errors import ResponseParseError
from .lines import parse_error_line, parse_session_line
from .models import (
    CallLogDetail,
    CallLogPage,
    ErrorPage,
    GeographicReport,
    Number,
    PathReport,
    Series,
    SessionPage,
    TemporaryCredentials,
    TrendReport,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "Format",
    "converter",
    "default_timezone",
    "error_text",
    "loads_json",
    "parse_credentials",
    "parse_error_page",
    "parse_geographic",
    "parse_log_detail",
    "parse_log_page",
    "parse_path",
    "parse_session_page",
    "parse_trend",
    "parse_xml_envelope",
    "unwrap_envelope",
]

DEFAULT_TIMEZONE = "America/New_York"
"""VoiceTrends buckets start at midnight US Eastern unless the account says otherwise."""

_R = TypeVar("_R", bound=TrendReport)
_P = TypeVar("_P")


@lru_cache(maxsize=1)
def default_timezone() -> tzinfo:
    """``ZoneInfo("America/New_York")``, loaded on first use."""
    return ZoneInfo(DEFAULT_TIMEZONE)


# --- VoiceTrends --------------------------------------------------------------------------------------


def _series(pairs: Iterable[tuple[Any, Any]], tz: tzinfo) -> Series:
    points: list[tuple[int, Number]] = []
    for key, value in pairs:
        if value is None or value == "":  # no value for this bucket
            continue
        points.append((to_int(key), to_number(value)))
    points.sort()
    stamp = datetime.fromtimestamp
    return Series(MappingProxyType({stamp(ts, tz): v for ts, v in points}))


def _xml_series(element: Element) -> dict[str, str | None]:
    return {item.attrib["timestamp"]: item.text for item in element}


def parse_trend(
    body: bytes | str, fmt: Format, cls: type[_R], tz: tzinfo | None = None, *, endpoint: str = ""
) -> _R:
    """A volume/events/performance/profile body → ``cls`` (e.g. :class:`VolumeReport`).

    Every series the server sent is kept.  Keys become aware datetimes in ``tz`` (default
    America/New_York); values are ``int`` when integral in JSON (or an integer string), else ``float``;
    a ``null`` value leaves its bucket out.  Scalar members (such as an empty ``error``) are ignored.
    ``endpoint`` names the resource in a ResponseParseError (default: the class name).

    XML: ``<volume><calls><item timestamp="1517461200">0</item>...</calls>...</volume>`` (any root).
    """
    check_format(fmt)
    zone = tz or default_timezone()
    endpoint = endpoint or cls.__name__
    with shape(endpoint, body):
        found: dict[str, Series] = {}
        if fmt == "json":
            for name, value in as_map(loads_json(body, endpoint=endpoint)).items():
                if isinstance(value, (dict, list)):
                    found[to_str(name)] = _series(as_map(value).items(), zone)
        else:
            root = loads_xml(body, endpoint)
            if root.tag == "error":
                raise ResponseParseError(f"error body: {root.text or ''}", endpoint=endpoint)
            for child in root:
                if child.tag != "error" and (len(child) or not (child.text or "").strip()):
                    found[child.tag] = _series(_xml_series(child).items(), zone)
        return cls(MappingProxyType(found))


def parse_geographic(body: bytes | str, fmt: Format) -> GeographicReport:
    """A geographic body → :class:`GeographicReport` (``NON_US`` may be ``[]`` or a map).

    XML: ``<geographic><US><region name="AL">0</region>...</US><NON_US/></geographic>``.
    """
    check_format(fmt)
    with shape("geographic", body):
        if fmt == "json":
            data = loads_json(body, endpoint="geographic")
        else:
            root = loads_xml(body, "geographic")
            data = {
                group.tag: {region.attrib["name"]: region.text for region in group}
                for group in root
                if group.tag in ("US", "NON_US")
            }
        return converter.structure(as_map(data), GeographicReport)


def parse_path(body: bytes | str, fmt: Format) -> PathReport:
    """A diagnostic-flow body → :class:`PathReport`.

    XML: ``<path><applications><application url="..."><node><page>..</page>...</node>...``.
    """
    check_format(fmt)
    with shape("path", body):
        if fmt == "json":
            data = loads_json(body, endpoint="path")
        else:
            apps = loads_xml(body, "path").find("applications")
            found = apps if apps is not None else ()
            data = {"applications": {app.attrib["url"]: [fields(node) for node in app] for app in found}}
        return converter.structure(as_map(data), PathReport)


def parse_credentials(body: bytes | str, fmt: Format) -> TemporaryCredentials:
    """An ``/api/auth`` body → :class:`TemporaryCredentials`.

    XML: any root with ``<login>`` and ``<password>`` children.
    """
    check_format(fmt)
    with shape("auth", body):
        data = loads_json(body, endpoint="auth") if fmt == "json" else fields(loads_xml(body, "auth"))
        return converter.structure(data, TemporaryCredentials)


# --- Call Logs ----------------------------------------------------------------------------------------


def _xml_value(element: Element) -> Any:
    """A ``<result>`` member as JSON-shaped data: a leaf's text, or a list of items (records as dicts,
    log lines as text with PHP's ``\\/`` undone)."""
    if len(element) == 0:
        return element.text
    return [fields(item) if len(item) else unescape(item.text or "") for item in element]


def _result(
    body: bytes | str, fmt: Format, endpoint: str, method: str, url: str, status: int
) -> Mapping[str, Any]:
    """The envelope's ``result`` as plain data, whichever the format."""
    if fmt == "json":
        data = loads_json(body, endpoint=endpoint)
        return as_map(
            unwrap_envelope(data, method=method, url=url, status=status, endpoint=endpoint, body=body)
        )
    root = parse_xml_envelope(body, method=method, url=url, status=status, endpoint=endpoint)
    return {child.tag: _xml_value(child) for child in root}


def _total(result: Mapping[str, Any], name: str, count: int) -> int:
    total = result.get(name)
    return count if total is None or total == "" else to_int(total)


def _lines(result: Mapping[str, Any], name: str) -> list[str]:
    lines = as_list(result.get(name))
    if not all(isinstance(line, str) for line in lines):
        raise TypeError(f"expected log line strings in {name!r}")
    return lines


def parse_log_page(
    body: bytes | str,
    fmt: Format,
    offset: int = 0,
    limit: int = 1000,
    *,
    method: str = "GET",
    url: str = "",
    status: int = 200,
) -> CallLogPage:
    """A ``calls/logs`` body → :class:`CallLogPage` (``offset``/``limit``: what the page was asked for).

    ``method``/``url``/``status`` go into a :class:`FailureStatusError` if the envelope says failure.
    """
    check_format(fmt)
    with shape("calls/logs", body):
        result = _result(body, fmt, "calls/logs", method, url, status)
        # the converter's own hook, without its per-item dispatch: this runs 10,000 times a page
        entries = tuple(map(structure_entry, as_list(result.get("logs"))))
        return CallLogPage(_total(result, "total_logs", len(entries)), entries, offset, limit)


def parse_log_detail(
    body: bytes | str, fmt: Format, *, method: str = "GET", url: str = "", status: int = 200
) -> CallLogDetail:
    """A ``calls/log/{log_id}`` body → :class:`CallLogDetail` (``log`` as sent; XML's ``\\/`` undone)."""
    check_format(fmt)
    with shape("calls/log", body):
        data = dict(_result(body, fmt, "calls/log", method, url, status))
        if fmt == "xml":
            data["log"] = unescape(data.get("log") or "")
        return converter.structure(data, CallLogDetail)


def _parse_line_page(body: bytes | str, fmt: Format, offset: int, limit: int, service: str,
                     parse_line: Callable[[str], Any], page: Callable[..., _P], method: str, url: str,
                     status: int) -> _P:
    """calls/sessions and calls/errors pages: they differ only in names and line parser."""
    check_format(fmt)
    with shape(f"calls/{service}", body):
        result = _result(body, fmt, f"calls/{service}", method, url, status)
        lines = tuple(parse_line(line) for line in _lines(result, service))
        return page(_total(result, f"total_{service}", len(lines)), lines, offset, limit)


def parse_session_page(
    body: bytes | str,
    fmt: Format,
    offset: int = 0,
    limit: int = 1000,
    *,
    method: str = "GET",
    url: str = "",
    status: int = 200,
) -> SessionPage:
    """A ``calls/sessions`` body → :class:`SessionPage`; each line parsed by
    :func:`~plumasync.lines.parse_session_line` (unknown shapes become UnknownLine, never an error)."""
    return _parse_line_page(body, fmt, offset, limit, "sessions", parse_session_line, SessionPage, method, url,
                            status)


def parse_error_page(
    body: bytes | str,
    fmt: Format,
    offset: int = 0,
    limit: int = 1000,
    *,
    method: str = "GET",
    url: str = "",
    status: int = 200,
) -> ErrorPage:
    """A ``calls/errors`` body → :class:`ErrorPage`; each line parsed by
    :func:`~plumasync.lines.parse_error_line`."""
    return _parse_line_page(body, fmt, offset, limit, "errors", parse_error_line, ErrorPage, method, url, status)
