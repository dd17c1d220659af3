"""Deterministic, lazy call data behind the sandbox's Call Logs API (and the tests' expectations).

Nothing is stored per call: call ``i`` (``0 <= i < calls_count``) is a pure function of the seed and
``i``, so a sandbox with a million calls costs nothing until a page is served, and every range query is
index arithmetic (a bisect over the start-time formula, residues for the number filter): O(page).

Call ``i``:

* ``log_id = LOG_ID_BASE + i``; ``start = calls_start + floor(i * calls_spacing)``;
  ``end = start + 10..300`` s; ``dest = numbers[i % len(numbers)]``;
  ``session_id = "serverid;channel;starttime"`` with ``starttime = start - 11``.
* Listing and detail fields are exactly what :meth:`CallRecord.listing` / :meth:`CallRecord.detail`
  return (all strings, as on the wire); :meth:`CallData.expected_log` and :meth:`CallData.expected_ids`
  let tests compare harvested content with the sandbox's.
* Session log: two lines per call (the ``calltype ...`` line, then one ``local`` line: ``fetchurl:``
  or a ``<log>`` label).  Error log: one line for every call with ``i % 7 == 3``.
* Bracketed CLF timestamps use New York wall time with the *other* DST offset (``-0500`` in summer,
  ``-0400`` in winter), reproducing the quirk in every one of Plum's samples.  Trust the epoch fields.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = [
    "ERROR_MODULUS",
    "ERROR_RESIDUE",
    "LOG_ID_BASE",
    "NEW_YORK",
    "CallData",
    "CallRecord",
    "Selection",
    "clf_timestamp",
    "hash_int",
    "hash_unit",
    "log_timestamp",
]

#: log_id of call 0.
LOG_ID_BASE = 421_000_000
#: Call ``i`` has an error-log line iff ``i % ERROR_MODULUS == ERROR_RESIDUE``.
ERROR_MODULUS = 7
ERROR_RESIDUE = 3
#: Plum's local time zone (VoiceTrends buckets, log timestamps).
NEW_YORK = ZoneInfo("America/New_York")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_AREAS = ("212", "718", "617", "646", "508", "978", "312", "415", "202", "305")
_SERVERS = ("100025", "200035", "300024", "400050")
_CITIES = ("Boston", "New York", "Chicago", "Providence", "Hartford", "Philadelphia")
_APPS = (
    "http://demos.plumgroup.com/vxml/start.php",
    "http://ivr.example.com/support/start.php",
    "http://apps.example.net/billing/start.php",
)
_LABELS = (
    "menu_choice: 2",
    "caller_id: verified",
    "account_lookup: found",
    "transfer_target: sales",
    "survey_score: 5",
)
_ERRORS = (
    "Max Disconnect Count Exceeded",
    "errno: 210 message Maximum loop count exceeded",
    "ReferenceError: d is not defined line 1",
    "error.badfetch http://ivr.example.com/support/next.php 404",
    "error.semantic undefined variable 'choice'",
)
_MIDDLE = (
    ("vxi", "DEBUG", "fetching {app}"),
    ("inet", "DEBUG", "GET {app} 200 OK"),
    ("prompt", "EVENT", "playing prompt main_menu.wav"),
    ("dlg", "EVENT", "entering form main_menu"),
    ("rec", "EVENT", "recognition result: 2 (confidence 0.93)"),
    ("jsi", "DEBUG", "evaluating expression choice == '2'"),
    ("log", "LOCAL", "menu_choice: 2"),
    ("dxi", "DEBUG", "document cached"),
    ("tel", "EVENT", "DTMF received: 2"),
    ("client", "USAGE", "billing units: 1"),
    ("sip", "DEBUG", "SIP/2.0 200 OK"),
    ("vxi", "ERROR", "error.noinput in form main_menu"),
)


def hash_int(*parts: object) -> int:
    """A stable 128-bit integer hash of ``parts`` (their ``repr``), independent of PYTHONHASHSEED."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def hash_unit(*parts: object) -> float:
    """A stable float in ``[0, 1)`` derived from ``parts``."""
    return (hash_int(*parts) >> 75) / float(1 << 53)


def clf_timestamp(epoch: int) -> str:
    """Plum's bracketed session/error timestamp, e.g. ``03/Nov/2017:14:38:30 -0500`` (offset quirk)."""
    local = dt.datetime.fromtimestamp(epoch, NEW_YORK)
    offset = local.utcoffset() or dt.timedelta(0)
    # Plum's samples show New York wall time with the other DST's offset; reproduce it.
    shown = "-0400" if offset == dt.timedelta(hours=-5) else "-0500"
    return f"{local.day:02d}/{_MONTHS[local.month - 1]}/{local.year}:{local:%H:%M:%S} {shown}"


