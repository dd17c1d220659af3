"""Store acquire latency: what one request costs the governor's store, per store, side by side.

One operation is an acquire + observe round trip (the two store calls every governed request makes) on
one group whose budget never binds (the server's headers keep saying 150 of 150 remain).  Reported:
median and p99 over ``--ops`` operations after a warm-up, for

* ``memory`` — the in-process default;
* ``sqlite`` — :class:`~plumasync.governor.stores.sqlite.SQLiteStore` (transactions on the event loop, never
  blocking on the lock), and, for comparison, the same transactions handed to a worker thread behind a
  lock (``anyio.to_thread``), the design the store rejected;
* ``redis`` — :class:`~plumasync.governor.stores.redis.RedisStore` reading Redis' ``TIME``, and with an injected
  clock (the time passed as a script argument);
* the shared stores again with ``--tasks`` concurrent tasks in one process, and with ``--processes``
  OS processes hammering the same group at once.

A ``redis-server`` is started on a free loopback port when none is given with ``--redis``; the Redis
rows are skipped when neither is available.

    python -m benchmarks.bench_stores [--ops 2000] [--tasks 16] [--processes 4] [--redis URL]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from plumasync import Budget, ScaledClock, SystemClock
from plumasync.governor import GroupKey, Lane, MemoryStore, RateHeaders, Store
from plumasync.governor.stores.sqlite import SQLiteStore

from .common import table

T = TypeVar("T")
KEY = GroupKey("bench.example", "0123456789ab", "data")
POLICY = Budget(limit=150, window=900.0).policy()


class ThreadedSQLiteStore(SQLiteStore):
    """The rejected design, for comparison: each transaction in a worker thread, one connection, a lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block = threading.Lock()

    def _open_sync(self) -> None:
        with self._block:
            if self._conn is not None:
                return
            super()._open_sync()
            assert self._conn is not None
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._conn.execute("PRAGMA wal_autocheckpoint = 1000")

    async def _run(self, fn: Callable[[sqlite3.Connection, float], T], *, write: bool = True) -> T:
        await self._ensure_open()

        def txn() -> T:
            with self._block:
                conn = self._conn
                assert conn is not None
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = fn(conn, self.clock.now())
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return result

        return await anyio.to_thread.run_sync(txn)


def headers() -> RateHeaders:
    now = time.time()
    reset = (math.floor(now / 900) + 1) * 900.0
    return RateHeaders(limit=150, remaining=150, reset=reset, date=float(int(now)))


async def measure(store: Store, ops: int, warmup: int = 100, tag: str = "") -> list[float]:
    """Seconds per acquire + observe round trip, ``ops`` times (after ``warmup`` unmeasured ones)."""
    out: list[float] = []
    h = headers()
    for i in range(warmup + ops):
        permit = f"{tag}{i}"
        start = time.perf_counter()
        timed = await store.acquire(KEY, POLICY, Lane.INTERACTIVE, permit)
        await store.observe(KEY, POLICY, permit, 200, h)
        elapsed = time.perf_counter() - start
        if not timed.decision.granted:
            raise RuntimeError("the benchmark's budget bound: it must not")
        if i >= warmup:
            out.append(elapsed)
    return out


def open_store(spec: str) -> Store:
    if spec == "memory":
        return MemoryStore()
    if spec.startswith("threaded+sqlite://"):
        return ThreadedSQLiteStore.from_url(spec.removeprefix("threaded+"))
    if spec.startswith("sqlite://"):
        return SQLiteStore.from_url(spec)
    from plumasync.governor.stores.redis import RedisStore

    if spec.startswith("lua+"):  # the former Lua store, kept in benchmarks/ as a baseline
        from .lua_baseline import LuaRedisStore

        return LuaRedisStore.from_url(spec.removeprefix("lua+"), clock=SystemClock())
    if spec.startswith("clock+"):  # an injected clock: the time travels as a script argument
        return RedisStore.from_url(spec.removeprefix("clock+"), clock=ScaledClock(1.0))
    return RedisStore.from_url(spec, clock=SystemClock())


