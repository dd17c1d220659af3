"""Harvest throughput and client CPU: plumasync on each engine against plain loops doing the same work.

Four contestants harvest the same sandbox period (list → detail → SQLite) with the same concurrency:

* ``plumasync httpx`` and ``plumasync aiohttp``: ``PlumClient(engine=...).calllogs.harvest(...)`` into
  its SQLite sink (governor, retry policy, typed parsing, batched writes);
* ``plain httpx`` and ``plain aiohttp``: a hand-written loop on the bare library doing equal work: the
  listing pages, one detail request per log from the same number of workers, ``json.loads`` and a
  status check on every body, the same fields converted, and ``INSERT OR IGNORE`` batches of 200 rows
  into the same ``calls`` schema (WAL, one transaction per batch);
* ``plain httpx API on aiohttp`` (context): the same plain loop through ``httpx.AsyncClient`` on
  plumasync's aiohttp engine transport: what httpx's client layer costs above bare aiohttp, the floor of
  ``plumasync aiohttp`` before any plumasync work.

The sandbox runs in a process of its own, with a budget far above the work (the governor never waits),
restarted for each round.  Every measured run is a fresh child process, so its CPU time
(``time.process_time``: the client alone, its writer thread included) and peak RSS are its own.  The
rounds interleave the contestants (rotating their order), and the table gives the median and the spread
(min–max) over the rounds, with each plumasync engine's ratio to its own plain loop, round by round.

    python -m benchmarks.bench_harvest [--sizes 20000] [--runs 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import free_port, median, peak_rss_mb, serve_sandbox, table

SPACING = 1.0
#: The period's start: two days ago on the hour, so that 100,000 calls a second apart are all within the
#: API's 5-day retention (an older call is counted as expired, never fetched).  Given to every child.
START = int(time.time()) // 3600 * 3600 - 2 * 86_400
AUTH = ("demo", "demo-password")
KINDS = ("plumasync-httpx", "plain-httpx", "plumasync-aiohttp", "plain-aiohttp", "plain-httpx-api-on-aiohttp")
BASELINE = {"plumasync-httpx": "plain-httpx", "plumasync-aiohttp": "plain-aiohttp",
            "plain-httpx-api-on-aiohttp": "plain-aiohttp"}
BATCH = 200
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (log_id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, dest TEXT NOT NULL,
    type TEXT NOT NULL, src TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, location TEXT,
    timestamp INTEGER, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS calls_start ON calls(start);
"""
INSERT = ('INSERT OR IGNORE INTO calls (log_id, session_id, dest, type, src, start, "end", location, timestamp, '
          "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def serve(port: int, logs: int) -> subprocess.Popen[bytes]:
    return serve_sandbox(port, f"calls_count={logs}, calls_spacing={SPACING}, calls_start={START}, retention=None, "
                               "limits={'calllogs': (10**9, 900)}")


# -- the contestants (each runs in a child process) ----------------------------------------------------


async def child_plumasync(engine: str, url: str, logs: int, concurrency: int, db: str) -> dict[str, float]:
    from plumasync import Budget, PlumClient

    async with PlumClient(login=AUTH[0], password=AUTH[1], calllogs_url=url + "/ws/", voicetrends_url=url + "/api/",
                          budget=Budget(limit=10**9, window=900), store="memory", engine=engine) as plum:  # type: ignore[arg-type]
        assert plum.engine == engine
        wall, cpu = time.perf_counter(), time.process_time()
        summary = await plum.calllogs.harvest(START, START + int(logs * SPACING) + 1, sink=db,
                                              concurrency=concurrency).run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert summary.fetched == logs and summary.complete, summary
    return {"seconds": wall, "cpu": cpu, "rss": peak_rss_mb(), "logs": summary.fetched}


def _body(raw: bytes) -> Any:
    """The ``result`` of a success envelope (what every contestant checks)."""
    doc = json.loads(raw)
    if doc.get("status") != "success":
        raise RuntimeError(doc.get("error"))
    return doc["result"]


class PlainPipeline:
    """The hand-written list → detail → SQLite loop, on any ``get(path, params) -> bytes``."""

    def __init__(self, get: Any, db: str, concurrency: int) -> None:
        import sqlite3

        self.get = get
        self.concurrency = concurrency
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.rows: list[tuple[Any, ...]] = []
        self.stored = 0

    async def listing(self, logs: int) -> list[dict[str, str]]:
        entries: list[dict[str, str]] = []
        while True:
            result = _body(await self.get(f"/ws/calls/logs/{START}/{START + int(logs * SPACING) + 1}",
                                          {"offset": str(len(entries)), "limit": "10000"}))
            entries += result["logs"]
            if not result["logs"] or len(entries) >= int(result["total_logs"]):
                return entries

    def flush(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(INSERT, self.rows)
        self.db.execute("COMMIT")
        self.stored += len(self.rows)
        self.rows = []

    async def run(self, logs: int) -> int:
        import anyio

        entries = await self.listing(logs)
        send, receive = anyio.create_memory_object_stream[dict[str, str]](self.concurrency * 2)

        async def worker() -> None:
            async with receive.clone() as mine:
                async for e in mine:
                    d = _body(await self.get(f"/ws/calls/log/{e['log_id']}", None))
                    self.rows.append((int(e["log_id"]), e["session_id"], e["dest"], e["type"], e["src"],
                                      int(e["start"]), int(e["end"]), d["location"], int(d["timestamp"]), d["log"]))
                    if len(self.rows) >= BATCH:
                        self.flush()

        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(worker)
            async with send, receive:
                for entry in entries:
                    await send.send(entry)
        if self.rows:
            self.flush()
        self.db.close()
        return self.stored


async def child_plain_httpx(url: str, logs: int, concurrency: int, db: str) -> dict[str, float]:
    import httpx

    async with httpx.AsyncClient(base_url=url, auth=AUTH, headers={"Accept": "application/json"}, timeout=60,
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=50)) as http:
        async def get(path: str, params: dict[str, str] | None) -> bytes:
            response = await http.get(path, params=params)
            response.raise_for_status()
            return response.content

        return await _timed(PlainPipeline(get, db, concurrency), logs)


async def child_plain_httpx_api_on_aiohttp(url: str, logs: int, concurrency: int, db: str) -> dict[str, float]:
    import httpx

    from plumasync._aiohttp_engine import AiohttpEngine
    from plumasync._base_client import _ssl_context

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=url, auth=AUTH, headers={"Accept": "application/json"}, timeout=60,
                                 transport=AiohttpEngine(_ssl_context(), limits)) as http:
        async def get(path: str, params: dict[str, str] | None) -> bytes:
            response = await http.get(path, params=params)
            response.raise_for_status()
            return response.content

        return await _timed(PlainPipeline(get, db, concurrency), logs)


