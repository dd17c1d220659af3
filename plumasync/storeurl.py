"""Store URLs: what ``store=``, ``--store`` and ``PLUM_STORE`` accept, parsed in one place.

- ``memory``: this process only (the library's default).
- A SQLite file shared by the processes of one host, in the SQLAlchemy convention: ``sqlite:///`` and
  then the path, so ``sqlite:///budget.db`` is relative to the current directory and
  ``sqlite:////var/lib/app/budget.db`` (four slashes) is absolute.  A bare filesystem path
  (``/var/lib/app/budget.db``, ``./budget.db``, ``~/budget.db``) means the same file.  Option:
  ``?timeout=SECONDS``.
- Redis, for several hosts: ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS) or
  ``unix:///path/to/redis.sock``; the options are the Redis store's.

Parsing is pure (no file is touched) so that a command line can refuse a bad URL before any request;
:meth:`StoreURL.check_directory` is the one look at the file system, made when the store is opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from .errors import ConfigurationError

__all__ = ["StoreURL", "parse_store_url", "redact_store_url"]

Kind = Literal["memory", "sqlite", "redis"]

_FORMS = ("memory, a file path, sqlite:///relative/path.db, sqlite:////absolute/path.db or "
          "redis://host:6379/0")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
#: The Redis store's own URL options, and how each is read.
_REDIS_OPTIONS: dict[str, Callable[[str], Any]] = {"expected_workers": int, "fallback_retry": float, "prefix": str}


@attrs.frozen
class StoreURL:
    """A parsed store URL.  ``path`` is the SQLite file, absolute; ``url`` may hold a Redis password."""

    kind: Kind
    url: str = attrs.field(repr=False)
    path: str | None = None
    #: The store's options from the query: SQLite's ``timeout``; Redis' ``expected_workers``,
    #: ``fallback_retry`` and ``prefix`` (redis-py's own options stay in ``url``).
    options: dict[str, Any] = attrs.field(factory=dict)
    #: The path as written in a ``sqlite:///`` URL when it was relative (errors then show the absolute form).
    written: str | None = None

    def check_directory(self) -> None:
        """Refuse a SQLite path whose directory does not exist, naming the absolute path it resolved to."""
        if self.kind != "sqlite" or self.path is None:
            return
        if os.path.isdir(self.path):
            raise ConfigurationError(f"SQLite store {self.path} is a directory: name a file in it, e.g. "
                                     f"{os.path.join(self.path, 'budget.db')}")
        folder = os.path.dirname(self.path)
        if os.path.isdir(folder):
            return
        message = f"SQLite store directory {folder} does not exist (store file {self.path})"
        if self.written is not None:
            # sqlite:///var/lib/app/b.db is relative (SQLAlchemy's convention): say how to write the other one.
            absolute = "/" + self.written
            message += (f"; sqlite:/// followed by a path is relative to the current directory: for "
                        f"{absolute} write sqlite:///{absolute} or just {absolute}")
        raise ConfigurationError(message)


def parse_store_url(text: str, *, cwd: str | None = None) -> StoreURL:
    """Parse a store URL or a bare SQLite file path (see the module docstring); costs nothing.

    Raises :class:`~plumasync.errors.ConfigurationError` (also a ValueError) for anything else: an
    unknown scheme, a SQLite URL with a host or no path, a Redis URL with a bad port or database.
    ``cwd`` resolves relative paths (default: the current directory).
    """
    value = text.strip()
    if not value:
        raise ConfigurationError(f"empty store URL: use {_FORMS}")
    if value == "memory":
        return StoreURL("memory", value)
    scheme = _SCHEME.match(value)
    if scheme is None:
        if value.lower().startswith(("sqlite:", "redis:", "rediss:", "unix:")):
            raise ConfigurationError(f"store URL {value!r} does not parse: use {_FORMS}")
        return _sqlite(value, value, {}, cwd)
    name = scheme.group(1).lower()
    if name == "sqlite":
        return _sqlite_url(value, cwd)
    if name in _REDIS_SCHEMES:
        return _redis_url(value)
    raise ConfigurationError(f"unknown store scheme {name!r} in {_shown(value)!r}: use {_FORMS}")


def _sqlite_url(url: str, cwd: str | None) -> StoreURL:
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigurationError(
            f"SQLite store URL {url!r} names a host ({parts.netloc!r}): write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path == ":memory:":
        raise ConfigurationError(f"SQLite store URL {url!r} has no file path: e.g. sqlite:////var/lib/app/budget.db")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "timeout":
            raise ConfigurationError(f"unknown SQLite store option {name!r} (known: timeout)")
        try:
            options["timeout"] = float(value)
        except ValueError:
            raise ConfigurationError(f"SQLite store timeout must be a number, got {value!r}") from None
    return _sqlite(url, path, options, cwd)


def _sqlite(url: str, path: str, options: dict[str, Any], cwd: str | None) -> StoreURL:
    expanded = os.path.expanduser(path)
    written = expanded if url != path and not os.path.isabs(expanded) else None
    absolute = os.path.abspath(os.path.join(cwd or os.getcwd(), expanded))
    return StoreURL("sqlite", url, path=absolute, options=options, written=written)


def _redis_url(url: str) -> StoreURL:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urllib checks the port only when asked
    except ValueError:
        raise ConfigurationError(f"Redis store URL {_shown(url)!r} has a bad port") from None
    if parts.scheme.lower() == "unix":
        if not parts.path:
            raise ConfigurationError(f"Redis store URL {_shown(url)!r} has no socket path")
    elif parts.path not in ("", "/") and not re.fullmatch(r"/\d+", parts.path):
        raise ConfigurationError(f"Redis store URL {_shown(url)!r}: the path must be a database number, e.g. /0")
    # The store's own options are taken out; the rest (socket_timeout, ...) is redis-py's.
    options: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = _REDIS_OPTIONS.get(name)
        if convert is None:
            rest.append((name, value))
            continue
        try:
            options[name] = convert(value)
        except ValueError:
            raise ConfigurationError("expected_workers must be an integer and fallback_retry a number "
                                     "in the Redis store URL") from None
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return StoreURL("redis", clean, options=options)


def redact_store_url(url: str) -> str:
    """``url`` without a password, in its user part or as a ``password=`` query parameter (redis-py
    accepts both): ``redis://:secret@host`` → ``redis://:***@host``."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    try:
        has_password = parts.password is not None
    except ValueError:
        has_password = "@" in netloc
    if has_password:
        host = netloc.rpartition("@")[2]
        user = netloc.rpartition("@")[0].partition(":")[0]
        netloc = f"{user}:***@{host}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name == "password" for name, _ in pairs):
        query = urlencode([(name, "***" if name == "password" else value) for name, value in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_shown = redact_store_url