async def run_one(spec: str, ops: int, tag: str = "", tasks: int = 1) -> list[float]:
    """``tasks`` concurrent tasks on one store share ``ops`` operations; all their samples merged."""
    store = open_store(spec)
    samples: list[float] = []

    async def task(i: int) -> None:
        samples.extend(await measure(store, ops // tasks, warmup=100 // tasks, tag=f"{tag}t{i}-"))

    try:
        async with anyio.create_task_group() as tg:
            for i in range(tasks):
                tg.start_soon(task, i)
    finally:
        await store.aclose()
    return samples


def run_processes(spec: str, ops: int, processes: int) -> list[float]:
    """``processes`` OS processes measuring at once on the same group; all their samples merged."""
    children = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_stores", "--child", spec,
                                  "--ops", str(ops), "--tag", f"c{i}-"], stdout=subprocess.PIPE, text=True)
                for i in range(processes)]
    samples: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"benchmark child failed for {spec}")
        samples += json.loads(out)
    return samples


@contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def row(name: str, samples: list[float]) -> list[str]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return [name, f"{len(samples)}", f"{statistics.median(ordered) * 1e6:.0f}", f"{p99 * 1e6:.0f}"]


def main(ops: int, processes: int, tasks: int, redis_url: str | None) -> str:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(redis_url) as redis:
        db = os.path.join(tmp, "budget.db")
        single: list[tuple[str, str]] = [
            ("memory", "memory"),
            ("sqlite (this store: on the loop, lock never awaited)", f"sqlite:///{db}"),
            ("sqlite (rejected: to_thread + lock)", f"threaded+sqlite:///{db}-thr"),
        ]
        if redis:
            single += [("redis (server TIME)", redis), ("redis (injected clock)", f"clock+{redis}")]
        for name, spec in single:
            rows.append(row(name, anyio.run(run_one, spec, ops)))
        if tasks > 1:
            for name, spec in single[1:]:
                rows.append(row(f"{name}, {tasks} tasks at once", anyio.run(run_one, spec, ops, "", tasks)))
        if processes > 1:
            shared = [("sqlite", f"sqlite:///{db}-mp")] + ([("redis (server TIME)", redis)] if redis else [])
            for name, spec in shared:
                samples = run_processes(spec, ops, processes)
                rows.append(row(f"{name}, {processes} processes at once", samples))
        if not redis:
            rows.append(["redis", "-", "skipped: no redis-server on PATH and no --redis", "-"])
    return table("Store acquire latency (acquire + observe round trip, µs)",
                 ["store", "ops", "median µs", "p99 µs"], rows)


def spread(values: list[float]) -> str:
    """Median of the rounds, and their range."""
    return f"{statistics.median(values) * 1e6:.0f} ({min(values) * 1e6:.0f}–{max(values) * 1e6:.0f})"


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def compare_redis(redis: str, ops: int, rounds: int, processes: int) -> str:
    """WATCH/MULTI store against the former Lua store, 1 and ``processes`` processes, rounds interleaved."""
    cases = [("WATCH/MULTI (this store)", redis), ("Lua port (former store)", f"lua+{redis}")]
    figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for n in (1, processes):
            for name, spec in cases:
                samples = anyio.run(run_one, spec, ops) if n == 1 else run_processes(spec, ops, n)
                figures.setdefault((name, n), []).append(quantiles(samples))
    rows = []
    for (name, n), values in figures.items():
        base = figures[(cases[1][0], n)]
        ratio = statistics.median(v[0] for v in values) / statistics.median(b[0] for b in base)
        rows.append([name, str(n), spread([v[0] for v in values]), spread([v[1] for v in values]), f"{ratio:.2f}"])
    return table(f"Redis stores side by side (acquire + observe, µs; median of {rounds} interleaved rounds, range)",
                 ["store", "processes", "median µs", "p99 µs", "median / Lua"], rows)


