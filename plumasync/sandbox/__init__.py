"""A simulated Plum Voice server (VoiceTrends ``/api/`` + DEV Call Logs ``/ws/``) for loopback tests.

It is the other side of the wire: it imports nothing else from plumasync.  Use it in-process with
``httpx.AsyncClient(transport=httpx.ASGITransport(app=SandboxApp(...)), base_url="http://sandbox")`` or on
loopback with ``with SandboxServer(config) as srv: ... srv.voicetrends_url / srv.calllogs_url``.

Wire behaviour
--------------
* Every response has ``Date`` (server time = ``clock.now() + skew``, one-second resolution).  Counted
  requests also get ``X-RateLimit-Limit/-Remaining/-Reset`` (Call Logs only when ``calllogs_headers``).
* Windows are fixed and clock-aligned: ``[floor(t/w)*w, +w)``; ``Reset`` = window end.  Groups: ``auth``
  (per submitted login, 15/900 s), ``data`` (per owning DEV account, 150/900 s), ``calllogs`` (per DEV
  login, 150/900 s).  Every counted attempt costs one (400/401/405/500/drop included); unauthenticated
  data and Call Logs requests count against nothing.  Past the limit: 429, ``Remaining: 0``.
* JSON is PHP style: compact, ``/`` escaped as ``\\/``, empty maps as ``[]``.  ``Accept:
  application/xml`` (or ``text/xml``) selects XML; anything else gets JSON.
* VoiceTrends errors: ``{"error":"..."}``.  Call Logs errors: the documented failure envelope
  ``{"status":"failure","error":"...",}`` (trailing comma kept), with HTTP 400/401/405/429/500, except
  ``calls/log/{unknown id}``: HTTP 200 + failure envelope ``log not found``.
* In Call Logs JSON every value is a string.  Session/error lines keep ``\\/`` inside their bracketed
  timestamp in XML (Plum's quirk); in JSON the ``\\/`` is ordinary JSON escaping.  The bracketed offset
  is the *other* DST's (``-0500`` in summer), as in every Plum sample: trust the epoch fields.

XML shapes (all VoiceTrends documents and Call Logs successes start with ``<?xml version="1.0"?>``)
-------------------------------------------------------------------------------------------------
* auth: ``<auth><login>hex</login><password>hex</password></auth>``
* VoiceTrends error (any resource, root = resource name, ``response`` for unknown paths):
  ``<volume><error>rate limit exceeded</error></volume>``
* volume/events/performance/profile (one element per series, one ``item`` per bucket):
  ``<volume><calls><item timestamp="1517461200">0</item>...</calls><call_minutes>...</volume>``
* geographic: ``<geographic><US><region name="AL">0</region>...<region name="US Toll-Free">1</region></US>
  <NON_US/></geographic>`` (or ``<NON_US><region name="CA">3</region>...</NON_US>``)
* path: ``<path><applications><application url="https://.../start.php"><node><page>main.php</page>
  <form>..</form><item>..</item><visits>985</visits><filled/nomatch/noinput/transfer/disconnect>
  </node>...</application></applications></path>``
* Call Logs success: ``<ROOT><status>success</status><error></error><result>...</result></ROOT>`` with
  ROOT = ``logs`` (``<total_logs>N</total_logs><logs><log><log_id>..</log_id>...</log></logs>``),
  ``log`` (``<dest>..<src>..<type>..<timestamp>..<location>..<log>text</log>``),
  ``sessions`` (``<total_sessions>N</total_sessions><sessions><session>line</session>...</sessions>``),
  ``errors`` (``<total_errors>N</total_errors><errors><error>line</error>...</errors>``).
* Call Logs failure (no prolog): ``<ROOT><status>failure</status><error>text</error></ROOT>``.
"""

from __future__ import annotations

from .app import DroppedConnection, SandboxApp
from .config import DEFAULT_LIMITS, DEFAULT_NUMBERS, GROUPS, SandboxClock, SandboxConfig
from .data import LOG_ID_BASE, CallData, CallRecord
from .server import SandboxServer, serve
from .state import Recorder, RequestRecord
from .trends import Trends

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_NUMBERS",
    "GROUPS",
    "LOG_ID_BASE",
    "CallData",
    "CallRecord",
    "DroppedConnection",
    "Recorder",
    "RequestRecord",
    "SandboxApp",
    "SandboxClock",
    "SandboxConfig",
    "SandboxServer",
    "Trends",
    "serve",
]
