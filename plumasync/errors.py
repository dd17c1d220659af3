"""The one exception tree of plumasync.

::

    PlumError                         root: catch this to catch everything plumasync raises
    ├── ConfigurationError            bad client/budget/store configuration (also a ValueError)
    ├── ValidationError               bad input caught before any budget is spent (also a ValueError)
    ├── ResponseParseError            a body that could not be parsed into the documented shape
    ├── TransportError                the request never got an HTTP answer (connect, read, dropped)
    ├── HarvestError                  a harvest item that still failed after every retry
    ├── Abandoned                     a request of a stopping Drain, never sent (it cost nothing)
    ├── StoreError                    the budget store cannot be used (damaged, not a database, locked)
    │   └── StoreBusyError            it stayed locked past its timeout (also a TimeoutError)
    └── APIError                      the API answered with an error
        ├── InvalidRequestError       400: supplied data improperly formatted or invalid
        ├── AuthenticationError       401: credentials invalid or the account is inactive
        ├── MethodNotAllowedError     405: invalid HTTP method
        ├── RateLimitExceeded         429 from the server, or a local wait longer than ``max_wait``
        ├── ServerError               5xx
        └── FailureStatusError        Call Logs envelope ``"status": "failure"`` under HTTP 200

Every :class:`APIError` carries ``method``, ``url`` (without credentials), ``status`` and the API's
``error`` text.  No exception ever carries a password or an ``Authorization`` header: a server may echo
the login form in an error body, so every secret a client was given (the DEV password, the temporary
VoiceTrends credentials) is masked in every exception's text, in each encoding it could come back in
(see :func:`mask_secrets`).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import threading
from urllib.parse import quote, quote_plus

__all__ = [
    "APIError",
    "Abandoned",
    "AuthenticationError",
    "ConfigurationError",
    "FailureStatusError",
    "HarvestError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "PlumError",
    "RateLimitExceeded",
    "ResponseParseError",
    "ServerError",
    "StoreBusyError",
    "StoreError",
    "TransportError",
    "ValidationError",
    "basic_credentials",
    "error_for_status",
    "mask_secrets",
    "register_secret",
]

#: What a masked secret is replaced with.
MASK = "***"
#: Shorter secrets are not masked: replacing every "ab" in a message would garble it and hide nothing.
_MIN_SECRET = 3


def _encodings(secret: str) -> set[str]:
    """``secret`` as it may come back: raw, percent-encoded (``%2F`` or ``%2f``, ``+`` or ``%20`` for
    spaces), HTML-escaped, JSON-escaped (``\\u00e9``, PHP's ``\\/``)."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), quote_plus(secret, safe=""),
             html.escape(secret), html.escape(secret, quote=False)}
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms.update((escaped, escaped.replace("/", "\\/")))
    forms.update([re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), f) for f in forms])
    return {f for f in forms if len(f) >= _MIN_SECRET}


def _forms(login: str | None, password: str) -> set[str]:
    forms = _encodings(password)
    if login is not None:  # an echoed Authorization header: Basic base64(login:password)
        pair = base64.b64encode(f"{login}:{password}".encode()).decode()
        forms.update((pair, quote(pair, safe="")))
    return forms


class _Registry:
    """Every secret handed to a client in this process, as one regular expression of all its forms."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, forms: set[str]) -> None:
        with self._lock:
            if forms <= self._forms:
                return
            self._forms |= forms
            # Longest first, so a form containing another is masked whole.
            alternatives = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


_REGISTRY = _Registry()


def register_secret(password: str | None, login: str | None = None) -> None:
    """Mask ``password`` (and ``base64(login:password)``) in every exception text from now on.

    :class:`~plumasync.PlumClient` registers its password, and the temporary VoiceTrends credentials
    when a request that carried them fails; call it for any other secret of yours.
    """
    if password and len(password) >= _MIN_SECRET:
        _REGISTRY.add(_forms(login, password))


def mask_secrets(text: str, *pairs: tuple[str | None, str | None]) -> str:
    """``text`` with every registered secret, and each ``(login, password)`` of ``pairs``, masked in
    every encoding (raw, percent-encoded, ``+`` for spaces, HTML, JSON, base64 of ``login:password``)."""
    text = _REGISTRY.mask(text)
    for login, password in pairs:
        if password and len(password) >= _MIN_SECRET:
            for form in sorted(_forms(login, password), key=len, reverse=True):
                text = text.replace(form, MASK)
    return text


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(login, password)`` from an ``Authorization: Basic ...`` header value (None when it is not one)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


class PlumError(Exception):
    """Root of every exception plumasync raises.  Its text never holds a registered secret."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(_REGISTRY.mask(a) if isinstance(a, str) else a for a in args))


