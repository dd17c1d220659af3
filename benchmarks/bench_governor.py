"""Governor overhead per request, side by side with raw httpx.

Default: on httpx's mock transport (no network), CPU µs per request through a plain ``httpx.AsyncClient``
and through one wrapping ``GovernedTransport`` (memory store, budget never binding), and the SQLite
store's CPU µs per transaction; each round in a fresh process (``benchmarks/governor_worker.py``),
short blocks alternating within it, the least block counting (on a shared machine, the one with the
least interference).  ``--against PATH`` measures another checkout's ``plumasync`` (e.g. the
previous commit) in the same run, rounds interleaved, so before and after sit side by side.

    python -m benchmarks.bench_governor [--requests 25] [--blocks 200] [--ops 2000] [--rounds 7] [--against PATH]

``--sandbox``: the end-to-end comparison over loopback (the sandbox served in this process; plumasync's
client with its retry policy against a raw ``httpx.AsyncClient`` sending the same GET).

    python -m benchmarks.bench_governor --sandbox [--requests 2000] [--concurrency 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import anyio
import httpx

from plumasync import Budget
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

from .common import median, table, timed

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "governor_worker.py"


def _worker(tree: Path, requests: int, blocks: int, ops: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(WORKER), "--requests", str(requests), "--blocks", str(blocks),
                           "--ops", str(ops)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the worker measuring {tree} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def mock_main(requests: int, blocks: int, ops: int, rounds: int, against: str | None) -> str:
    trees = [("this checkout", ROOT)] + ([(f"`{against}`", Path(against).resolve())] if against else [])
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for n in range(rounds):
        for label, tree in trees if n % 2 == 0 else trees[::-1]:
            runs[label].append(_worker(tree, requests, blocks, ops))
    rows = []
    for label, results in runs.items():
        raw = [r["raw"] for r in results]
        governed = [r["governed"] for r in results]
        overhead = [r["governed"] - r["raw"] for r in results]
        scoped = [r["scoped"] - r["raw"] for r in results]
        rows.append([label, _spread(raw), _spread(governed), _spread(overhead), _spread(scoped),
                     f"{statistics.median(g / r for g, r in zip(governed, raw, strict=True)):.2f}",
                     _spread([r["sqlite"] for r in results])])
    return table(
        f"Governor overhead on httpx.MockTransport, CPU µs per request (per round, a fresh process: the least of "
        f"{blocks} alternating blocks of {requests} requests; median (min–max) of {rounds} rounds)",
        ["checkout", "raw httpx", "governed", "overhead", "overhead + 1 cancel scope", "ratio",
         "SQLite store µs per transaction"],
        rows,
    )


async def sandbox_main(requests: int, concurrency: int, rounds: int) -> str:
    config = SandboxConfig(calls_count=100, limits={"calllogs": (10**9, 900)})
    start = config.start_of_calls
    path = f"calls/logs/{start}/{start + 3600}"
    with SandboxServer(config) as server:
        raw = httpx.AsyncClient(auth=("demo", "demo-password"), headers={"Accept": "application/json"},
                                limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
        plum = sandbox_client(server, budget=Budget(limit=10**9, window=900))
        limiter = anyio.Semaphore(concurrency)

        async def fan_out(one: object) -> None:
            async def task() -> None:
                async with limiter:
                    await one()  # type: ignore[operator]

            async with anyio.create_task_group() as tg:
                for _ in range(requests):
                    tg.start_soon(task)

        async def raw_one() -> None:
            r = await raw.get(server.calllogs_url + path, params={"limit": 1})
            r.raise_for_status()

        async def plum_one() -> None:
            await plum.request("calllogs", "calllogs", "GET", path, params={"limit": 1}, auth=plum.dev_auth())

        async with raw, plum:
            await fan_out(raw_one)  # warm-up: connections, imports, JIT-free caches
            await fan_out(plum_one)
            raw_times, plum_times = [], []
            for _ in range(rounds):
                raw_times.append(await timed(lambda: fan_out(raw_one)))
                plum_times.append(await timed(lambda: fan_out(plum_one)))
    r, p = median(raw_times), median(plum_times)
    return table(
        f"Governor overhead ({requests} requests, concurrency {concurrency}, median of {rounds} alternating rounds)",
        ["client", "seconds", "requests/s", "ratio to raw httpx"],
        [["raw httpx.AsyncClient", f"{r:.3f}", f"{requests / r:.0f}", "1.00"],
         ["plumasync (governed + retry policy)", f"{p:.3f}", f"{requests / p:.0f}", f"{p / r:.2f}"]],
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", action="store_true", help="the end-to-end comparison over loopback")
    parser.add_argument("--requests", type=int, default=None, help="per block (default 25; sandbox: in all, 2000)")
    parser.add_argument("--blocks", type=int, default=200, help="blocks per client kind and round")
    parser.add_argument("--ops", type=int, default=2000, help="SQLite transaction pairs per round")
    parser.add_argument("--concurrency", type=int, default=16, help="sandbox only")
    parser.add_argument("--rounds", type=int, default=None, help="default 7 (sandbox: 5)")
    parser.add_argument("--against", default=None, help="another checkout to measure in the same run")
    args = parser.parse_args()
    if args.sandbox:
        print(anyio.run(sandbox_main, args.requests or 2000, args.concurrency, args.rounds or 5))
    else:
        print(mock_main(args.requests or 25, args.blocks, args.ops, args.rounds or 7, args.against))


if __name__ == "__main__":
    cli()
