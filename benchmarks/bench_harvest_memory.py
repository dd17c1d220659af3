"""Peak memory of a whole harvest (list → oldest-first spill → details → SQLite) at 100k and 1M listed calls.

The sandbox runs in its own process with a budget that never binds; each measured harvest is a fresh
child process, so its peak RSS (``ru_maxrss``) is the harvest's own: ``PlumClient`` + the governor +
the listing spilled to its temporary file + the detail workers + the batched SQLite writes.  Sizes and
modes are interleaved, ``--rounds`` times, and the table gives the median and the spread (max − min).

``--details N`` fetches details for the newest N listed calls only: the harvest is given a retention
that makes every older call count as expired (no request), so the whole listing is still spilled,
read back oldest first and dispatched, but the detail requests (the slow part on a shared machine)
are N.  Without it every listed call is fetched.

    python -m benchmarks.bench_harvest_memory --sizes 100000 1000000 --rounds 3
    python -m benchmarks.bench_harvest_memory --sizes 100000 1000000 --rounds 3 --details 20000
    python -m benchmarks.bench_harvest_memory --sizes 20000 --profile harvest.prof   # cProfile one child
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import free_port, peak_rss_mb, serve_sandbox

SPACING = 1.0
START = 1_790_000_000  # fixed: the child processes and the sandbox agree on the period
EXPIRY_MARGIN = 60.0  # plumasync.harvest.EXPIRY_MARGIN


def serve(port: int, calls: int) -> subprocess.Popen[bytes]:
    """The sandbox in its own process, listing ``calls`` calls, its budget far above the work."""
    return serve_sandbox(port, f"calls_count={calls}, calls_spacing={SPACING}, calls_start={START}, "
                               "limits={'calllogs': (10**9, 900)}")


async def child(url: str, calls: int, details: int | None, db: str) -> dict[str, float]:
    """One harvest of ``calls`` listed calls into ``db``; its figures and this process's peak RSS."""
    from plumasync import Budget, PlumClient

    end = START + int(calls * SPACING) + 1
    options = {"retention": 1e10}  # the fixed period is in the past: no call counts as expired
    if details is not None:  # calls older than the newest `details` count as expired: no request
        oldest_kept = START + (calls - details) * SPACING
        options["retention"] = time.time() - oldest_kept + EXPIRY_MARGIN + 0.5
    async with PlumClient(login="demo", password="demo-password", calllogs_url=url + "/ws/",
                          voicetrends_url=url + "/api/", budget=Budget(limit=10**9, window=900)) as plum:
        t = time.perf_counter()
        summary = await plum.calllogs.harvest(START, end, sink=db, **options).run()  # type: ignore[arg-type]
        seconds = time.perf_counter() - t
    assert summary.total == calls and summary.complete, summary
    # With --details the boundary moves with the clock (one call a second): calls listed while the listing
    # ran have expired too, so `fetched` is a little under `details` (the table shows it).
    assert summary.fetched + summary.expired == calls and summary.fetched > 0, summary
    assert details is not None or summary.fetched == calls, summary
    return {"seconds": seconds, "rss": peak_rss_mb(), "fetched": summary.fetched, "expired": summary.expired}