def log_timestamp(epoch: int) -> str:
    """A last-call-log timestamp, e.g. ``Wed 28 Aug 2002 10:16:58 AM EDT`` (New York time)."""
    local = dt.datetime.fromtimestamp(epoch, NEW_YORK)
    day = _DAYS[local.weekday()]
    month = _MONTHS[local.month - 1]
    return f"{day} {local.day:02d} {month} {local.year} {local:%I:%M:%S %p} {local.tzname()}"


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class CallRecord:
    """One generated call, with everything the sandbox serves about it."""

    index: int
    log_id: int
    session_id: str
    dest: str
    type: str
    src: str
    start: int
    end: int
    channel: int
    location: str
    variant: int

    def listing(self) -> dict[str, str]:
        """The call's calls/logs entry, in wire order, all values strings."""
        return {
            "log_id": str(self.log_id),
            "session_id": self.session_id,
            "dest": self.dest,
            "type": self.type,
            "src": self.src,
            "start": str(self.start),
            "end": str(self.end),
        }

    def detail(self) -> dict[str, str]:
        """The call's calls/log/{log_id} result, in wire order, all values strings."""
        return {
            "dest": self.dest,
            "src": self.src,
            "type": self.type,
            "timestamp": str(self.start),
            "location": self.location,
            "log": self.log_text(),
        }

    def log_text(self) -> str:
        """The multi-line "last call log" text (5-40 lines, ``\\n``-separated)."""
        rng = random.Random(self.variant)
        count = 5 + self.variant % 36
        app = _APPS[self.variant % len(_APPS)]
        duration = self.end - self.start
        sid = f"({self.session_id})"
        times = sorted(self.start + rng.randrange(duration + 1) for _ in range(count - 2))
        lines = [f"{log_timestamp(self.start)} [tel] {sid} EVENT: call started"]
        for t in times:
            module, kind, message = _MIDDLE[rng.randrange(len(_MIDDLE))]
            lines.append(f"{log_timestamp(t)} [{module}] {sid} {kind}: {message.format(app=app)}")
        lines.append(f"{log_timestamp(self.end)} [tel] {sid} EVENT: call ended")
        return "\n".join(lines)

    def _prefix(self, kind: str, epoch: int) -> str:
        return f"{kind} {self.src} {self.channel} [{clf_timestamp(epoch)}] {self.dest} {self.session_id}"

    def session_lines(self) -> tuple[str, str]:
        """The call's two session-log lines (plain slashes; JSON escapes them, XML keeps ``\\/``)."""
        main = f"{self._prefix(self.type, self.start)} {self.start} {self.end} {_hms(self.end - self.start)}"
        at = self.start + 1 + self.variant % 5
        if self.variant % 3 == 0:
            local = f"{self._prefix('local', at)} {_LABELS[self.variant % len(_LABELS)]}"
        else:
            local = f"{self._prefix('local', at)} fetchurl: {_APPS[self.variant % len(_APPS)]}"
        return main, local

    @property
    def has_error(self) -> bool:
        """Whether the call appears in calls/errors."""
        return self.index % ERROR_MODULUS == ERROR_RESIDUE

    def error_line(self) -> str:
        """The call's error-log line (meaningful only when :attr:`has_error`)."""
        at = self.start + (self.variant >> 8) % (self.end - self.start + 1)
        return f"{self._prefix('error', at)} {_ERRORS[self.variant % len(_ERRORS)]}"


class Selection(Sequence[int]):
    """Indices ``i`` in ``[lo, hi)`` with ``i % modulus`` in ``residues``: a lazy, O(1)-indexable sequence."""

    def __init__(self, lo: int, hi: int, modulus: int, residues: Sequence[int]) -> None:
        self.lo, self.hi, self.modulus = lo, max(lo, hi), modulus
        self.residues = sorted(set(residues))
        self._base = self._rank(lo)
        self._len = self._rank(self.hi) - self._base if self.residues else 0

    def _rank(self, n: int) -> int:
        """How many matching non-negative integers are ``< n``."""
        full, part = divmod(n, self.modulus)
        return full * len(self.residues) + bisect.bisect_left(self.residues, part)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, j: int) -> int:  # type: ignore[override]
        if j < 0:
            j += self._len
        if not 0 <= j < self._len:
            raise IndexError(j)
        block, pos = divmod(self._base + j, len(self.residues))
        return block * self.modulus + self.residues[pos]

    def page(self, offset: int, limit: int) -> list[int]:
        """Up to ``limit`` indices starting at position ``offset``."""
        return [self[j] for j in range(max(0, offset), min(self._len, max(0, offset) + limit))]


