"""The one exception tree of plumasync.

::

    PlumError                         root: catch this to catch everything plumasync raises
    ├── ConfigurationError            bad client/budget/store configuration (also a ValueError)
    ├── ValidationError               bad input caught before any budget is spent (also a ValueError)
    ├── ResponseParseError            a body that could not be parsed into the documented shape
    ├── TransportError                the request never got an HTTP answer (connect, read, dropped)
    ├── HarvestError                  a harvest item that still failed after every retry
    ├── Abandoned                     a request of a stopping Drain, never sent (it cost nothing)
    ├── StoreBusyError                the budget store stayed locked past its timeout (also a TimeoutError)
    └── APIError                      the API answered with an error
        ├── InvalidRequestError       400: supplied data improperly formatted or invalid
        ├── AuthenticationError       401: credentials invalid or the account is inactive
        ├── MethodNotAllowedError     405: invalid HTTP method
        ├── RateLimitExceeded         429 from the server, or a local wait longer than ``max_wait``
        ├── ServerError               5xx
        └── FailureStatusError        Call Logs envelope ``"status": "failure"`` under HTTP 200

Every :class:`APIError` carries ``method``, ``url`` (without credentials), ``status`` and the API's
``error`` text.  No exception ever carries a password or an ``Authorization`` header.
"""

from __future__ import annotations

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
    "TransportError",
    "ValidationError",
    "error_for_status",
]


class PlumError(Exception):
    """Root of every exception plumasync raises."""


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
        self.snippet = snippet[:200]


class TransportError(PlumError):
    """The request did not get an HTTP response (connection refused or dropped, timeout)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(f"{method} {url}: {message}".strip() if method else message)
        self.method = method
        self.url = url


class HarvestError(PlumError):
    """One harvest item failed after every retry; the harvest reports it and goes on."""

    def __init__(self, message: str, *, log_id: int | None = None, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.log_id = log_id
        self.cause = cause


class Abandoned(PlumError):
    """A request of a stopping :class:`~plumasync.transport.Drain` that was never sent (it cost no budget)
    and never will be."""


class StoreBusyError(PlumError, TimeoutError):
    """The budget store stayed locked by other processes for longer than its ``timeout``."""


class APIError(PlumError):
    """The API answered with an error status (or a failure envelope).

    Attributes: ``method``, ``url`` (never with credentials), ``status`` (None when raised locally)
    and ``error`` (the API's own ``error`` text, ``""`` when it gave none).
    """

    def __init__(self, *, method: str, url: str, status: int | None, error: str = "") -> None:
        self.method = method
        self.url = url
        self.status = status
        self.error = error
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