def run_child(url: str, calls: int, details: int | None, profile: str | None = None) -> dict[str, float]:
    """A fresh process for one harvest (peak RSS is per process)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable]
        if profile:
            command += ["-m", "cProfile", "-o", profile]
        command += ["-m", "benchmarks.bench_harvest_memory", "--child", url, "--sizes", str(calls),
                    "--db", str(Path(tmp) / "calls.db")]
        if details is not None:
            command += ["--details", str(details)]
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        raise RuntimeError(f"the harvest child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(sizes: list[int], rounds: int, details: int | None) -> str:
    ports = {calls: free_port() for calls in sizes}
    servers = {calls: serve(port, calls) for calls, port in ports.items()}
    runs: dict[int, list[dict[str, float]]] = {calls: [] for calls in sizes}
    try:
        for _ in range(rounds):  # interleaved, so drift on the shared machine hits every size
            for calls, port in ports.items():
                url = f"http://127.0.0.1:{port}"
                runs[calls].append(run_child(url, calls, None if details is None else min(details, calls)))
                print(calls, runs[calls][-1], file=sys.stderr, flush=True)  # partial results, as they come
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(10)
    lines = ["| listed calls | details fetched | peak RSS MB (median) | spread | growth vs first size | "
             "seconds (median) |", "|---|---|---|---|---|---|"]
    first = statistics.median(r["rss"] for r in runs[sizes[0]])
    for calls in sizes:
        rss = [r["rss"] for r in runs[calls]]
        med = statistics.median(rss)
        fetched = statistics.median(r["fetched"] for r in runs[calls])
        lines.append(f"| {calls:,} | {fetched:,.0f} | {med:.1f} | {max(rss) - min(rss):.1f} | "
                     f"{med - first:+.1f} | {statistics.median(r['seconds'] for r in runs[calls]):.0f} |")
    return "\n".join(lines)


def writer_costs(batches: int, rounds: int) -> str:
    """Where a batch is written: on the event loop or one worker-thread hop per batch (the least a
    dedicated writer thread costs), for SQLite and JSON Lines, while 8 tasks keep the loop busy the way
    detail workers do.  Wall seconds for ``batches`` batches of 200 sandbox-shaped logs."""
    from datetime import datetime, timezone

    import anyio

    from plumasync.harvest_writer import BATCH
    from plumasync.models.calllogs import CallLogDetail, CallLogEntry
    from plumasync.models.loglines import SessionId
    from plumasync.sandbox.data import CallData
    from plumasync.sinks import HarvestedLog, JSONLSink, SQLiteSink

    data = CallData(seed=0, start=START, count=BATCH, spacing=SPACING, numbers=("6175550199",))
    moment = datetime.fromtimestamp(START, timezone.utc)
    logs = [HarvestedLog(entry=CallLogEntry(log_id=i, session_id=SessionId(server="1", channel=1, start=START,
                                                                           raw=f"1;1;{START}"),
                                            dest="1", type="inbound", src="2", start=moment, end=moment),
                         detail=CallLogDetail(dest="1", src="2", type="inbound", timestamp=moment, location="Boston",
                                              log=data.call(i).log_text())) for i in range(BATCH)]

    async def run(kind: str, where: str, tmp: str) -> float:
        path = Path(tmp) / f"{where}.{kind}"
        sink = SQLiteSink(path) if kind == "sqlite" else JSONLSink(path)
        done = False

        async def busy() -> None:  # a detail worker's share of the loop
            while not done:
                await anyio.lowlevel.checkpoint()

        t = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(busy)
            for b in range(batches):
                batch = [attrs_evolve(h, b * BATCH) for h in logs]
                if where == "loop":
                    sink.write(batch)
                else:
                    await anyio.to_thread.run_sync(sink.write, batch)
            done = True
        seconds = time.perf_counter() - t
        sink.close()
        return seconds

    def attrs_evolve(h: HarvestedLog, offset: int) -> HarvestedLog:
        import attrs
        return HarvestedLog(entry=attrs.evolve(h.entry, log_id=h.entry.log_id + offset), detail=h.detail)

    lines = ["| sink | on the event loop s (median) | worker-thread hop s (median) | thread / loop | "
             "spread loop, thread |", "|---|---|---|---|---|"]
    for kind in ("sqlite", "jsonl"):
        times: dict[str, list[float]] = {"loop": [], "thread": []}
        for _ in range(rounds):
            for where in ("loop", "thread"):
                with tempfile.TemporaryDirectory() as tmp:
                    times[where].append(anyio.run(run, kind, where, tmp))
        loop, thread = (statistics.median(times[w]) for w in ("loop", "thread"))
        spread = {w: max(t) - min(t) for w, t in times.items()}
        lines.append(f"| {kind} | {loop:.3f} | {thread:.3f} | {thread / loop:.2f} | "
                     f"{spread['loop']:.3f}, {spread['thread']:.3f} |")
    return "\n".join(lines)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--details", type=int, help="fetch details for the newest N listed calls only")
    parser.add_argument("--profile", help="cProfile one harvest of the first size into this file")
    parser.add_argument("--writer", type=int, metavar="BATCHES", help="time the writer's placement instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import anyio

        print(json.dumps(anyio.run(child, args.child, args.sizes[0], args.details, args.db)))
        return
    if args.writer:
        print(writer_costs(args.writer, args.rounds))
        return
    if args.profile:
        calls = args.sizes[0]
        port = free_port()
        server = serve(port, calls)
        try:
            print(run_child(f"http://127.0.0.1:{port}", calls, args.details, args.profile))
        finally:
            server.terminate()
            server.wait(10)
        return
    print(main(args.sizes, args.rounds, args.details))


if __name__ == "__main__":
    cli()
