"""Cache-hit latency: a VoiceTrends call served by the fleet cache against the plain store read it replaced.

* **fleet hit**: ``await plum.voicetrends.volume(...)`` on a fresh entry: argument validation, the stale
  policy check, one store read, the entry's header, the parse, ``stale``/``fetched_at`` set on the report
  and the hit counted for the fleet statistics (flushed to the store in batches).
* **plain get_value hit** (the former hit path, without even its argument validation): one
  ``store.get_value`` of the raw body and the same parse.

Both read the same report from the same store, one call of each alternating, ``--hits`` of each per
round; each round gives both medians (p50), and the table shows the median and the spread (min-max)
of ``--rounds`` rounds.  The sandbox on loopback answers the one request that fills the entry.

    python -m benchmarks.bench_cache_hit [--hits 2000] [--rounds 7] [--redis URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio

from plumasync import PlumClient, wire
from plumasync.models.voicetrends import VolumeReport
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

from .bench_stores import redis_server
from .common import table

WEEK = ("20261101", "20261107")


async def one_round(plum: PlumClient, hits: int) -> tuple[float, float]:
    """Median seconds of a fleet hit and of a plain get_value hit, alternating call by call."""
    tz = ZoneInfo(plum.timezone)
    store = plum.store
    await plum.voicetrends.volume(*WEEK)  # the entry is there (filled once by the first round)
    body = await _raw_body(plum)
    await store.set_value("bench-plain", body, 3600)
    fleet: list[float] = []
    plain: list[float] = []
    for _ in range(hits):
        start = time.perf_counter()
        await plum.voicetrends.volume(*WEEK)
        fleet.append(time.perf_counter() - start)
        start = time.perf_counter()
        raw = await store.get_value("bench-plain")
        assert raw is not None
        wire.parse_trend(raw, "json", VolumeReport, tz, endpoint="volume")
        plain.append(time.perf_counter() - start)
    return statistics.median(fleet), statistics.median(plain)


async def _raw_body(plum: PlumClient) -> bytes:
    """The body of the cached entry (its header line stripped), as the former cache stored it."""
    raw = await plum.store.get_value(f"vt-entry|{plum.groups['data']}|json|volume/{WEEK[0]}/{WEEK[1]}/day/ALL")
    assert raw is not None, "the entry was not cached"
    return raw.partition(b"\n")[2]


async def measure(store: str, server: SandboxServer, hits: int, rounds: int) -> list[tuple[float, float]]:
    async with sandbox_client(server, store=store) as plum:
        await one_round(plum, 50)  # warm-up: connections, first parse
        return [await one_round(plum, hits) for _ in range(rounds)]


def row(name: str, results: list[tuple[float, float]]) -> list[str]:
    fleet = [f * 1e6 for f, _ in results]
    plain = [p * 1e6 for _, p in results]
    added = [f - p for f, p in zip(fleet, plain, strict=True)]

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    return [name, cell(plain), cell(fleet), cell(added), "yes" if statistics.median(added) <= 1000 else "NO"]


def main(hits: int, rounds: int, redis_url: str | None) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(redis_url) as redis, \
            SandboxServer(SandboxConfig()) as server:
        stores = [("memory", "memory"), ("sqlite", f"sqlite:///{Path(tmp) / 'hit.db'}")]
        if redis:
            stores.append(("redis", redis))
        for name, store in stores:
            rows.append(row(name, anyio.run(measure, store, server, hits, rounds)))
        if not redis:
            rows.append(["redis", "-", "-", "skipped: no redis-server on PATH and no --redis", "-"])
    return table(f"Cache-hit latency, µs p50 per call: median (min-max) of {rounds} rounds x {hits} hits",
                 ["store", "plain get_value hit", "fleet hit (volume())", "added", "≤ 1 ms added"], rows)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis", default=None, help="a Redis URL (default: start a redis-server)")
    args = parser.parse_args()
    print(main(args.hits, args.rounds, args.redis))


if __name__ == "__main__":
    cli()
