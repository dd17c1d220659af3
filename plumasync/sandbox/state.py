"""Mutable server state: the request :class:`Recorder`, fixed-window rate counters and temporary credentials.

:class:`Recorder` has its own lock (tests read it from another thread).  :class:`RateCounters` and
:class:`CredentialStore` are guarded by the app's lock.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CredentialStore", "RateCounters", "RateDecision", "Recorder", "RequestRecord", "same_secret"]


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two strings (any characters)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class RequestRecord:
    """One request as the sandbox saw it."""

    #: 1-based number of the request over all requests (what ``fail_requests``/``drop_requests`` use).
    number: int
    #: Server time at arrival (``clock.now() + skew``).
    server_time: float
    method: str
    path: str
    #: Raw query string (no ``?``).
    query: str
    #: Rate-limit group the request was counted in ("auth", "data", "calllogs"), or None if uncounted.
    group: str | None
    #: Account the request was counted against (the submitted login for auth), or None.
    login: str | None
    #: HTTP status sent (for a dropped request: the status of the response start that was sent).
    status: int
    accept: str
    #: True when the connection was dropped after the response start.
    dropped: bool = False
    #: True when the response is an injected failure (500 or drop).
    injected: bool = False


class Recorder:
    """Thread-safe log of every request, plus the requests spent by the simulated other tenant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._tenant: Counter[str] = Counter()

    def add(self, record: RequestRecord) -> None:
        """Append a record."""
        with self._lock:
            self._records.append(record)

    def add_tenant(self, group: str, spent: int) -> None:
        """Note that the other tenant spent ``spent`` requests of ``group``."""
        with self._lock:
            self._tenant[group] += spent

    @property
    def records(self) -> list[RequestRecord]:
        """A snapshot of all records, in arrival order of their completion."""
        with self._lock:
            return list(self._records)

    @property
    def tenant(self) -> Counter[str]:
        """Requests spent by the other tenant, per group (a snapshot)."""
        with self._lock:
            return Counter(self._tenant)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records)

    def select(
        self,
        path_prefix: str | None = None,
        status: int | None = None,
        group: str | None = None,
        *,
        login: str | None = None,
        method: str | None = None,
        dropped: bool | None = None,
    ) -> list[RequestRecord]:
        """Records matching every given filter."""
        return [
            r
            for r in self.records
            if (path_prefix is None or r.path.startswith(path_prefix))
            and (status is None or r.status == status)
            and (group is None or r.group == group)
            and (login is None or r.login == login)
            and (method is None or r.method == method)
            and (dropped is None or r.dropped == dropped)
        ]

    def count(
        self,
        path_prefix: str | None = None,
        status: int | None = None,
        group: str | None = None,
        *,
        login: str | None = None,
        method: str | None = None,
        dropped: bool | None = None,
    ) -> int:
        """How many records match every given filter."""
        return len(self.select(path_prefix, status, group, login=login, method=method, dropped=dropped))

    def statuses(self) -> Counter[int]:
        """Count of records per HTTP status."""
        return Counter(r.status for r in self.records)

    def clear(self) -> None:
        """Forget every record and the tenant counter."""
        with self._lock:
            self._records.clear()
            self._tenant.clear()


@dataclass(frozen=True)
class RateDecision:
    """The limiter's verdict on one request, and the header values to send."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``."""
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateCounters:
    """Fixed, clock-aligned windows per ``(login, group)``: ``[floor(t/w)*w, +w)`` in server time."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(
        self,
        login: str,
        group: str,
        now: float,
        limit: int,
        window: int,
        tenant_spend: int,
        recorder: Recorder,
    ) -> RateDecision:
        """Count one request (unless the window is already spent) and say whether it may proceed."""
        start = math.floor(now / window) * window
        reset = start + window
        key = (login, group)
        current = self._windows.get(key)
        if current is None or current[0] != start:
            current = (start, tenant_spend)
            if tenant_spend:
                recorder.add_tenant(group, tenant_spend)
        count = current[1]
        if count >= limit:
            self._windows[key] = current
            return RateDecision(False, limit, 0, reset)
        self._windows[key] = (start, count + 1)
        return RateDecision(True, limit, max(0, limit - count - 1), reset)

    def used(self, login: str, group: str, now: float, window: int) -> int:
        """Requests counted so far in the current window (0 when the window has not started)."""
        start = math.floor(now / window) * window
        current = self._windows.get((login, group))
        return current[1] if current is not None and current[0] == start else 0

    def clear(self) -> None:
        """Forget every window."""
        self._windows.clear()


@dataclass
class _Credential:
    password: str
    account: str
    last_used: float


class CredentialStore:
    """Temporary VoiceTrends credentials: 32-hex login/password, expiring ``ttl`` after their last use."""

    def __init__(self) -> None:
        self._creds: dict[str, _Credential] = {}

    def issue(self, account: str, now: float) -> tuple[str, str]:
        """New temporary ``(login, password)`` for ``account``."""
        login, password = secrets.token_hex(16), secrets.token_hex(16)
        self._creds[login] = _Credential(password, account, now)
        return login, password

    def use(self, login: str, password: str, now: float, ttl: float) -> str | None:
        """The owning account if the pair is live (and mark it used), else None (expired ones are dropped)."""
        cred = self._creds.get(login)
        if cred is None or not same_secret(cred.password, password):
            return None
        if now - cred.last_used > ttl:
            del self._creds[login]
            return None
        cred.last_used = max(cred.last_used, now)
        return cred.account

    def revoke(self, account: str | None = None) -> int:
        """Invalidate every credential (of ``account`` if given); returns how many."""
        doomed = [k for k, c in self._creds.items() if account is None or c.account == account]
        for key in doomed:
            del self._creds[key]
        return len(doomed)

    def live(self, now: float, ttl: float) -> int:
        """How many credentials are still valid at ``now``."""
        return sum(1 for c in self._creds.values() if now - c.last_used <= ttl)
