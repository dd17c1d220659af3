"""A simulated dashboard workload: upstream requests with and without coalescing and the cache.

``users`` dashboard users refresh ``rounds`` times, each refresh asking for a few charts drawn from a
small pool of overlapping queries (most people look at the same week); refreshes of one round arrive
together.  The same workload runs three times against the sandbox — no coalescing and no cache, then
coalescing only, then coalescing plus the cache — and the sandbox's recorder counts upstream requests.

    python -m benchmarks.bench_dashboard [--users 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random

import anyio

from plumasync import Budget, CachePolicy
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

from .common import table

POOL = [("volume", "20261101", "20261107"), ("volume", "20261108", "20261114"),
        ("events", "20261101", "20261107"), ("performance", "20261101", "20261107"),
        ("profile", "20261101", "20261130"), ("volume", "20261116", "20261122")]


async def run(policy: CachePolicy, users: int, rounds: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    with SandboxServer(SandboxConfig(limits={"data": (10**6, 900)})) as server:
        async with sandbox_client(server, cache=policy, budget=Budget(limit=10**6, window=900)) as plum:
            calls = 0
            for _ in range(rounds):
                async with anyio.create_task_group() as tg:
                    for _ in range(users):
                        for resource, first, last in rng.sample(POOL, 3):
                            calls += 1
                            tg.start_soon(getattr(plum.voicetrends, resource), first, last)
        return calls, server.app.recorder.count(path_prefix="/api/", method="GET")


async def main(users: int, rounds: int) -> str:
    rows = []
    baseline = None
    for name, policy in (("no coalescing, no cache", CachePolicy(enabled=False, coalesce=False)),
                         ("coalescing only", CachePolicy(enabled=False)),
                         ("coalescing + cache (default)", CachePolicy())):
        calls, upstream = await run(policy, users, rounds, seed=7)
        baseline = baseline or upstream
        rows.append([name, str(calls), str(upstream), f"{upstream / baseline:.3f}", f"{baseline / upstream:.0f}x"])
    return table(f"Dashboard workload ({users} users x {rounds} refreshes x 3 charts, pool of {len(POOL)} queries)",
                 ["configuration", "calls", "upstream requests", "ratio to baseline", "saving"], rows)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(anyio.run(main, args.users, args.rounds))


if __name__ == "__main__":
    cli()
