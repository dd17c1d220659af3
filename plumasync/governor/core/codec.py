"""Reading a stored group state back: a garbage document is a typed, recoverable error.

A store that finds a :class:`CorruptState` resets that group's state with a warning: the group starts
cold (one probe), which the server's next answer corrects.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import PlumError
from .model import Mode

__all__ = ["CorruptState", "checked_document"]


class CorruptState(PlumError, ValueError):
    """A stored group state that is not a ``GroupState`` document."""


_NUMBERS = ("remaining", "reset", "reset_local", "offset", "paused_until", "server_reset", "heard",
            "suspect_offset", "rtt")
_INTS = ("answers_in_window", "admitted", "throttled", "past")
_BOOLS = ("contended", "learned", "far")
_MODES = frozenset(m.value for m in Mode)
#: Field names of documents written by earlier versions (a store outlives an upgrade).
_RENAMED = {"log": "admission_times", "used": "answers_in_window"}


def _number(value: object, *, optional: bool = True) -> bool:
    if value is None:
        return optional
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def checked_document(raw: Any) -> dict[str, Any]:
    """``raw`` (names of earlier versions mapped to today's) if it has the shape of ``GroupState.to_json()``,
    else :class:`CorruptState`."""
    if not isinstance(raw, dict):
        raise CorruptState("stored group state is not an object")
    data: dict[str, Any] = {_RENAMED.get(str(name), str(name)): value for name, value in raw.items()}
    permits, times = data.get("permits", {}), data.get("admission_times", [])
    ok = (_int(data.get("limit")) and data["limit"] >= 1
          and _number(data.get("window"), optional=False) and data["window"] > 0
          and data.get("mode", Mode.COLD.value) in _MODES
          and all(_number(data.get(f)) for f in _NUMBERS)
          and all(_int(data[f]) for f in _INTS if f in data)
          and all(isinstance(data[f], bool) for f in _BOOLS if f in data)
          and isinstance(permits, dict) and isinstance(times, list)
          and all(isinstance(k, str) and _number(v, optional=False) for k, v in permits.items())
          and all(_number(t, optional=False) for t in times))
    if not ok:
        raise CorruptState("stored group state has a field of the wrong type or out of range")
    return data