class ConfigurationError(PlumError, ValueError):
    """The client, budget or store was configured with a value that cannot work."""


class ValidationError(PlumError, ValueError):
    """An argument was rejected before any request was sent (no budget was spent)."""


class ResponseParseError(PlumError):
    """A response body could not be read as the documented shape.

    ``endpoint`` names the resource; ``snippet`` holds the first bytes of the body for diagnosis.
    """

    def __init__(self, message: str, *, endpoint: str = "", snippet: str = "") -> None:
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.endpoint = endpoint
        self.snippet = _REGISTRY.mask(snippet)[:200]


class TransportError(PlumError):
    """The request did not get an HTTP response (connection refused or dropped, timeout)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(f"{method} {url}: {message}".strip() if method else message)
        self.method = method
        self.url = url


class StoreError(PlumError):
    """The budget store cannot be used: its file is damaged or not a database, or it stayed locked.

    The message names the store and what to do about it.
    """


class StoreBusyError(StoreError, TimeoutError):
    """The budget store stayed locked by other processes for longer than its ``timeout``."""


class HarvestError(PlumError):
    """One harvest item failed after every retry; the harvest reports it and goes on."""

    def __init__(self, message: str, *, log_id: int | None = None, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.log_id = log_id
        self.cause = cause


class Abandoned(PlumError):
    """A request of a stopping :class:`~plumasync.transport.Drain` that was never sent (it cost no budget)
    and never will be."""


class APIError(PlumError):
    """The API answered with an error status (or a failure envelope).

    Attributes: ``method``, ``url`` (never with credentials), ``status`` (None when raised locally)
    and ``error`` (the API's own ``error`` text, ``""`` when it gave none).
    """

    def __init__(self, *, method: str, url: str, status: int | None, error: str = "") -> None:
        self.method = method
        self.url = url
        self.status = status
        self.error = error = _REGISTRY.mask(error)
        where = f"{method} {url}".strip()
        code = f"HTTP {status}" if status is not None else "not sent"
        detail = f": {error}" if error else ""
        super().__init__(f"{where} -> {code}{detail}")


class InvalidRequestError(APIError):
    """HTTP 400: the server rejected the request's data."""


class AuthenticationError(APIError):
    """HTTP 401: the credentials are invalid or the account is inactive."""


class MethodNotAllowedError(APIError):
    """HTTP 405: the resource does not accept that method."""


class RateLimitExceeded(APIError):
    """The group's budget is exhausted.

    Raised after a server 429 that retries could not get past, or locally (``status is None``) when an
    interactive call's ``max_wait`` is shorter than the wait the governor would need.  ``retry_at`` is
    the clock time (Unix seconds) at which the budget is expected to admit the request.
    """

    def __init__(
        self, *, method: str, url: str, status: int | None, error: str = "", retry_at: float | None = None
    ) -> None:
        super().__init__(method=method, url=url, status=status, error=error)
        self.retry_at = retry_at
        if retry_at is not None:
            self.args = (f"{self.args[0]} (retry at {retry_at:.3f})",)


class ServerError(APIError):
    """HTTP 5xx: the server failed (retried by the policy before this is raised)."""


class FailureStatusError(APIError):
    """A Call Logs envelope said ``"status": "failure"`` (the HTTP status may be 200)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    405: MethodNotAllowedError,
    429: RateLimitExceeded,
}


def error_for_status(*, method: str, url: str, status: int, error: str = "") -> APIError:
    """Build the most specific :class:`APIError` for an HTTP status."""
    if status >= 500:
        return ServerError(method=method, url=url, status=status, error=error)
    cls = _BY_STATUS.get(status, APIError)
    return cls(method=method, url=url, status=status, error=error)
