"""The sandbox ASGI 3 app: admission (credentials, fixed-window rate limits, injected faults) and responses.

Per request, in order: route → authenticate (VoiceTrends data: a live temporary credential; Call Logs: the
DEV login itself; unauthenticated requests get 401 and count against nothing) → count in the group's
window (429 once the window is spent) → injected 500 / drop (still counted) → validate and render →
``latency`` → send, with ``Date`` on every response and ``X-RateLimit-*`` on counted ones.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from .config import SandboxConfig
from .data import CallData, CallRecord, hash_unit
from .handlers import (
    METHOD_NOT_ALLOWED,
    Request,
    Response,
    Route,
    calllogs,
    cl_failure,
    route,
    voicetrends,
    vt_error,
)
from .render import simple_body, wants_xml
from .state import CredentialStore, RateCounters, RateDecision, Recorder, RequestRecord, same_secret
from .trends import Trends

log = logging.getLogger("plumasync.sandbox")

__all__ = ["ASGIReceive", "ASGIScope", "ASGISend", "DroppedConnection", "SandboxApp"]

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_TOOLS = ("dev", "insight", "fuseplus")


class DroppedConnection(Exception):
    """Raised by the app after the response start when a request is chosen to be dropped.

    Through uvicorn the client sees the connection close mid-response (httpx ``RemoteProtocolError``);
    through ``httpx.ASGITransport`` this exception propagates unless ``raise_app_exceptions=False``.
    """


class SandboxApp:
    """A simulated Plum server (VoiceTrends ``/api/`` and Call Logs ``/ws/``) as a pure ASGI 3 app.

    ``SandboxApp(config)`` or ``SandboxApp(seed=1, limits={...})`` (keyword fields build a config).
    Knobs can be changed while it runs: :meth:`set` or assign :attr:`config`.  Thread-safe.
    """

    def __init__(self, config: SandboxConfig | None = None, **changes: Any) -> None:
        base = config if config is not None else SandboxConfig(**changes)
        if config is not None and changes:
            base = config.replace(**changes)
        self._lock = threading.Lock()
        self._config = base
        self._counters = RateCounters()
        self._credentials = CredentialStore()
        self._requests = 0
        self._data: tuple[tuple[object, ...], CallData] | None = None
        self._trends: tuple[tuple[object, ...], Trends] | None = None
        #: Every request the app has answered.
        self.recorder = Recorder()

    # ---- configuration and introspection ----------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        """The current configuration (read afresh by every request)."""
        return self._config

    @config.setter
    def config(self, value: SandboxConfig) -> None:
        """Replace the whole configuration (validated first)."""
        value.validate()
        with self._lock:
            self._config = value

    def set(self, **changes: Any) -> SandboxConfig:
        """Change knobs at runtime (validated, swapped atomically); returns the new config."""
        with self._lock:
            self._config = self._config.replace(**changes)
            return self._config

    def server_now(self) -> float:
        """Current server time (``clock.now() + skew``)."""
        return self._config.server_now()

    @property
    def data(self) -> CallData:
        """The generated calls of the current config (``expected_log``, ``expected_ids``, ...)."""
        cfg = self._config
        key: tuple[object, ...] = (
            cfg.seed,
            cfg.start_of_calls,
            cfg.calls_count,
            cfg.calls_spacing,
            cfg.numbers,
        )
        cached = self._data
        if cached is None or cached[0] != key:
            data = CallData(
                seed=cfg.seed,
                start=cfg.start_of_calls,
                count=cfg.calls_count,
                spacing=cfg.calls_spacing,
                numbers=cfg.numbers,
            )
            cached = (key, data)
            self._data = cached
        return cached[1]

    @property
    def trends(self) -> Trends:
        """The VoiceTrends data generator of the current config."""
        cfg = self._config
        key: tuple[object, ...] = (cfg.seed, cfg.numbers)
        cached = self._trends
        if cached is None or cached[0] != key:
            cached = (key, Trends(seed=cfg.seed, numbers=cfg.numbers))
            self._trends = cached
        return cached[1]

    def expected_log(self, log_id: int) -> CallRecord:
        """The call behind ``log_id`` (``.listing()``/``.detail()`` = served fields); KeyError if none."""
        return self.data.expected_log(log_id)

    def expected_ids(self, start: int, end: int, number: str | None = None) -> list[int]:
        """log_ids that calls/logs lists for ``[start, end)`` (and ``number``), in order."""
        return self.data.expected_ids(start, end, number)

    @property
    def requests_seen(self) -> int:
        """How many HTTP requests have arrived (the numbering ``fail_requests`` uses)."""
        return self._requests

    def used(self, login: str, group: str) -> int:
        """Requests counted against ``(login, group)`` in the current window (tenant spend included)."""
        cfg = self._config
        with self._lock:
            return self._counters.used(login, group, cfg.server_now(), cfg.limit_for(group)[1])

    def live_credentials(self) -> int:
        """How many temporary VoiceTrends credentials are valid now."""
        cfg = self._config
        with self._lock:
            return self._credentials.live(cfg.server_now(), cfg.credential_ttl)

    def revoke_credentials(self, account: str | None = None) -> int:
        """Invalidate temporary credentials (of ``account`` if given); returns how many."""
        with self._lock:
            return self._credentials.revoke(account)

    def reset(self) -> None:
        """Forget windows, credentials, request numbering and the recorder (the config stays)."""
        with self._lock:
            self._counters.clear()
            self._credentials.revoke()
            self._requests = 0
        self.recorder.clear()

    # ---- ASGI --------------------------------------------------------------------------------------

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """ASGI 3 entry point (``http`` and ``lifespan`` scopes)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the Plum sandbox does not serve {scope['type']!r} scopes")
        request = Request(
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            body=await _read_body(receive),
        )
        await self._handle(request, send)

    async def _handle(self, request: Request, send: ASGISend) -> None:
        cfg = self._config
        target = route(request.path)
        xml = wants_xml(request.accept)
        with self._lock:
            self._requests += 1
            number = self._requests
            now = cfg.server_now()
            login, decision, response = self._admit(cfg, request, target, now, xml)
        if response is None:
            response = self._answer(cfg, request, target, now, xml)
        injected = False
        if number in cfg.fail_requests or (
            cfg.fail_rate > 0 and hash_unit(cfg.fail_seed, "fail", number) < cfg.fail_rate
        ):
            injected = True
            failure = cl_failure if target.api == "cl" else vt_error
            response = failure(target, 500, "unknown error", xml)
        dropped = number in cfg.drop_requests or (
            cfg.drop_rate > 0 and hash_unit(cfg.fail_seed, "drop", number) < cfg.drop_rate
        )
        if cfg.latency > 0:
            await anyio.sleep(cfg.latency)
        content_type, body = response.body
        date = math.floor(now + cfg.date_shift_requests.get(number, 0.0))
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"date", email.utils.formatdate(date, usegmt=True).encode()),
            *response.headers,
        ]
        if decision is not None and (target.group != "calllogs" or cfg.calllogs_headers):
            headers.extend(_rate_headers(cfg, decision, number, date))
        self.recorder.add(
            RequestRecord(
                number=number,
                server_time=now,
                method=request.method,
                path=request.path,
                query=request.query,
                group=target.group if decision is not None else None,
                login=login if decision is not None else None,
                status=response.status,
                accept=request.accept,
                dropped=dropped,
                injected=injected or dropped,
            )
        )
        if log.isEnabledFor(logging.DEBUG):  # ``plumasync sandbox -v``: one line per request, for users' trials
            remaining = "-" if decision is None else f"{decision.remaining}/{decision.limit}"
            log.debug("%s %s -> %d  remaining %s%s", request.method, request.path, response.status, remaining,
                      "  (connection dropped)" if dropped else "")
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if dropped:
            raise DroppedConnection(f"sandbox dropped request #{number} ({request.method} {request.path})")
        await send({"type": "http.response.body", "body": body})

    def _answer(self, cfg: SandboxConfig, request: Request, target: Route, now: float, xml: bool) -> Response:
        """The endpoint's own answer to an admitted request (what the server keeps at ``now``)."""
        if target.api == "vt":
            return voicetrends(target, request, self.trends, xml)
        kept = None if cfg.retention is None else now - cfg.retention
        return calllogs(target, request, self.data, xml, kept_from=kept, newest_first=cfg.newest_first,
                        until=now if cfg.live else None)

    def _admit(
        self, cfg: SandboxConfig, request: Request, target: Route, now: float, xml: bool
    ) -> tuple[str | None, RateDecision | None, Response | None]:
        """Authenticate and count (under the lock).  Returns (login, decision, early response or None)."""
        if target.api == "none":
            return None, None, vt_error(target, 404, "not found", xml)
        if target.api == "auth":
            fields = request.form()
            login = fields.get("login", "")
            decision = self._hit(cfg, login, "auth", now)
            if not decision.allowed:
                return login, decision, vt_error(target, 429, "rate limit exceeded", xml)
            return login, decision, self._authenticate(cfg, request, fields, target, now, xml)
        credentials = request.basic()
        account: str | None = None
        if target.api == "vt":
            if credentials is not None:
                account = self._credentials.use(*credentials, now=now, ttl=cfg.credential_ttl)
            if account is None:
                message = "invalid or expired credentials" if credentials else "authentication required"
                return None, None, vt_error(target, 401, message, xml)
            decision = self._hit(cfg, account, "data", now)
            if not decision.allowed:
                return account, decision, vt_error(target, 429, "rate limit exceeded", xml)
            return account, decision, None
        if credentials is not None:
            password = cfg.accounts.get(credentials[0])
            if password is not None and same_secret(password, credentials[1]):
                account = credentials[0]
        if account is None:
            return (
                None,
                None,
                cl_failure(target, 401, f"Unauthorized access to calls/{target.resource} service", xml),
            )
        decision = self._hit(cfg, account, "calllogs", now)
        if not decision.allowed:
            return account, decision, cl_failure(target, 429, "rate limit exceeded", xml)
        return account, decision, None

    def _hit(self, cfg: SandboxConfig, login: str, group: str, now: float) -> RateDecision:
        limit, window = cfg.limit_for(group)
        spend = cfg.tenant_spend.get(group, 0)
        return self._counters.hit(login, group, now, limit, window, spend, self.recorder)

    def _authenticate(
        self,
        cfg: SandboxConfig,
        request: Request,
        fields: dict[str, str],
        target: Route,
        now: float,
        xml: bool,
    ) -> Response:
        if request.method != "POST":
            return vt_error(target, 405, METHOD_NOT_ALLOWED, xml)
        tool = fields.get("tool")
        if not tool:
            return vt_error(target, 400, "missing tool (expected dev, insight or fuseplus)", xml)
        if tool not in _TOOLS:
            return vt_error(target, 400, f"invalid tool {tool!r} (expected dev, insight or fuseplus)", xml)
        login, password = fields.get("login", ""), fields.get("password", "")
        if not login or not password:
            return vt_error(target, 400, "missing login or password", xml)
        expected = cfg.accounts.get(login)
        if expected is None or not same_secret(expected, password):
            return vt_error(target, 401, "invalid login or password", xml)
        temp_login, temp_password = self._credentials.issue(login, now)
        return Response(200, simple_body("auth", {"login": temp_login, "password": temp_password}, xml))


def _rate_headers(cfg: SandboxConfig, decision: RateDecision, number: int, date: int) -> list[tuple[bytes, bytes]]:
    """X-RateLimit-* (shifted by the lying-server knobs) and, on a 429, Retry-After if configured."""
    shift = cfg.reset_shift + cfg.reset_shift_requests.get(number, 0.0)
    shown = decision if not shift else dataclasses.replace(decision, reset=math.floor(decision.reset + shift))
    headers = shown.headers()
    if not decision.allowed and cfg.retry_after is not None:
        wait = max(0, math.ceil(decision.reset - date))
        value = str(wait) if cfg.retry_after == "seconds" else \
            email.utils.formatdate(date + wait, usegmt=True)
        headers.append((b"retry-after", value.encode()))
    return headers


async def _read_body(receive: ASGIReceive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            break
    return b"".join(chunks)


async def _lifespan(receive: ASGIReceive, send: ASGISend) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
