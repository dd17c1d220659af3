"""Frozen, typed results of the VoiceTrends and Call Logs APIs.

The models know nothing about the wire (names, string numbers, ``[]`` for ``{}``, XML): the one
converter in :mod:`plumasync.wire` builds them.
"""

from .calllogs import CallLogDetail, CallLogEntry, CallLogPage
from .loglines import (
    BaseSessionLine,
    DetailLine,
    DetailLogLine,
    ErrorLine,
    ErrorLogLine,
    ErrorPage,
    LinePage,
    LocalFetchLine,
    LocalLogLine,
    SessionId,
    SessionLine,
    SessionLogLine,
    SessionPage,
    UnknownLine,
)
from .voicetrends import (
    EMPTY_SERIES,
    EventsReport,
    GeographicReport,
    Number,
    PathNode,
    PathReport,
    PerformanceReport,
    ProfileReport,
    Series,
    TemporaryCredentials,
    TrendReport,
    VolumeReport,
)

__all__ = [
    "EMPTY_SERIES",
    "BaseSessionLine",
    "CallLogDetail",
    "CallLogEntry",
    "CallLogPage",
    "DetailLine",
    "DetailLogLine",
    "ErrorLine",
    "ErrorLogLine",
    "ErrorPage",
    "EventsReport",
    "GeographicReport",
    "LinePage",
    "LocalFetchLine",
    "LocalLogLine",
    "Number",
    "PathNode",
    "PathReport",
    "PerformanceReport",
    "ProfileReport",
    "Series",
    "SessionId",
    "SessionLine",
    "SessionLogLine",
    "SessionPage",
    "TemporaryCredentials",
    "TrendReport",
    "UnknownLine",
    "VolumeReport",
]
