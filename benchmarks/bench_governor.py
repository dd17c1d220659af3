"""Governor overhead: N requests through plumasync vs a raw httpx.AsyncClient, side by side.

Both send the same GET (Basic auth, same concurrency) to the sandbox on loopback, served in this
process; the budget is far larger than N, so it never binds and only the governor's own cost shows.
Runs alternate (raw, governed, raw, governed, ...) so that drift affects both alike.

    python -m benchmarks.bench_governor [--requests 2000] [--concurrency 16] [--rounds 5]
"""

from __future__ import annotations

import argparse

import anyio
import httpx

from plumasync import Budget
from plumasync.sandbox import SandboxConfig, SandboxServer
from plumasync.testing import sandbox_client

from .common import median, table, timed


async def main(requests: int, concurrency: int, rounds: int) -> str:
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
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(anyio.run(main, args.requests, args.concurrency, args.rounds))


if __name__ == "__main__":
    cli()
