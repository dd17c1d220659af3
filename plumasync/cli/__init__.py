"""The ``plumasync`` command line (typer + rich).

Commands: ``demo``, ``harvest``, ``trends``, ``budget``, ``sandbox``; see ``plumasync --help``.
Exit codes (every command): 0 done; 1 harvest finished but some logs failed after retries; 2 usage or
validation error; 3 authentication failed; 4 other API, transport or I/O error; 130 interrupted by
Ctrl-C (143 by SIGTERM).
"""

from __future__ import annotations

from . import _budget, _demo, _harvest, _sandbox, _trends  # noqa: F401 - they register their commands
from ._app import app
from ._common import ExitCode

__all__ = ["ExitCode", "app", "main"]


def main(prog_name: str = "plumasync") -> None:
    """Entry point of the ``plumasync`` console script (and of ``python -m plumasync``)."""
    app(prog_name=prog_name)
