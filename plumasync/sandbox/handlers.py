"""Request parsing, routing and the endpoint handlers that need no server state (validation + rendering).

Admission (credentials, rate limits, injected failures) lives in :mod:`plumasync.sandbox.app`; by the time
a handler here runs, the request has been authenticated and counted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from .data import CallData, Selection
from .render import (
    Body,
    envelope_failure,
    envelope_success,
    geographic_body,
    path_body,
    series_body,
    simple_body,
)
from .trends import MAX_RANGE_DAYS, SERIES, Trends

__all__ = ["METHOD_NOT_ALLOWED", "Request", "Response", "Route", "calllogs", "route", "voicetrends"]

#: Plum's (copy-pasted) 405 text, used by every VoiceTrends resource.
METHOD_NOT_ALLOWED = "invalid HTTP method supplied (only POST allowed)"

_VT_RESOURCES = ("volume", "events", "performance", "profile", "path")
_CL_RESOURCES = ("logs", "log", "sessions", "errors")
_TEMPLATES = {
    "volume": "/api/volume/{start}/{end}/{period}/{phone}",
    "events": "/api/events/{start}/{end}/{period}/{phone}",
    "performance": "/api/performance/{start}/{end}/{period}/{phone}",
    "profile": "/api/profile/{start}/{end}/{period}/{phone}",
    "geographic": "/api/profile/{start}/{end}/{phone}",
    "path": "/api/path/{start}/{end}/{phone}",
    "logs": "/ws/calls/logs/{start_timestamp}/{end_timestamp}",
    "log": "/ws/calls/log/{log_id}",
    "sessions": "/ws/calls/sessions/{start_timestamp}/{end_timestamp}",
    "errors": "/ws/calls/errors/{start_timestamp}/{end_timestamp}",
}
_DATE = re.compile(r"^\d{8}$")
_INT = re.compile(r"^-?\d+$")


@dataclass
class Request:
    """The parts of an HTTP request the sandbox looks at."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def accept(self) -> str:
        """The Accept header ("" when absent)."""
        return self.headers.get("accept", "")

    def params(self) -> dict[str, str]:
        """Query parameters (first value of each)."""
        return {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def form(self) -> dict[str, str]:
        """Query parameters overlaid with the url-encoded body's fields."""
        fields = self.params()
        text = self.body.decode("utf-8", errors="replace")
        fields.update({k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()})
        return fields

    def basic(self) -> tuple[str, str] | None:
        """``(user, password)`` from an HTTP Basic Authorization header, or None."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None


@dataclass
class Route:
    """Where a path leads: ``api`` is "auth", "vt" (VoiceTrends data), "cl" (Call Logs) or "none"."""

    api: str
    resource: str = ""
    args: list[str] = field(default_factory=list)

    @property
    def group(self) -> str | None:
        """The rate-limit group of the route (None for unknown paths)."""
        return {"auth": "auth", "vt": "data", "cl": "calllogs"}.get(self.api)

    @property
    def root(self) -> str:
        """XML root element name."""
        return self.resource or "response"


@dataclass
class Response:
    """A response before the common headers (Date, X-RateLimit-*) are added."""

    status: int
    body: Body
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def route(path: str) -> Route:
    """Classify a request path."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        if parts[1:] == ["auth"]:
            return Route("auth", "auth")
        if parts[1] in _VT_RESOURCES:
            resource, args = parts[1], parts[2:]
            if resource == "profile" and len(args) == 3:
                resource = "geographic"
            return Route("vt", resource, args)
    if parts[0] == "ws" and len(parts) >= 3 and parts[1] == "calls" and parts[2] in _CL_RESOURCES:
        return Route("cl", parts[2], parts[3:])
    return Route("none")


def vt_error(route: Route, status: int, message: str, xml: bool) -> Response:
    """A VoiceTrends error: ``{"error": message}``."""
    return Response(status, simple_body(route.root, {"error": message}, xml))


def _parse_date(text: str, which: str) -> dt.date:
    if not _DATE.match(text):
        raise ValueError(f"invalid {which} date {text!r} (expected YYYYMMDD)")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"invalid {which} date {text!r} (expected YYYYMMDD)") from None


def voicetrends(route: Route, request: Request, trends: Trends, xml: bool) -> Response:
    """Validate and serve a VoiceTrends data resource (already authenticated and counted)."""
    if request.method != "GET":
        return vt_error(route, 405, METHOD_NOT_ALLOWED, xml)
    resource, args = route.resource, route.args
    periodic = resource in SERIES
    if len(args) != (4 if periodic else 3) or not all(args):
        return vt_error(route, 400, f"invalid request, expected {_TEMPLATES[resource]}", xml)
    try:
        start, end = _parse_date(args[0], "start"), _parse_date(args[1], "end")
    except ValueError as exc:
        return vt_error(route, 400, str(exc), xml)
    if start > end:
        return vt_error(route, 400, "start date must not be after end date", xml)
    if (end - start).days >= MAX_RANGE_DAYS:
        return vt_error(route, 400, f"date range too long (at most {MAX_RANGE_DAYS} days)", xml)
    period = args[2] if periodic else ""
    if periodic and period not in ("day", "week", "month"):
        return vt_error(route, 400, f"invalid period {period!r} (expected day, week or month)", xml)
    phone = args[-1]
    if phone != "ALL" and not phone.isdigit():
        return vt_error(route, 400, f"invalid phone {phone!r} (expected digits or ALL)", xml)
    if periodic:
        return Response(200, series_body(resource, trends.series(resource, start, end, period, phone), xml))
    if resource == "geographic":
        return Response(200, geographic_body(*trends.geographic(start, end, phone), xml))
    return Response(200, path_body(trends.path(start, end, phone), xml))


