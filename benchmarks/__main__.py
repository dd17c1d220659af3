"""Run every benchmark in one go: ``python -m benchmarks`` (``nox -s bench``).

Each prints a Markdown table; benchmarks/README.md records one run of each with its command.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    ["benchmarks.bench_governor"],
    ["benchmarks.bench_parse"],
    ["benchmarks.bench_dashboard"],
    ["benchmarks.bench_cache_hit"],
    ["benchmarks.bench_stores", "--ops", "2000", "--tasks", "16", "--processes", "4"],
    ["benchmarks.bench_harvest", "--sizes", "20000"],
]


def main() -> int:
    only = sys.argv[1:]
    for bench in BENCHES:
        if only and not any(name in bench[0] for name in only):
            continue
        print(f"$ python -m {' '.join(bench)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *bench])
        if code:
            return code
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
