"""A dlt source (``plumasync[dlt]``): call logs with details, session lines and error lines, for any dlt
destination (DuckDB, Parquet, Postgres, ...), instead of more built-in sinks.

``calls`` is incremental on the call start, with its cursor in dlt's own state: a second run lists from
the last start loaded and fetches only new calls (``merge`` on ``log_id`` drops the boundary's repeats).
Cost per run: the listing pages (one request per 10,000 calls) plus one calls/log per new call, oldest
first, through the governor; ``sessions`` and ``errors`` cost one request per page of lines.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import dlt
from dlt.sources import DltResource

from .client import PlumClient

__all__ = ["plum_calllogs"]


@dlt.source(name="plum")
def plum_calllogs(client_options: dict[str, Any], since: int, until: int | None = None,
                  concurrency: int = 8) -> list[DltResource]:
    """The Call Logs of ``[since, until)`` (``until`` None: now at each run).  ``client_options`` are
    :class:`~plumasync.client.PlumClient` keywords (credentials, URLs, budget, store)."""

    def end() -> int:
        return int(time.time()) if until is None else until

    @dlt.resource(primary_key="log_id", write_disposition="merge")
    def calls(start: dlt.sources.incremental[int] = dlt.sources.incremental(  # noqa: B008
            "start", initial_value=since)) -> Iterator[dict[str, Any]]:
        # The harvest runs to the end on its own event loop into a temporary JSON Lines file, which is
        # then streamed: dlt drives generators from its own tasks, and memory stays bounded.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "calls.jsonl"
            anyio.run(_harvest, client_options, start.last_value or since, end(), concurrency, path)
            if not path.exists():
                return
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    yield _row(json.loads(line))

    @dlt.resource(write_disposition="replace")
    def sessions() -> Iterator[dict[str, Any]]:
        yield from anyio.run(_lines, client_options, "sessions", since, end())

    @dlt.resource(write_disposition="replace")
    def errors() -> Iterator[dict[str, Any]]:
        yield from anyio.run(_lines, client_options, "errors", since, end())

    return [calls, sessions, errors]


async def _harvest(options: dict[str, Any], start: int, end: int, concurrency: int, path: Path) -> None:
    async with PlumClient(**options) as plum:
        await plum.calllogs.harvest(start, end, concurrency=concurrency, jsonl=path).run()


async def _lines(options: dict[str, Any], service: str, start: int, end: int) -> list[dict[str, Any]]:
    async with PlumClient(**options) as plum:
        listing = plum.calllogs.sessions if service == "sessions" else plum.calllogs.errors
        return [{"line": line.raw} async for line in listing(start, end)]  # type: ignore[attr-defined]


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record with ``start``/``end`` as Unix seconds (the incremental cursor's type)."""
    from datetime import datetime

    for key in ("start", "end"):
        value = record.get(key)
        if isinstance(value, str) and not value.isdigit():
            record[key] = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        elif isinstance(value, str):
            record[key] = int(value)
    return record
