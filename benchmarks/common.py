"""Shared helpers for the benchmarks: timing, peak memory, table printing, a sandbox in its own process."""

from __future__ import annotations

import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Wall seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pasted as is into benchmarks/README.md)."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_sandbox(port: int, config: str, *, start_timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """The sandbox in its own process (its CPU is not the client's), built from ``SandboxConfig(<config>)``
    and listening on ``port``; returns once it accepts connections."""
    code = f"from plumasync.sandbox import SandboxConfig, serve; serve(SandboxConfig({config}), port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sandbox did not start")
