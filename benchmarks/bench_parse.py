"""Parsing a 10,000-entry calls/logs page: plumasync's typed parse vs the plain parser, same bytes.

JSON: ``wire.parse_log_page`` (envelope, string→number coercion, typed entries with aware datetimes and
parsed session ids) against ``json.loads``.  XML: the same against ``xml.etree.ElementTree.fromstring``
(plumasync parses XML with defusedxml).  Bodies come from the sandbox, as the server would send them.

    python -m benchmarks.bench_parse [--entries 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import anyio
import httpx

from plumasync import wire
from plumasync.sandbox import SandboxApp, SandboxConfig

from .common import median, table


async def fetch_bodies(entries: int) -> dict[str, bytes]:
    config = SandboxConfig(calls_count=entries, calls_spacing=1.0, limits={"calllogs": (10**6, 900)})
    start = config.start_of_calls
    app = SandboxApp(config)
    bodies = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        for fmt in ("json", "xml"):
            r = await http.get(f"/ws/calls/logs/{start}/{start + entries + 1}", params={"limit": entries},
                               headers={"Accept": f"application/{fmt}"}, auth=("demo", "demo-password"))
            r.raise_for_status()
            bodies[fmt] = r.content
    return bodies


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def main(entries: int, repeat: int) -> str:
    bodies = anyio.run(fetch_bodies, entries)
    page = wire.parse_log_page(bodies["json"], "json", 0, entries)
    assert len(page.entries) == entries, len(page.entries)
    assert len(wire.parse_log_page(bodies["xml"], "xml", 0, entries).entries) == entries
    rows = []
    plains = (("json", "json.loads", json.loads), ("xml", "ElementTree.fromstring", ET.fromstring))
    for fmt, plain_name, plain in plains:
        body = bodies[fmt]
        p = best(lambda: plain(body), repeat)  # noqa: B023 - evaluated at once
        ours = best(lambda: wire.parse_log_page(body, fmt, 0, entries), repeat)  # type: ignore[arg-type]  # noqa: B023
        rows.append([fmt.upper(), f"{len(body) / 1e6:.2f} MB", plain_name, f"{p / entries * 1e6:.2f} µs",
                     f"{ours / entries * 1e6:.2f} µs", f"{ours / p:.2f}"])
    return table(f"Parsing a {entries}-entry calls/logs page (median of {repeat})",
                 ["format", "body", "plain parser", "plain per entry", "plumasync per entry", "ratio"], rows)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(main(args.entries, args.repeat))


if __name__ == "__main__":
    cli()