def cl_failure(route: Route, status: int, message: str, xml: bool) -> Response:
    """A Call Logs failure envelope."""
    return Response(status, envelope_failure(route.root, message, xml))


def _page_params(request: Request) -> tuple[list[str] | None, int, int]:
    params = request.params()
    raw = params.get("number") or params.get("numbers") or ""
    numbers = [n.strip() for n in raw.split(",") if n.strip()] or None
    offset_text = params.get("offset") or "0"
    limit_text = params.get("limit") or "1000"
    if not offset_text.isdigit():
        raise ValueError(f"invalid offset {offset_text!r} (expected an integer >= 0)")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10000:
        raise ValueError(f"invalid limit {limit_text!r} (expected 1 to 10000)")
    return numbers, int(offset_text), int(limit_text)


def _expired(data: CallData, log_id: int, kept_from: float | None) -> bool:
    """A log past the retention: the server answers ``log not found`` for it, as for an unknown id."""
    record = data.by_log_id(log_id)
    return record is not None and kept_from is not None and record.start < kept_from


def _listing_page(selection: Selection, offset: int, limit: int, newest_first: bool) -> list[int]:
    """One page of call indices, oldest first (the sandbox's default) or newest first (Plum's own order)."""
    if not newest_first:
        return selection.page(offset, limit)
    last = len(selection) - 1
    return [selection[last - j] for j in range(offset, min(offset + limit, len(selection)))]


def calllogs(route: Route, request: Request, data: CallData, xml: bool, *, kept_from: float | None = None,
             newest_first: bool = False, until: float | None = None) -> Response:
    """Validate and serve a Call Logs service (already authenticated and counted).

    ``kept_from``: calls started before it are gone (retention): not listed, details ``log not found``.
    ``newest_first``: calls/logs lists in descending start order, as Plum does.
    ``until``: calls not started yet (at or after it) do not exist: calls appear as time passes.
    """
    if request.method != "GET":
        return cl_failure(route, 405, "invalid HTTP method supplied (only GET allowed)", xml)
    resource, args = route.resource, route.args
    if resource == "log":
        if len(args) != 1:
            return cl_failure(route, 400, f"invalid request, expected {_TEMPLATES[resource]}", xml)
        if not args[0].isdigit():
            return cl_failure(route, 400, f"invalid log_id {args[0]!r}", xml)
        record = data.by_log_id(int(args[0]))
        if record is None or _expired(data, int(args[0]), kept_from) or (
                until is not None and record.start >= until):
            return cl_failure(route, 200, "log not found", xml)
        return Response(200, envelope_success("log", record.detail(), xml))
    if len(args) != 2:
        return cl_failure(route, 400, f"invalid request, expected {_TEMPLATES[resource]}", xml)
    if not _INT.match(args[0]) or not _INT.match(args[1]):
        return cl_failure(route, 400, "invalid timestamp (expected Unix seconds)", xml)
    start, end = int(args[0]), int(args[1])
    if end <= start:
        return cl_failure(route, 400, "end_timestamp must be after start_timestamp", xml)
    try:
        numbers, offset, limit = _page_params(request)
    except ValueError as exc:
        return cl_failure(route, 400, str(exc), xml)
    if resource == "logs":
        if kept_from is not None:
            start = max(start, math.ceil(kept_from))
        if until is not None:
            end = min(end, math.floor(until))
        selection = data.select(start, end, numbers) if start < end else data.select(end, end, numbers)
        logs = [data.call(i).listing() for i in _listing_page(selection, offset, limit, newest_first)]
        result: dict[str, object] = {"total_logs": str(len(selection)), "logs": logs}
        return Response(200, envelope_success("logs", result, xml, list_name="logs", item_name="log"))
    if resource == "sessions":
        selection = data.select(start, end, numbers)
        total = 2 * len(selection)
        stop = min(total, offset + limit)
        first = offset // 2  # two lines per call: build each call once, then cut the page out
        calls = selection.page(first, (stop + 1) // 2 - first)
        lines = [line for i in calls for line in data.call(i).session_lines()][offset - 2 * first:stop - 2 * first]
        result = {"total_sessions": str(total), "sessions": lines}
        return Response(
            200, envelope_success("sessions", result, xml, list_name="sessions", item_name="session")
        )
    selection = data.select_errors(start, end, numbers)
    errors = [data.call(i).error_line() for i in selection.page(offset, limit)]
    result = {"total_errors": str(len(selection)), "errors": errors}
    return Response(200, envelope_success("errors", result, xml, list_name="errors", item_name="error"))
