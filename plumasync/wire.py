"""The wire layer: the one cattrs converter and the parsers for Plum's wire quirks.

Quirks handled here and nowhere else:

* numbers sent as strings (``"total_logs":"1234"``, every Call Logs field) and as JSON numbers;
* ``[]`` where a map is expected (PHP encodes an empty map as an empty array);
* the documented failure body with a trailing comma (``{"status":"failure","error":"...",}``);
* series keyed by Unix-epoch strings, bucketed at midnight in the account's time zone;
* XML bodies (parsed with ``defusedxml`` only), whose log lines keep PHP's escaped slash ``\\/``.

XML is first turned into the same plain data the JSON gives, so both formats go through one converter.
Body decoding and the Call Logs envelope live in :mod:`plumasync.envelope`; they are re-exported here.
Every ``parse_*`` function takes the raw body and raises only :class:`~plumasync.errors.ResponseParseError`
(shape) or :class:`~plumasync.errors.FailureStatusError` (Call Logs envelope said ``failure``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .envelope import (
    Format,
    calllogs_error_text,
    loads_json,
    loads_xml,
    parse_xml_envelope,
    snippet,
    unwrap_envelope,
    vt_error_text,
)
from .errors import PlumError, ResponseParseError
from .lines import parse_error_line, parse_session_id, parse_session_line
from .models import (
    CallLogDetail,
    CallLogEntry,
    CallLogPage,
    ErrorPage,
    GeographicReport,
    Number,
    PathNode,
    PathReport,
    Series,
    SessionId,
    SessionPage,
    TemporaryCredentials,
    TrendReport,
)

__all__ = [
    "DEFAULT_TIMEZONE",
    "Format",
    "calllogs_error_text",
    "converter",
    "default_timezone",
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
    "vt_error_text",
]

DEFAULT_TIMEZONE = "America/New_York"
"""VoiceTrends buckets start at midnight US Eastern unless the account says otherwise."""

_R = TypeVar("_R", bound=TrendReport)
_P = TypeVar("_P")
_UTC = timezone.utc
_fromtimestamp = datetime.fromtimestamp


@lru_cache(maxsize=1)
def default_timezone() -> tzinfo:
    """``ZoneInfo("America/New_York")``, loaded on first use."""
    return ZoneInfo(DEFAULT_TIMEZONE)


# --- scalar coercions (shared by the converter hooks and the hand-specialised hot paths) ---------------


def _to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str:
        return int(value)
    if kind is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _to_number(value: Any) -> Number:
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            return int(value)
        except ValueError:
            return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def _to_str(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:  # an empty XML element
        return ""
    if kind is int or kind is float:
        return str(value)
    raise TypeError(f"expected a string, got {value!r}")


def _to_utc(value: Any) -> datetime:
    return _fromtimestamp(_to_int(value), _UTC)


def _to_session_id(value: Any) -> SessionId:
    sid = parse_session_id(_to_str(value))
    if sid is None:
        raise ValueError(f"not a session id (server;channel;start): {value!r}")
    return sid


def _as_map(value: Any) -> Mapping[Any, Any]:
    """A JSON object, or ``[]`` standing for an empty one."""
    if isinstance(value, dict):
        return value
    if value == [] or value is None:
        return {}
    raise TypeError(f"expected an object, got {value!r:.60}")


def _as_list(value: Any) -> list[Any]:
    """A JSON array, or an object keyed by index (PHP's encoding of a sparse array)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    if value is None:
        return []
    raise TypeError(f"expected an array, got {value!r:.60}")


def _counts(value: Any, _: Any = None) -> Mapping[str, int]:
    return MappingProxyType({_to_str(k): _to_int(v) for k, v in _as_map(value).items()})


def _applications(value: Any, _: Any = None) -> Mapping[str, tuple[PathNode, ...]]:
    node = converter.structure
    apps = _as_map(value).items()
    return MappingProxyType(
        {_to_str(url): tuple(node(n, PathNode) for n in _as_list(ns)) for url, ns in apps}
    )


def _structure_entry(d: Mapping[str, Any], _: Any = None) -> CallLogEntry:
    # Hand-specialised: this runs once per entry of pages up to 10,000 entries long, so the documented
    # case (every value a string) costs no per-field call beyond int(); other types take the slow path.
    dest, kind, src = d["dest"], d["type"], d["src"]
    if not (type(dest) is str and type(kind) is str and type(src) is str):
        dest, kind, src = _to_str(dest), _to_str(kind), _to_str(src)
    log_id, start, end = d["log_id"], d["start"], d["end"]
    if not (type(log_id) is str and type(start) is str and type(end) is str):
        log_id, start, end = _to_int(log_id), _to_int(start), _to_int(end)
    return CallLogEntry(
        int(log_id),
        _to_session_id(d["session_id"]),
        dest,
        kind,
        src,
        _fromtimestamp(int(start), _UTC),
        _fromtimestamp(int(end), _UTC),
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(int, lambda v, _: _to_int(v))
    conv.register_structure_hook(str, lambda v, _: _to_str(v))
    conv.register_structure_hook(datetime, lambda v, _: _to_utc(v))
    conv.register_structure_hook(SessionId, lambda v, _: _to_session_id(v))
    conv.register_structure_hook_func(lambda t: t == Mapping[str, int], _counts)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, tuple[PathNode, ...]], _applications)
    conv.register_structure_hook(CallLogEntry, _structure_entry)
    for cls in (PathNode, TemporaryCredentials, CallLogDetail, PathReport):
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv))
    conv.register_structure_hook(
        GeographicReport,
        make_dict_structure_fn(
            GeographicReport, conv, us=override(rename="US"), non_us=override(rename="NON_US")
        ),
    )
    return conv


