"""plumasync: an async client and CLI for Plum Voice's VoiceTrends and DEV Call Logs APIs.

Every request is admitted by a rate-limit governor that keeps within Plum's budget (150 data requests
and 15 authentications per 15-minute window) while finishing work as fast as the windows allow.
"""

from .calllogs import RetentionWarning
from .client import PlumClient
from .errors import (
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
    StoreError,
    TransportError,
    ValidationError,
)
from .governor import Budget, FakeClock, GroupSnapshot, Lane, ScaledClock, SystemClock
from .retry import RetryPolicy
from .transport import GovernedTransport
from .voicetrends import CachePolicy, CacheStats

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AuthenticationError",
    "Budget",
    "CachePolicy",
    "CacheStats",
    "ConfigurationError",
    "FailureStatusError",
    "FakeClock",
    "GovernedTransport",
    "GroupSnapshot",
    "HarvestError",
    "InvalidRequestError",
    "Lane",
    "MethodNotAllowedError",
    "PlumClient",
    "PlumError",
    "RateLimitExceeded",
    "ResponseParseError",
    "RetentionWarning",
    "RetryPolicy",
    "ScaledClock",
    "ServerError",
    "StoreError",
    "SystemClock",
    "TransportError",
    "ValidationError",
    "__version__",
]