async def child_plain_aiohttp(url: str, logs: int, concurrency: int, db: str) -> dict[str, float]:
    import aiohttp

    headers = {"Accept": "application/json", "Authorization": httpx_basic(*AUTH)}
    async with aiohttp.ClientSession(url, headers=headers,
                                     connector=aiohttp.TCPConnector(limit=100),
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def get(path: str, params: dict[str, str] | None) -> bytes:
            async with http.get(path, params=params) as response:
                response.raise_for_status()
                return await response.read()

        return await _timed(PlainPipeline(get, db, concurrency), logs)


def httpx_basic(login: str, password: str) -> str:
    """The ``Authorization`` header of HTTP Basic auth (sent on every request, as httpx does)."""
    import base64

    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


async def _timed(pipeline: PlainPipeline, logs: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    stored = await pipeline.run(logs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert stored == logs, stored
    return {"seconds": wall, "cpu": cpu, "rss": peak_rss_mb(), "logs": stored}


# -- the parent: interleaved rounds, medians, spreads ----------------------------------------------------


def run_child(kind: str, url: str, logs: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_harvest", "--child", kind, "--url", url,
                              "--sizes", str(logs), "--concurrency", str(concurrency), "--db", str(Path(tmp) / "c.db"),
                              "--start", str(START)],
                             check=True, capture_output=True, text=True, env=os.environ)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def rounds(logs: int, runs: int, concurrency: int) -> list[dict[str, dict[str, float]]]:
    """``runs`` rounds of every contestant, in a rotated order, each round on a fresh sandbox."""
    results = []
    for r in range(runs):
        port = free_port()
        server = serve(port, logs)
        try:
            order = KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]
            results.append({kind: run_child(kind, f"http://127.0.0.1:{port}", logs, concurrency) for kind in order})
        finally:
            server.terminate()
            server.wait(10)
        print(f"  {logs:,} logs, round {r + 1}/{runs} done", file=sys.stderr, flush=True)
    return results


def spread(values: list[float], fmt: str) -> str:
    """``median (min–max)``."""
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def main(sizes: list[int], runs: int, concurrency: int) -> str:
    rows = []
    for logs in sizes:
        results = rounds(logs, runs, concurrency)
        for kind in KINDS:
            rates = [r[kind]["logs"] / r[kind]["seconds"] for r in results]
            cpu = [r[kind]["cpu"] / r[kind]["logs"] * 1e6 for r in results]
            base = BASELINE.get(kind)
            ratio = spread([(r[kind]["logs"] / r[kind]["seconds"]) / (r[base]["logs"] / r[base]["seconds"])
                            for r in results], ".2f") if base else "1 (baseline)"
            cpu_ratio = spread([r[kind]["cpu"] / r[base]["cpu"] for r in results], ".2f") if base else "1"
            rows.append([f"{logs:,}", kind, spread(rates, ".0f"), ratio, spread(cpu, ".0f"), cpu_ratio,
                         f"{median([r[kind]['rss'] for r in results]):.0f} MB"])
    return table(f"Harvest into SQLite, equal work, budget never binding (concurrency {concurrency}, "
                 f"median (min–max) of {runs} interleaved rounds, sandbox in its own process)",
                 ["logs", "client", "logs/s", "× its plain loop", "client CPU µs/log", "CPU × plain", "peak RSS"],
                 rows)


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", choices=KINDS)
    parser.add_argument("--url")
    parser.add_argument("--db")
    parser.add_argument("--start", type=int)
    args = parser.parse_args()
    if args.child:
        global START
        START = args.start
        import anyio

        logs, kind = args.sizes[0], args.child
        if kind.startswith("plumasync-"):
            result = anyio.run(child_plumasync, kind.split("-", 1)[1], args.url, logs, args.concurrency, args.db)
        else:
            child = {"plain-httpx": child_plain_httpx, "plain-aiohttp": child_plain_aiohttp,
                     "plain-httpx-api-on-aiohttp": child_plain_httpx_api_on_aiohttp}[kind]
            result = anyio.run(child, args.url, logs, args.concurrency, args.db)
        print(json.dumps(result))
        return
    print(main(args.sizes, args.runs, args.concurrency))


if __name__ == "__main__":
    cli()
