"""plumasync: an async client and CLI for Plum Voice's VoiceTrends and DEV Call Logs APIs.

Every request is admitted by a rate-limit governor that keeps within Plum's budget (150 data requests
and 15 authentications per 15-minute window) while finishing work as fast as the windows allow.
"""

from importlib import metadata as _metadata

from .cachestats import CacheStats
from .calllogs import LogListing, RetentionWarning
from .client import PlumClient
from .config import Budget, CachePolicy, StalePolicy
from .errors import (
    Abandoned,
    APIError,
    AuthenticationError,
    ConfigurationError,
    FailureStatusError,
    HarvestError,
    InvalidRequestError,
    MethodNotAllowedError,
    PlumError,
    RateLimitExceeded,
    ResponseParseError,
    ServerError,
    StoreBusyError,
    StoreError,
    TransportError,
    ValidationError,
)
from .governor import Consumer, GroupKey, GroupSnapshot, Lane, Usage
from .governor.clock import Clock, FakeClock, ScaledClock, SystemClock
from .harvest import Harvest, HarvestProgress, HarvestSummary
from .retry import RetryPolicy
from .sinks import HarvestedLog
from .transport import Drain, GovernedTransport

try:
    __version__ = _metadata.version("plumasync")  # written once, in pyproject.toml
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree never installed
    __version__ = "0+unknown"

__all__ = [
    "APIError",
    "Abandoned",
    "AuthenticationError",
    "Budget",
    "CachePolicy",
    "CacheStats",
    "Clock",
    "ConfigurationError",
    "Consumer",
    "Drain",
    "FailureStatusError",
    "FakeClock",
    "GovernedTransport",
    "GroupKey",
    "GroupSnapshot",
    "Harvest",
    "HarvestError",
    "HarvestProgress",
    "HarvestSummary",
    "HarvestedLog",
    "InvalidRequestError",
    "Lane",
    "LogListing",
    "MethodNotAllowedError",
    "PlumClient",
    "PlumError",
    "RateLimitExceeded",
    "ResponseParseError",
    "RetentionWarning",
    "RetryPolicy",
    "ScaledClock",
    "ServerError",
    "StalePolicy",
    "StoreBusyError",
    "StoreError",
    "SystemClock",
    "TransportError",
    "Usage",
    "ValidationError",
    "__version__",
]