def _window_store(redis: str, lua: bool) -> Any:
    """This store, or (``lua``) the former Lua store, on ``redis`` with the system clock."""
    from plumasync.governor.stores.redis import RedisStore

    from .lua_baseline import LuaRedisStore

    return (LuaRedisStore if lua else RedisStore).from_url(redis, clock=SystemClock())


async def window_child(redis: str, key: str, tasks: int, until: float, lua: bool = False) -> list[float]:
    """One of the processes waiting for the window: ``tasks`` requests through a Governor; grant times."""
    from plumasync.governor import Governor

    store = _window_store(redis, lua)
    governor = Governor(store=store, clock=SystemClock(), warn_after=1e9)
    skey = governor.register(GroupKey.parse(key), Budget(limit=150, window=900.0, reserve=0).policy())
    granted: list[float] = []

    async def one() -> None:
        permit = await governor.acquire(skey)
        granted.append(time.time())
        spent = await store.redis.incr(f"{key}:server")  # the simulated server's count of the window
        reset = float(await store.redis.get(f"{key}:reset") or 0)
        await governor.observe(permit, 200, RateHeaders(limit=150, remaining=max(0, 150 - int(spent)),
                                                        reset=reset, date=float(int(time.time()))))

    with anyio.move_on_after(max(0.0, until - time.time())):
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(one)
    await store.aclose()
    return granted


def window_opening(redis: str, processes: int = 8, tasks: int = 30, lead: float = 8.0, lua: bool = False) -> str:
    """A spent window of 150 with ``processes`` processes waiting on one Redis: how fast it refills
    (``lua``: through the former Lua store)."""
    key = f"bench-open-{os.getpid()}-{time.monotonic_ns()}|acct|data"  # a fresh group per run
    reset = float(int(time.time() + lead))

    async def prime() -> float:
        store = _window_store(redis, lua)
        policy = Budget(limit=150, window=900.0, reserve=0).policy()
        group = GroupKey.parse(key)
        await store.acquire(group, policy, Lane.INTERACTIVE, "prime")
        await store.observe(group, policy, "prime", 200, RateHeaders(limit=150, remaining=0, reset=reset,
                                                                     date=float(int(time.time()))))
        await store.redis.set(f"{key}:reset", repr(reset + 900))
        state = await store.state(group)
        await store.aclose()
        assert state is not None and state.reset_local is not None
        return float(state.reset_local + policy.margin)  # when the governor opens the window

    opens = anyio.run(prime)
    until = opens + 3.0
    flags = ["--lua"] if lua else []
    children = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_stores", "--window-child", redis,
                                  "--key", key, "--tasks", str(tasks), "--until", repr(until), *flags],
                                 stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    grants: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=lead + 30)
        grants += json.loads(out)
    grants.sort()
    early = sum(1 for t in grants if t < opens - 0.001)
    last = grants[149] - opens if len(grants) >= 150 else float("nan")
    name = "Lua port (former store)" if lua else "WATCH/MULTI (this store)"
    rows = [[name, str(processes), str(processes * tasks), str(len(grants)), str(early),
             f"{(grants[0] - opens) * 1e3:.1f}" if grants else "-", f"{last * 1e3:.1f}"]]
    return table("A window of 150 opening for processes waiting on one Redis (ms after reset + margin)",
                 ["store", "processes", "waiting", "admitted", "admitted early", "first", "150th"], rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--redis", default=None, help="use this Redis instead of starting a redis-server")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the Redis comparison")
    parser.add_argument("--compare-processes", type=int, default=8)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    parser.add_argument("--window-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--key", default="", help=argparse.SUPPRESS)
    parser.add_argument("--until", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--lua", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window_child:
        print(json.dumps(anyio.run(window_child, args.window_child, args.key, args.tasks, args.until, args.lua)))
    elif args.child:
        print(json.dumps(anyio.run(run_one, args.child, args.ops, args.tag)))
    else:
        print(main(args.ops, args.processes, args.tasks, args.redis))
        with redis_server(args.redis) as url:
            if url:
                print(compare_redis(url, args.ops, args.rounds, args.compare_processes))
                print(window_opening(url))
                print(window_opening(url, lua=True))
