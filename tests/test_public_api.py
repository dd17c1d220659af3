"""The public surface: what ``import plumasync`` offers is listed, sorted and documented, once."""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import plumasync

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_sorted_and_complete() -> None:
    """Every public name bound in the package is in ``__all__``, and ``__all__`` is sorted (httpx's rule)."""
    public = sorted(name for name, value in vars(plumasync).items()
                    if (not name.startswith("_") or name == "__version__") and not isinstance(value, types.ModuleType))
    assert plumasync.__all__ == public
    assert plumasync.__all__ == sorted(plumasync.__all__)


def test_every_exported_name_has_a_docstring() -> None:
    for name in plumasync.__all__:
        value = getattr(plumasync, name)
        if isinstance(value, type) or callable(value):
            assert (value.__doc__ or "").strip(), name


def test_the_version_is_written_once_in_pyproject() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = re.findall(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared == [plumasync.__version__]
    source = (ROOT / "plumasync" / "__init__.py").read_text()
    assert plumasync.__version__ not in source  # read from the package metadata, not written again


def test_harvest_and_drain_are_reachable_from_the_top() -> None:
    from plumasync.harvest import Harvest
    from plumasync.transport import Drain

    assert plumasync.Harvest is Harvest and plumasync.Drain is Drain
    assert issubclass(plumasync.Abandoned, plumasync.PlumError)
    assert issubclass(plumasync.StoreBusyError, plumasync.PlumError)
    assert issubclass(plumasync.StoreBusyError, TimeoutError)


def test_clocks_are_exported_from_one_place() -> None:
    clocks = ("Clock", "FakeClock", "ScaledClock", "SystemClock")
    assert all(name in plumasync.__all__ for name in clocks)
    for module in ("plumasync.testing", "plumasync.governor", "plumasync.sandbox"):
        exported = set(getattr(importlib.import_module(module), "__all__", ()))
        assert exported.isdisjoint(clocks), module
