"""The file-system side of the sinks: what a sink refuses up front, its lock, and JSON Lines recovery.

Everything here runs when a sink is opened, before the harvest sends any request, so a sink that
cannot work costs no budget:

* a path that is not a regular file (``/dev/full``, a FIFO, a directory) is refused: reading it back
  would never end, writing it would lose the data;
* a file or directory this process cannot write (read-only mount, immutable file) is refused;
* one harvest at a time per file: an exclusive advisory lock (``flock``) is held while the sink is open,
  and a second harvest into the same file is refused with a message saying so, instead of fetching
  the same logs twice.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import attrs

from .errors import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, one harvest per file is on the user
    fcntl = None  # type: ignore[assignment]

#: How every line a JSON Lines sink writes begins (compact JSON, log_id first).
RECORD_START = b'{"log_id":'

__all__ = ["RECORD_START", "JSONLScan", "check_regular", "check_writable", "lock_file", "open_locked", "record_id",
           "scan_jsonl"]


def check_regular(path: Path) -> None:
    """Refuse a path that exists and is not a regular file (symlinks are followed)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigurationError(f"cannot use {str(path)!r} as a sink: {exc}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise ConfigurationError(f"cannot use {str(path)!r} as a sink: it is {kind}; give the path of a "
                                 "regular file (it is created if absent)")


def check_writable(path: Path) -> None:
    """Refuse a file, or the directory of a new one, that this process cannot write."""
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        where = "file" if target is path else "directory"
        raise ConfigurationError(f"cannot write the sink {str(path)!r}: its {where} is read-only "
                                 "(read-only mount or permissions)")


def lock_file(fd: int, path: Path) -> None:
    """Take the sink's exclusive lock on ``fd`` now, or refuse: another harvest is writing this file."""
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ConfigurationError(
                f"{str(path)!r} is in use by another harvest (it holds the file's lock): wait for it to "
                "finish, or harvest into another file") from None
        raise


def open_locked(path: Path, kind: str) -> int:
    """Open (creating if absent) ``path`` read-write and take the sink's lock; returns the descriptor."""
    check_writable(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the {kind} sink {str(path)!r}: {exc}") from None
    try:
        lock_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


@attrs.define
class JSONLScan:
    """What a JSON Lines sink holds: its records' log ids and where its damage is."""

    ids: set[int] = attrs.Factory(set)
    records: int = 0
    #: 1-based numbers of complete lines that are not plumasync records (left in place, skipped).
    damaged: list[int] = attrs.Factory(list)
    #: Lines read, the torn last one included.
    lines: int = 0
    #: Bytes up to the end of the last complete (newline-terminated) line.
    end: int = 0
    size: int = 0
    #: The last line has no newline but is a whole record (only the newline was lost).
    tail_is_record: bool = False
    #: The last line has no newline and begins as a plumasync record does (a torn one of ours).
    tail_is_ours: bool = False

    def foreign(self) -> bool:
        """True when the file holds something, and none of it is (or was being written as) a record."""
        return self.records == 0 and self.size > 0 and (bool(self.damaged) or not self.tail_is_ours)


def record_id(raw: bytes) -> int | None:
    """The log id of a line written by a plumasync sink, or None when the line is not one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or "detail" not in data:
        return None
    value = data.get("log_id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        ident = int(value)
    except ValueError:
        return None
    return ident if ident > 0 else None


def scan_jsonl(path: Path) -> JSONLScan:
    """Read a JSON Lines sink once: every record's id, the damaged lines, the torn tail (if any)."""
    scan = JSONLScan()
    with path.open("rb") as f:
        for raw in f:
            scan.lines += 1
            ident = record_id(raw)
            if not raw.endswith(b"\n"):  # the last line, without its newline
                scan.tail_is_record = ident is not None
                scan.tail_is_ours = raw.startswith(RECORD_START)
                if ident is not None:
                    scan.ids.add(ident)
                    scan.records += 1
                break
            scan.end += len(raw)
            if ident is not None:
                scan.ids.add(ident)
                scan.records += 1
            elif raw.strip():
                scan.damaged.append(scan.lines)
        scan.size = f.tell()
    return scan


def read_watermark(path: Path) -> int | None:
    """The follow mode's watermark kept in ``path`` (None: absent or unreadable, so start from --since)."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def write_watermark(path: Path, start: int) -> None:
    """Replace ``path`` with ``start`` atomically (a crash leaves the old watermark or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{int(start)}\n", encoding="ascii")
    os.replace(tmp, path)
