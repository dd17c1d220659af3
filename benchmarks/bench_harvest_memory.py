"""Peak memory of ordering a harvest oldest first, at 100k and 1M listed calls.

Each measurement runs in a fresh process (peak RSS is per process): ``baseline`` builds the listing
pages of 10,000 entries one at a time and drops them (what any harvest holds); ``spill`` also keeps
them in :class:`plumasync.harvest_order.ListedCalls`, reads them all back oldest first and streams the
forecast's start times; ``keep`` (100k only) holds every entry in a list, the naive alternative.

    python -m benchmarks.bench_harvest_memory --sizes 100000 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
from datetime import datetime, timezone

PAGE = 10_000


def _pages(count: int):  # type: ignore[no-untyped-def]
    from plumasync.models.calllogs import CallLogEntry
    from plumasync.models.loglines import SessionId

    base = 1_700_000_000
    for first in range(0, count, PAGE):
        page = []
        for i in range(first, min(count, first + PAGE)):
            start = base + (count - i) * 7  # newest first, as Plum lists
            moment = datetime.fromtimestamp(start, timezone.utc)
            page.append(CallLogEntry(log_id=10_000_000 + i, dest="6175551234", type="inbound",
                                     src="6175550000", start=moment, end=moment,
                                     session_id=SessionId(server="000020", channel=i % 64, start=start,
                                                          raw=f"000020;{i % 64};{start}")))
        yield page


def child(mode: str, count: int) -> None:
    """Run one measurement and print the peak RSS in MiB."""
    from plumasync.harvest_order import ListedCalls

    kept: list[object] = []
    calls = ListedCalls() if mode == "spill" else None
    for page in _pages(count):
        if calls is not None:
            calls.add(page)
        elif mode == "keep":
            kept.extend(page)
    if calls is not None:
        after = None
        seen = 0
        while chunk := calls.chunk_after(after):
            after = (chunk[-1].start_ts, chunk[-1].log_id)
            seen += len(chunk)
        assert seen == count and sum(1 for _ in calls.starts()) == count
        calls.close()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure(mode: str, count: int) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_harvest_memory", "--child", mode, str(count)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    print("| listed calls | mode | peak RSS MiB (median) | spread | ratio to baseline |")
    print("|---|---|---|---|---|")
    for count in args.sizes:
        modes = ["baseline", "spill"] + (["keep"] if count <= 100_000 else [])
        runs: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):  # interleaved, so drift hits every mode
            for mode in modes:
                runs[mode].append(measure(mode, count))
        base = statistics.median(runs["baseline"])
        for mode in modes:
            med = statistics.median(runs[mode])
            spread = max(runs[mode]) - min(runs[mode])
            print(f"| {count:,} | {mode} | {med:.1f} | {spread:.1f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