class CallData:
    """The generated calls of one configuration; pure functions, nothing stored per call."""

    def __init__(self, *, seed: int, start: int, count: int, spacing: float, numbers: Sequence[str]) -> None:
        self.seed, self.start, self.count, self.spacing = seed, start, count, spacing
        self.numbers = tuple(numbers)

    def start_of(self, index: int) -> int:
        """Start (Unix seconds) of call ``index``."""
        return self.start + math.floor(index * self.spacing)

    def call(self, index: int) -> CallRecord:
        """Call number ``index`` (0-based)."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        h = hash_int(self.seed, "call", index)
        variant = h & 0xFFFFFFFF
        h >>= 32
        h, duration = divmod(h, 291)
        h, kind = divmod(h, 4)
        h, area = divmod(h, len(_AREAS))
        h, exchange = divmod(h, 800)
        h, line = divmod(h, 10000)
        h, server = divmod(h, len(_SERVERS))
        h, channel = divmod(h, 32)
        h, city = divmod(h, len(_CITIES))
        start = self.start_of(index)
        return CallRecord(
            index=index,
            log_id=LOG_ID_BASE + index,
            session_id=f"{_SERVERS[server]};{channel:03d};{start - 11}",
            dest=self.numbers[index % len(self.numbers)],
            type="outbound" if kind == 0 else "inbound",
            src=f"{_AREAS[area]}{200 + exchange}{line:04d}",
            start=start,
            end=start + 10 + duration,
            channel=channel,
            location=_CITIES[city],
            variant=variant,
        )

    def index_at(self, timestamp: int) -> int:
        """Index of the first call starting at or after ``timestamp``."""
        return bisect.bisect_left(range(self.count), timestamp, key=self.start_of)

    def _number_residues(self, numbers: Sequence[str] | None) -> list[int]:
        if numbers is None:
            return list(range(len(self.numbers)))
        wanted = set(numbers)
        return [k for k, n in enumerate(self.numbers) if n in wanted]

    def select(self, start: int, end: int, numbers: Sequence[str] | None = None) -> Selection:
        """Calls starting in ``[start, end)`` (only to ``numbers`` if given), by start then log_id."""
        lo, hi = self.index_at(start), self.index_at(end)
        return Selection(lo, hi, len(self.numbers), self._number_residues(numbers))

    def select_errors(self, start: int, end: int, numbers: Sequence[str] | None = None) -> Selection:
        """Calls with an error-log line starting in ``[start, end)``."""
        m = len(self.numbers)
        modulus = m * ERROR_MODULUS // math.gcd(m, ERROR_MODULUS)
        allowed = set(self._number_residues(numbers))
        residues = [x for x in range(modulus) if x % m in allowed and x % ERROR_MODULUS == ERROR_RESIDUE]
        return Selection(self.index_at(start), self.index_at(end), modulus, residues)

    def by_log_id(self, log_id: int) -> CallRecord | None:
        """The call with ``log_id``, or None when there is none."""
        index = log_id - LOG_ID_BASE
        return self.call(index) if 0 <= index < self.count else None

    # ---- expectations for tests -------------------------------------------------------------------

    def expected_log(self, log_id: int) -> CallRecord:
        """The call with ``log_id`` (``.listing()``/``.detail()`` = served fields); KeyError if none."""
        record = self.by_log_id(log_id)
        if record is None:
            raise KeyError(log_id)
        return record

    def expected_ids(self, start: int, end: int, number: str | None = None) -> list[int]:
        """log_ids of calls starting in ``[start, end)`` (to ``number`` if given), in listing order."""
        numbers = None if number is None else number.split(",")
        return [LOG_ID_BASE + i for i in self.select(start, end, numbers)]

    def expected_sessions(self, start: int, end: int, number: str | None = None) -> list[str]:
        """Every session-log line calls/sessions lists for the range (plain slashes), in order."""
        numbers = None if number is None else number.split(",")
        return [line for i in self.select(start, end, numbers) for line in self.call(i).session_lines()]

    def expected_errors(self, start: int, end: int, number: str | None = None) -> list[str]:
        """Every error-log line calls/errors lists for the range (plain slashes), in order."""
        numbers = None if number is None else number.split(",")
        return [self.call(i).error_line() for i in self.select_errors(start, end, numbers)]

    def __len__(self) -> int:
        return self.count
