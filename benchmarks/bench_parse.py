"""Parsing Call Logs bodies into plumasync's typed models vs the plain parsers, same bytes, one run.

JSON: ``wire.parse_log_page`` (envelope, string→number coercion, every value checked, typed entries)
against ``json.loads``; orjson and msgspec (when installed) as context.  XML: the same against the C
``xml.etree.ElementTree.fromstring``, with defusedxml (plumasync's XML path before the DTD pre-scan) as
context.  Then one ``calls/log`` document (the model and its parsed log lines) and pages of session and
error lines.  Bodies come from the sandbox, as the server sends them.

Every row's candidates run interleaved, round after round; each time is this process's CPU time (the
machine's other processes do not count), and the ratio is taken within a round.  Reported: median
ratio and its spread (min–max) over the rounds, and the median time per item.

    python -m benchmarks.bench_parse [--entries 10000] [--rounds 7] [--no-context]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import defusedxml.ElementTree as SafeET

from plumasync import wire
from plumasync.testing import sandbox_bodies

from .common import table

Candidate = tuple[str, Callable[[], object]]


def cpu_seconds(fn: Callable[[], object], calls: int) -> float:
    """CPU seconds of this process for ``calls`` calls of ``fn``, each candidate starting from the same
    collector state (a full collection first; unlike timeit, the collector stays on while timing)."""
    gc.collect()
    start = time.process_time()
    for _ in range(calls):
        fn()
    return time.process_time() - start


def compare(candidates: list[Candidate], rounds: int, calls: int) -> list[tuple[str, float, list[float]]]:
    """``(name, median seconds per call, ratios to the first candidate per round)``, interleaved."""
    times: dict[str, list[float]] = {name: [] for name, _ in candidates}
    ratios: dict[str, list[float]] = {name: [] for name, _ in candidates}
    for fn in (fn for _, fn in candidates):
        fn()  # warm up: imports, caches
    for _ in range(rounds):
        base = 0.0
        for name, fn in candidates:
            seconds = cpu_seconds(fn, calls) / calls
            base = base or seconds
            times[name].append(seconds)
            ratios[name].append(seconds / base)
    return [(name, statistics.median(times[name]), ratios[name]) for name, _ in candidates]


def rows(title: str, body: bytes, items: int, candidates: list[Candidate], rounds: int,
         calls: int = 1) -> list[list[str]]:
    """Table rows for one body: per item time, median ratio and its spread."""
    out = []
    for name, seconds, ratio in compare(candidates, rounds, calls):
        spread = f"{min(ratio):.2f}–{max(ratio):.2f}"
        out.append([title, f"{len(body) / 1e3:,.0f} kB", name, f"{seconds / items * 1e6:.2f} µs",
                    f"**{statistics.median(ratio):.2f}**", spread])
        title = ""
    return out


def json_context(body: bytes) -> list[Candidate]:
    """orjson and msgspec, when installed: what a C decoder does with the same bytes."""
    out: list[Candidate] = []
    try:
        import orjson

        out.append(("orjson.loads", lambda: orjson.loads(body)))
    except ImportError:
        pass
    try:
        import msgspec

        out.append(("msgspec.json.decode", lambda: msgspec.json.decode(body)))
        out.append(("msgspec, typed Structs (no checks)", _msgspec_typed(msgspec, body)))
    except ImportError:
        pass
    return out


def _msgspec_typed(msgspec: Any, body: bytes) -> Callable[[], object]:
    fields = ("log_id", "session_id", "dest", "type", "src", "start", "end")
    entry = msgspec.defstruct("Entry", [(name, str) for name in fields])
    result = msgspec.defstruct("Result", [("total_logs", str), ("logs", list[entry])])  # type: ignore[valid-type]
    envelope = msgspec.defstruct("Envelope", [("status", str), ("result", result)])
    decoder = msgspec.json.Decoder(envelope)
    return lambda: decoder.decode(body)


def page_rows(bodies: dict[tuple[str, str], bytes], entries: int, rounds: int,
              context: bool = True) -> list[list[str]]:
    """The calls/logs page: the Must-show ratios."""
    page = bodies["logs", "json"]
    xml_page = bodies["logs", "xml"]
    assert len(wire.parse_log_page(page, "json", 0, entries)) == entries
    assert len(wire.parse_log_page(xml_page, "xml", 0, entries)) == entries
    json_rows = rows(f"calls/logs JSON, {entries:,} entries", page, entries, [
        ("json.loads", lambda: json.loads(page)),
        *(json_context(page) if context else []),
        ("plumasync wire.parse_log_page", lambda: wire.parse_log_page(page, "json", 0, entries)),
    ], rounds)
    xml_rows = rows(f"calls/logs XML, {entries:,} entries", xml_page, entries, [
        ("C ElementTree.fromstring", lambda: ET.fromstring(xml_page)),
        *([("defusedxml fromstring (the former path)", lambda: SafeET.fromstring(xml_page))] if context else []),
        ("plumasync wire.parse_log_page", lambda: wire.parse_log_page(xml_page, "xml", 0, entries)),
    ], rounds)
    return json_rows + xml_rows


def line_rows(bodies: dict[tuple[str, str], bytes], rounds: int) -> list[list[str]]:
    """One calls/log document with its log lines, and pages of session and error lines."""
    out = []
    plain: dict[str, Callable[[bytes], object]] = {"json": json.loads, "xml": ET.fromstring}
    for fmt in ("json", "xml"):
        doc = bodies["log", fmt]
        lines = len(wire.parse_log_detail(doc, fmt).lines())  # type: ignore[arg-type]
        out += rows(f"calls/log {fmt.upper()}, {lines} log lines", doc, lines, [
            (f"{plain[fmt].__module__}.{plain[fmt].__name__}", lambda: plain[fmt](doc)),  # noqa: B023
            ("parse_log_detail", lambda: wire.parse_log_detail(doc, fmt)),  # type: ignore[arg-type]  # noqa: B023
            ("parse_log_detail + .lines()", lambda: wire.parse_log_detail(doc, fmt).lines()),  # type: ignore[arg-type]  # noqa: B023
        ], rounds, calls=200)
        for service, parse in (("sessions", wire.parse_session_page), ("errors", wire.parse_error_page)):
            body = bodies[service, fmt]
            count = len(parse(body, fmt))  # type: ignore[arg-type]
            out += rows(f"calls/{service} {fmt.upper()}, {count:,} lines", body, count, [
                (f"{plain[fmt].__module__}.{plain[fmt].__name__}", lambda: plain[fmt](body)),  # noqa: B023
                (f"parse_{service[:-1]}_page", lambda: parse(body, fmt)),  # type: ignore[arg-type]  # noqa: B023
            ], rounds)
    return out


HEADER = ["body", "size", "parser", "per item (median)", "ratio (median)", "ratio spread"]


def main(entries: int, rounds: int, context: bool = True) -> str:
    """Both tables, as Markdown (``context``: the orjson, msgspec and defusedxml rows too)."""
    bodies = sandbox_bodies(entries)
    gc.freeze()  # the sandbox's and httpx's objects are not the parsers' to collect
    note = f"CPU time, {rounds} interleaved rounds; ratios to the first row of each body"
    return (table(f"Parsing a {entries:,}-entry calls/logs page ({note})", HEADER,
                  page_rows(bodies, entries, rounds, context)) + "\n"
            + table(f"One calls/log document and pages of log lines ({note})", HEADER,
                    line_rows(bodies, rounds)))


def cli() -> None:
    """``python -m benchmarks.bench_parse``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-context", dest="context", action="store_false",
                        help="only the plain parsers and plumasync (no orjson, msgspec, defusedxml rows)")
    args = parser.parse_args()
    print(main(args.entries, args.rounds, args.context))


if __name__ == "__main__":
    cli()
