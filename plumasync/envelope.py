"""Raw bodies and envelopes: JSON/XML decoding with Plum's quirks, the Call Logs envelope, error texts.

Part of the wire layer (re-exported by :mod:`plumasync.wire`).  XML is parsed by the C ElementTree
behind a pre-scan that refuses every DTD (:mod:`plumasync.safexml`): defusedxml's safety at C speed.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from xml.etree.ElementTree import Element

from .errors import FailureStatusError, ResponseParseError
from .safexml import parse_xml

__all__ = [
    "Format",
    "error_text",
    "loads_json",
    "loads_xml",
    "looks_truncated",
    "parse_xml_envelope",
    "unwrap_envelope",
]

Format = Literal["json", "xml"]
"""The representation asked for with ``Accept``."""

_MAX_FIXES = 64


def snippet(body: bytes | str) -> str:
    """The first 200 characters of a body, for :class:`ResponseParseError`."""
    head = body[:200]
    return head.decode("utf-8", "replace") if isinstance(head, bytes) else head


def looks_truncated(body: bytes, accept: str) -> bool:
    """True when a success body cannot be a whole JSON or XML document: it stops mid-document.

    Used only for close-delimited bodies (no ``Content-Length``), where a dropped connection and the
    end of the body look alike.  A whole document ends with ``}``/``]`` (JSON) or ``>`` (XML).
    """
    tail = body.rstrip(b" \t\r\n")
    if "xml" in accept:
        return not tail.endswith(b">")
    if "json" in accept:
        return not tail.endswith((b"}", b"]"))
    return False


def _repair(doc: str, pos: int) -> str | None:
    """``doc`` without the quirk the JSON decoder stopped at ``pos``, or None if it is no known quirk.

    Working only where the decoder stopped means string content is never touched.
    """
    if doc.startswith("/*", pos):  # a block comment
        end = doc.find("*/", pos + 2)
        return None if end < 0 else doc[:pos] + doc[end + 2 :]
    if doc.startswith("//", pos):  # a line comment, e.g. the placeholder {// SAMPLE RESULT DATA}
        ends = [i for i in (doc.find(c, pos) for c in "\n}]") if i >= 0]
        return doc[:pos] + doc[min(ends, default=len(doc)) :]
    if pos < len(doc) and doc[pos] in "}]":  # a trailing comma: {"error":"...",}
        comma = len(doc[:pos].rstrip(" \t\r\n")) - 1
        if comma >= 0 and doc[comma] == ",":
            return doc[:comma] + doc[comma + 1 :]
    return None


def loads_json(body: bytes | str, *, endpoint: str) -> Any:
    """``json.loads`` that also accepts the quirks of Plum's documented bodies.

    Tolerated: a trailing comma before ``}``/``]`` (the documented failure body
    ``{"status":"failure","error":"...",}``) and ``//`` or ``/* */`` comments (the documented
    placeholder ``{"result": {// SAMPLE RESULT DATA}}``; a ``//`` comment ends at the line's end or at
    the next closing bracket).  Anything else raises :class:`ResponseParseError`.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        err = exc
    except (ValueError, RecursionError) as exc:  # bad UTF-8, absurdly deep or long numbers
        raise ResponseParseError(f"invalid JSON: {exc}", endpoint=endpoint, snippet=snippet(body)) from exc
    doc = err.doc
    for _ in range(_MAX_FIXES):
        fixed = _repair(doc, err.pos)
        if fixed is None:
            break
        doc = fixed
        try:
            return json.loads(doc)
        except json.JSONDecodeError as exc:
            err = exc
        except (ValueError, RecursionError):
            break
    raise ResponseParseError(
        f"invalid JSON: {err.msg} at offset {err.pos}", endpoint=endpoint, snippet=snippet(body)
    ) from err


def loads_xml(body: bytes | str, endpoint: str) -> Element:
    """The root element of an XML body; malformed XML, or any DTD (entity declarations, external
    references: see :mod:`plumasync.safexml`), raises :class:`ResponseParseError`."""
    try:
        root = parse_xml(body)
    except Exception as exc:  # ParseError, defusedxml's forbidden-construct errors, bad encodings
        raise ResponseParseError(f"invalid XML: {exc}", endpoint=endpoint, snippet=snippet(body)) from exc
    return root


def unwrap_envelope(
    data: Any,
    *,
    method: str = "GET",
    url: str = "",
    status: int = 200,
    endpoint: str = "",
    body: bytes | str | None = None,
) -> Any:
    """The ``result`` of a decoded Call Logs JSON envelope (``{}`` when it is absent or ``[]``).

    ``"status":"failure"`` raises :class:`FailureStatusError` carrying ``method``, ``url``, the HTTP
    ``status`` passed in and the envelope's ``error`` text; any other shape raises ResponseParseError
    (whose snippet is taken from ``body`` when given).
    """
    where = endpoint or url
    shown = snippet(body) if body is not None else repr(data)
    if not isinstance(data, dict):
        raise ResponseParseError("expected an envelope object", endpoint=where, snippet=shown)
    state = data.get("status")
    if isinstance(state, str) and state.lower() == "failure":
        error = data.get("error")
        text = error if isinstance(error, str) else "" if error is None else str(error)
        raise FailureStatusError(method=method, url=url, status=status, error=text)
    if not (isinstance(state, str) and state.lower() == "success"):
        raise ResponseParseError(f"envelope status {state!r}", endpoint=where, snippet=shown)
    result = data.get("result")
    return {} if result is None or result == [] else result


def parse_xml_envelope(
    body: bytes | str, *, method: str = "GET", url: str = "", status: int = 200, endpoint: str = ""
) -> Element:
    """The ``<result>`` element of a Call Logs XML envelope (an empty one when absent).

    Any root name is accepted (Plum's samples use ``logs``, ``log``, ``sessions``, ``errors``, ``sample``
    and ``ROOT``).  ``<status>failure</status>`` raises :class:`FailureStatusError`; malformed XML or a
    missing status raises ResponseParseError.
    """
    where = endpoint or url
    root = loads_xml(body, where)
    state = (root.findtext("status") or "").strip().lower()
    if state == "failure":
        raise FailureStatusError(
            method=method, url=url, status=status, error=(root.findtext("error") or "").strip()
        )
    if state != "success":
        raise ResponseParseError(f"envelope status {state!r}", endpoint=where, snippet=snippet(body))
    result = root.find("result")
    return result if result is not None else Element("result")


def error_text(body: bytes | str) -> str:
    """The API's ``error`` text in an error body, ``""`` if none.  Never raises.

    Both APIs are covered: ``{"error": ...}``, ``<error>..</error>``, ``<root><error>..</error></root>`` and
    the Call Logs envelopes.  The body is sniffed, not trusted to match the ``Accept`` that was sent:
    error bodies do not always honour it.
    """
    try:
        return _find_error_text(body)
    except Exception:  # best effort: an unreadable error body has no error text
        return ""


def _find_error_text(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    head = text.lstrip(" \t\r\n\ufeff")[:1]
    if head == "<":
        root = loads_xml(body, "")
        node = root if root.tag == "error" else root.find("error")
        return "" if node is None else "".join(node.itertext()).strip()
    if head in ("{", "["):
        data = loads_json(body, endpoint="")
        error = data.get("error") if isinstance(data, dict) else None
        return "" if error is None else error.strip() if isinstance(error, str) else str(error)
    return ""
