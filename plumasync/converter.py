"""The one converter: plain data (decoded JSON, or XML turned into the same shape) → typed models.

Part of the wire layer (:mod:`plumasync.wire` holds the parsers that use it).  The scalar coercions live
here once, shared by the converter's hooks and the parsers' hand-specialised hot paths: numbers sent as
strings, ``[]`` where a map is expected, epoch strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any
from xml.etree.ElementTree import Element

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .envelope import snippet
from .errors import PlumError, ResponseParseError
from .lines import parse_session_id, plain_session_id
from .models import (
    CallLogDetail,
    CallLogEntry,
    GeographicReport,
    Number,
    PathNode,
    PathReport,
    SessionId,
    TemporaryCredentials,
)

__all__ = [
    "as_list",
    "as_map",
    "check_format",
    "converter",
    "fields",
    "shape",
    "structure_entry",
    "to_int",
    "to_number",
    "to_str",
    "unescape",
]

_UTC = timezone.utc
_fromtimestamp = datetime.fromtimestamp


# --- scalar coercions (shared by the converter hooks and the hand-specialised hot paths) ---------------


def to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str:
        return int(value)
    if kind is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def to_number(value: Any) -> Number:
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            return int(value)
        except ValueError:
            return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def to_str(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:  # an empty XML element
        return ""
    if kind is int or kind is float:
        return str(value)
    raise TypeError(f"expected a string, got {value!r}")


def _to_utc(value: Any) -> datetime:
    return _fromtimestamp(to_int(value), _UTC)


#: The Unix seconds ``datetime.fromtimestamp(_, timezone.utc)`` accepts (years 1 to 9999).
_FIRST_EPOCH, _LAST_EPOCH = -62_135_596_800, 253_402_300_799


def _checked_epoch(seconds: int) -> int:
    """``seconds`` when a UTC datetime can be built from it later (the models build it lazily), else
    the very error building it now raises."""
    if not _FIRST_EPOCH <= seconds <= _LAST_EPOCH:
        _fromtimestamp(seconds, _UTC)  # raises ValueError/OverflowError, as an eager build would
    return seconds


def _to_session_id(value: Any) -> SessionId:
    sid = parse_session_id(to_str(value))
    if sid is None:
        raise ValueError(f"not a session id (server;channel;start): {value!r}")
    return sid


def as_map(value: Any) -> Mapping[Any, Any]:
    """A JSON object, or ``[]`` standing for an empty one."""
    if isinstance(value, dict):
        return value
    if value == [] or value is None:
        return {}
    raise TypeError(f"expected an object, got {value!r:.60}")


def as_list(value: Any) -> list[Any]:
    """A JSON array, or an object keyed by index (PHP's encoding of a sparse array)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    if value is None:
        return []
    raise TypeError(f"expected an array, got {value!r:.60}")


def _counts(value: Any, _: Any = None) -> Mapping[str, int]:
    return MappingProxyType({to_str(k): to_int(v) for k, v in as_map(value).items()})


def _applications(value: Any, _: Any = None) -> Mapping[str, tuple[PathNode, ...]]:
    node = converter.structure
    apps = as_map(value).items()
    return MappingProxyType(
        {to_str(url): tuple(node(n, PathNode) for n in as_list(ns)) for url, ns in apps}
    )


_entry = CallLogEntry.from_checked
_plain_session_id = plain_session_id


def structure_entry(d: Mapping[str, Any], _: Any = None) -> CallLogEntry:
    """One ``calls/logs`` record (decoded JSON, or XML made the same shape) → :class:`CallLogEntry`.

    The converter's hook for CallLogEntry; parsers call it directly on the hot path.
    """
    # Hand-specialised: this runs once per entry of pages up to 10,000 entries long.  Every value is
    # checked here, but the documented case (every value a string; epochs of at most 11 digits, which
    # no datetime refuses) builds nothing beyond int(log_id): the session id and the datetimes are
    # built on first read (see plumasync.models.lazy), and start_ts/end_ts read the text.
    log_id, sid, dest, kind, src, start, end = (
        d["log_id"], d["session_id"], d["dest"], d["type"], d["src"], d["start"], d["end"]
    )
    if not (type(dest) is str and type(kind) is str and type(src) is str):
        dest, kind, src = to_str(dest), to_str(kind), to_str(src)
    # conversions in the order of the former eager build, so a bad record fails with the same error
    if type(log_id) is str and type(start) is str and type(end) is str:
        log_id = int(log_id)
        plain = start.isdecimal() and end.isdecimal() and len(start) < 12 and len(end) < 12
    else:
        log_id, start, end, plain = to_int(log_id), to_int(start), to_int(end), False
    if type(sid) is not str or not _plain_session_id(sid):
        sid = _to_session_id(sid).raw
    if not plain:
        start, end = _checked_epoch(int(start)), _checked_epoch(int(end))
    return _entry(log_id, sid, dest, kind, src, start, end)


def _structure_detail(d: Mapping[str, Any], _: Any = None) -> CallLogDetail:
    return CallLogDetail.from_checked(
        to_str(d["dest"]), to_str(d["src"]), to_str(d["type"]), _checked_epoch(to_int(d["timestamp"])),
        to_str(d["location"]), to_str(d["log"]),
    )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(int, lambda v, _: to_int(v))
    conv.register_structure_hook(str, lambda v, _: to_str(v))
    conv.register_structure_hook(datetime, lambda v, _: _to_utc(v))
    conv.register_structure_hook(SessionId, lambda v, _: _to_session_id(v))
    conv.register_structure_hook_func(lambda t: t == Mapping[str, int], _counts)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, tuple[PathNode, ...]], _applications)
    conv.register_structure_hook(CallLogEntry, structure_entry)
    conv.register_structure_hook(CallLogDetail, _structure_detail)
    for cls in (PathNode, TemporaryCredentials, PathReport):
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
def shape(endpoint: str, body: bytes | str) -> Iterator[None]:
    """Turn any failure to fit the expected shape into ResponseParseError (PlumErrors pass through)."""
    try:
        yield
    except PlumError:
        raise
    except Exception as exc:
        raise ResponseParseError(
            f"unexpected shape: {type(exc).__name__}: {exc}", endpoint=endpoint, snippet=snippet(body)
        ) from exc


def fields(element: Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in element}


def check_format(fmt: str) -> None:
    if fmt not in ("json", "xml"):
        raise ValueError(f"fmt must be 'json' or 'xml', not {fmt!r}")


def unescape(line: str) -> str:
    return line.replace("\\/", "/")
