"""``plumasync harvest --follow`` and relative times (``--since 5d``, ``--until now``)."""

from __future__ import annotations

import json
import re
import signal
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import anyio
import attrs
import typer
from rich.console import Console

from ..calllogs import RetentionWarning
from ..follow import Follow
from ._common import ExitCode, GlobalOptions, parse_end, parse_time

__all__ = ["bound", "run_follow"]

_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def bound(text: str, option: str, *, end: bool) -> datetime:
    """A harvest bound: ``now``, a duration ago (``90s``, ``30m``, ``12h``, ``5d``) or what
    :func:`parse_time`/:func:`parse_end` accept."""
    stripped = text.strip().lower()
    if stripped == "now":
        return datetime.fromtimestamp(int(time.time()), timezone.utc)
    match = _RELATIVE.fullmatch(stripped)
    if match:
        ago = int(match.group(1)) * _UNIT[match.group(2)]
        return datetime.fromtimestamp(int(time.time()) - ago, timezone.utc)
    return parse_end(text, option) if end else parse_time(text, option)


async def run_follow(opts: GlobalOptions, first: datetime, number: str | None, target: Path, is_jsonl: bool,
                     concurrency: int, page_size: int, as_json: bool) -> int:
    """Follow until SIGTERM/SIGINT; print the totals; exit 143/130 (stopped as asked)."""
    caught: list[int] = []
    async with opts.client() as plum:
        with warnings.catch_warnings():  # already said once, in the CLI's own words
            warnings.simplefilter("ignore", RetentionWarning)
            follower = Follow(plum, first.timestamp(), out=None if is_jsonl else target,
                              jsonl=target if is_jsonl else None, number=number, concurrency=concurrency,
                              page_size=page_size)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_stop_on_signal, follower, caught)
                totals = await follower.run()
                tg.cancel_scope.cancel()
    record = {**attrs.asdict(totals), "watermark": follower.watermark(), "out": str(target)}
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        Console(highlight=False).print(
            f"Follow stopped after {totals.cycles} cycle(s): {totals.fetched} fetched, {totals.expired} expired, "
            f"{totals.failed} failed, {totals.requests} requests; watermark {record['watermark']} in {target}",
            markup=False, soft_wrap=True)
    if not caught:
        return ExitCode.OK
    return ExitCode.INTERRUPTED if caught[0] == signal.SIGINT else ExitCode.TERMINATED


async def _stop_on_signal(follower: Follow, caught: list[int]) -> None:
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                caught.append(signum)
                follower.stop()
    except (NotImplementedError, RuntimeError):  # no signal receiver here (Windows, not the main thread)
        await anyio.sleep_forever()