converter = _make_converter()
"""The one converter: plain data (decoded JSON, or XML turned into the same shape) → models.

Wire names (``US``/``NON_US``), string numbers, ``[]`` for ``{}`` and epoch strings live in its hooks.
"""


@contextmanager
def _shape(endpoint: str, body: bytes | str) -> Iterator[None]:
    """Turn any failure to fit the expected shape into ResponseParseError (PlumErrors pass through)."""
    try:
        yield
    except PlumError:
        raise
    except Exception as exc:
        raise ResponseParseError(
            f"unexpected shape: {type(exc).__name__}: {exc}", endpoint=endpoint, snippet=snippet(body)
        ) from exc


def _fields(element: Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in element}


def _check_format(fmt: str) -> None:
    if fmt not in ("json", "xml"):
        raise ValueError(f"fmt must be 'json' or 'xml', not {fmt!r}")


def _unescape(line: str) -> str:
    return line.replace("\\/", "/")


# --- VoiceTrends --------------------------------------------------------------------------------------


def _series(pairs: Iterable[tuple[Any, Any]], tz: tzinfo) -> Series:
    points: list[tuple[int, Number]] = []
    for key, value in pairs:
        if value is None or value == "":  # no value for this bucket
            continue
        points.append((_to_int(key), _to_number(value)))
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
    _check_format(fmt)
    zone = tz or default_timezone()
    endpoint = endpoint or cls.__name__
    with _shape(endpoint, body):
        found: dict[str, Series] = {}
        if fmt == "json":
            for name, value in _as_map(loads_json(body, endpoint=endpoint)).items():
                if isinstance(value, (dict, list)):
                    found[_to_str(name)] = _series(_as_map(value).items(), zone)
        else:
            root = loads_xml(body, endpoint)
            if root.tag == "error":
                raise ResponseParseError(f"error body: {root.text or ''}", endpoint=endpoint)
            for child in root:
                if child.tag != "error" and (len(child) or not (child.text or "").strip()):
                    found[child.tag] = _series(_xml_series(child).items(), zone)
        return cls(MappingProxyType(found))


