"""Harvest throughput and memory: 10k and 100k logs into SQLite, against a plain httpx loop.

The sandbox runs in its own process (budget far above the work, so it never binds).  Each measured run
is a fresh child process, so its peak RSS is its own: ``harvest`` (plumasync: listing pages, detail
fan-out, typed parsing, SQLite writes) and ``raw`` (a plain httpx loop sending the same requests with the
same concurrency, decoding JSON, storing nothing).

    python -m benchmarks.bench_harvest [--sizes 10000 100000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import peak_rss_mb, table

SPACING = 1.0
START = 1_790_000_000  # fixed: the child processes and the sandbox agree on the period


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, logs: int) -> subprocess.Popen[bytes]:
    code = ("from plumasync.sandbox import SandboxConfig, serve; "
            f"serve(SandboxConfig(calls_count={logs}, calls_spacing={SPACING}, calls_start={START}, "
            f"limits={{'calllogs': (10**9, 900)}}), port={port})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sandbox did not start")


async def child_harvest(url: str, logs: int, concurrency: int, db: str) -> dict[str, float]:
    from plumasync import Budget, PlumClient

    async with PlumClient(login="demo", password="demo-password", calllogs_url=url + "/ws/",
                          voicetrends_url=url + "/api/", budget=Budget(limit=10**9, window=900)) as plum:
        t = time.perf_counter()
        summary = await plum.calllogs.harvest(START, START + int(logs * SPACING) + 1, sink=db,
                                              concurrency=concurrency).run()
        seconds = time.perf_counter() - t
    assert summary.fetched == logs, summary
    return {"seconds": seconds, "rss": peak_rss_mb(), "logs": summary.fetched}


async def child_raw(url: str, logs: int, concurrency: int) -> dict[str, float]:
    import anyio
    import httpx

    async with httpx.AsyncClient(auth=("demo", "demo-password"), headers={"Accept": "application/json"},
                                 timeout=60) as http:
        t = time.perf_counter()
        ids: list[str] = []
        offset = 0
        while True:
            r = await http.get(f"{url}/ws/calls/logs/{START}/{START + int(logs * SPACING) + 1}",
                               params={"offset": offset, "limit": 10_000})
            result = r.json()["result"]
            ids += [entry["log_id"] for entry in result["logs"]]
            offset += len(result["logs"])
            if not result["logs"] or offset >= int(result["total_logs"]):
                break
        send, receive = anyio.create_memory_object_stream[str](concurrency * 2)
        fetched = 0

        async def worker() -> None:
            nonlocal fetched
            async for log_id in receive:
                (await http.get(f"{url}/ws/calls/log/{log_id}")).json()
                fetched += 1

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
            async with send:
                for log_id in ids:
                    await send.send(log_id)
        seconds = time.perf_counter() - t
    assert fetched == logs
    return {"seconds": seconds, "rss": peak_rss_mb(), "logs": fetched}


def run_child(kind: str, url: str, logs: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_harvest", "--child", kind, "--url", url,
                              "--sizes", str(logs), "--concurrency", str(concurrency), "--db", str(Path(tmp) / "c.db")],
                             check=True, capture_output=True, text=True, env=os.environ)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(sizes: list[int], concurrency: int) -> str:
    rows = []
    for logs in sizes:
        port = free_port()
        server = serve(port, logs)
        try:
            url = f"http://127.0.0.1:{port}"
            raw = run_child("raw", url, logs, concurrency)
            ours = run_child("harvest", url, logs, concurrency)
        finally:
            server.terminate()
            server.wait(10)
        rows.append([f"{logs:,}", f"{raw['logs'] / raw['seconds']:.0f}", f"{ours['logs'] / ours['seconds']:.0f}",
                     f"{raw['seconds'] / ours['seconds']:.2f}", f"{raw['rss']:.0f} MB", f"{ours['rss']:.0f} MB"])
    return table(f"Harvest into SQLite vs a plain httpx loop (concurrency {concurrency}, sandbox in its own process)",
                 ["logs", "plain httpx logs/s", "plumasync logs/s", "throughput ratio", "plain peak RSS",
                  "plumasync peak RSS"], rows)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", choices=["harvest", "raw"])
    parser.add_argument("--url")
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.child:
        import anyio

        if args.child == "harvest":
            result = anyio.run(child_harvest, args.url, args.sizes[0], args.concurrency, args.db)
        else:
            result = anyio.run(child_raw, args.url, args.sizes[0], args.concurrency)
        print(json.dumps(result))
        return
    print(main(args.sizes, args.concurrency))


if __name__ == "__main__":
    cli()
