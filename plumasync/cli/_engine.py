"""``--engine``: which HTTP implementation sends a command's requests (see :mod:`plumasync.engine`)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..engine import check_engine
from ..errors import ConfigurationError

__all__ = ["ENGINE_HELP", "EngineOpt", "parse_engine"]

ENGINE_HELP = ("HTTP engine: auto (aiohttp when plumasync[aiohttp] is installed, else httpx), httpx, or aiohttp "
               "(less CPU per request; asyncio only). Env PLUM_ENGINE.")
#: ``--engine`` after a command's name (it overrides the one given before).
EngineOpt = Annotated[str | None, typer.Option(
    "--engine", show_default=False, metavar="auto|httpx|aiohttp",
    rich_help_panel="Connection (also accepted before the command; env vars apply)", help=ENGINE_HELP)]


def parse_engine(text: str, option: str = "--engine") -> str:
    """``--engine`` checked (a known name, installed) before any request, or a usage error (exit 2)."""
    try:
        return check_engine(text.strip().lower())
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