def parse_geographic(body: bytes | str, fmt: Format, tz: tzinfo | None = None) -> GeographicReport:
    """A geographic body → :class:`GeographicReport` (``NON_US`` may be ``[]`` or a map).

    XML: ``<geographic><US><region name="AL">0</region>...</US><NON_US/></geographic>``.
    ``tz`` is accepted for a uniform signature and unused.
    """
    _check_format(fmt)
    with _shape("geographic", body):
        if fmt == "json":
            data = loads_json(body, endpoint="geographic")
        else:
            root = loads_xml(body, "geographic")
            data = {
                group.tag: {region.attrib["name"]: region.text for region in group}
                for group in root
                if group.tag in ("US", "NON_US")
            }
        return converter.structure(_as_map(data), GeographicReport)


def parse_path(body: bytes | str, fmt: Format, tz: tzinfo | None = None) -> PathReport:
    """A diagnostic-flow body → :class:`PathReport` (``tz`` accepted for a uniform signature, unused).

    XML: ``<path><applications><application url="..."><node><page>..</page>...</node>...``.
    """
    _check_format(fmt)
    with _shape("path", body):
        if fmt == "json":
            data = loads_json(body, endpoint="path")
        else:
            apps = loads_xml(body, "path").find("applications")
            found = apps if apps is not None else ()
            data = {"applications": {app.attrib["url"]: [_fields(node) for node in app] for app in found}}
        return converter.structure(_as_map(data), PathReport)


def parse_credentials(body: bytes | str, fmt: Format, tz: tzinfo | None = None) -> TemporaryCredentials:
    """An ``/api/auth`` body → :class:`TemporaryCredentials` (``tz`` unused).

    XML: any root with ``<login>`` and ``<password>`` children.
    """
    _check_format(fmt)
    with _shape("auth", body):
        data = loads_json(body, endpoint="auth") if fmt == "json" else _fields(loads_xml(body, "auth"))
        return converter.structure(data, TemporaryCredentials)


# --- Call Logs ----------------------------------------------------------------------------------------


def _xml_value(element: Element) -> Any:
    """A ``<result>`` member as JSON-shaped data: a leaf's text, or a list of items (records as dicts,
    log lines as text with PHP's ``\\/`` undone)."""
    if len(element) == 0:
        return element.text
    return [_fields(item) if len(item) else _unescape(item.text or "") for item in element]


def _result(
    body: bytes | str, fmt: Format, endpoint: str, method: str, url: str, status: int
) -> Mapping[str, Any]:
    """The envelope's ``result`` as plain data, whichever the format."""
    if fmt == "json":
        data = loads_json(body, endpoint=endpoint)
        return _as_map(
            unwrap_envelope(data, method=method, url=url, status=status, endpoint=endpoint, body=body)
        )
    root = parse_xml_envelope(body, method=method, url=url, status=status, endpoint=endpoint)
    return {child.tag: _xml_value(child) for child in root}


def _total(result: Mapping[str, Any], name: str, count: int) -> int:
    total = result.get(name)
    return count if total is None or total == "" else _to_int(total)


def _lines(result: Mapping[str, Any], name: str) -> list[str]:
    lines = _as_list(result.get(name))
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
    _check_format(fmt)
    with _shape("calls/logs", body):
        result = _result(body, fmt, "calls/logs", method, url, status)
        entries = converter.structure(_as_list(result.get("logs")), tuple[CallLogEntry, ...])
        return CallLogPage(_total(result, "total_logs", len(entries)), entries, offset, limit)


def parse_log_detail(
    body: bytes | str, fmt: Format, *, method: str = "GET", url: str = "", status: int = 200
) -> CallLogDetail:
    """A ``calls/log/{log_id}`` body → :class:`CallLogDetail` (``log`` as sent; XML's ``\\/`` undone)."""
    _check_format(fmt)
    with _shape("calls/log", body):
        data = dict(_result(body, fmt, "calls/log", method, url, status))
        if fmt == "xml":
            data["log"] = _unescape(data.get("log") or "")
        return converter.structure(data, CallLogDetail)


def _parse_line_page(body: bytes | str, fmt: Format, offset: int, limit: int, service: str,
                     parse_line: Callable[[str], Any], page: Callable[..., _P], method: str, url: str,
                     status: int) -> _P:
    """calls/sessions and calls/errors pages: they differ only in names and line parser."""
    _check_format(fmt)
    with _shape(f"calls/{service}", body):
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
