"""Helpers for the shared-store tests: a real redis-server on loopback, and multi-process runs.

Run as a script, this module is one worker process: ``python tests/store_worker.py '<json config>'``.
It builds its own :class:`~plumasync.PlumClient` on the shared store, prints ``ready``, waits for a
``go <clock time>`` line on stdin, sends its requests concurrently and prints one JSON result line.
A worker with ``"hang": true`` takes permits and never sends (it prints ``holding`` for each one): the
test SIGKILLs it, leaving dead reservations in the shared store.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REDIS_SERVER = shutil.which("redis-server")
REDIS_SKIP_REASON = ("redis-server is not on PATH: the Redis store tests need a real one "
                     "(apt-get install redis-server; .ci/run installs it)")
WORKER = Path(__file__).resolve()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence); can be stopped and restarted."""

    def __init__(self, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(REDIS_SKIP_REASON)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


# -- multi-process runs ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a multi-process run measured (clock seconds)."""

    go: float
    results: list[dict[str, Any]]
    statuses: Counter[int]
    killed: int = 0
    held: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> float:
        return max(r["done"] for r in self.results)

    @property
    def elapsed(self) -> float:
        return self.finished - self.go

    @property
    def ok(self) -> int:
        return sum(r["ok"] for r in self.results)


def run_workers(store: str, *, processes: int = 4, per_worker: int = 20, kill_one: bool = False,
                limit: int = 30, window: int = 300, scale: float = 100.0, timeout: float = 25.0,
                on_go: Any = None) -> Outcome:
    """``processes`` workers on one sandbox account through ``store``; optionally one is SIGKILLed.

    ``on_go(clock, go)`` is called once the workers are told to start at clock time ``go``.

    The sandbox runs in this process (uvicorn thread) on a ScaledClock shared with the workers.
    """
    from plumasync import ScaledClock
    from plumasync.sandbox import SandboxConfig, SandboxServer
    from plumasync.testing import start_time_in_window

    clock = ScaledClock(scale)
    config = SandboxConfig(clock=clock, limits={"calllogs": (limit, window)})
    with SandboxServer(config) as server:
        start = config.start_of_calls
        base = {"store": store, "clock": clock.params(), "limit": limit, "window": window, "n": per_worker,
                "calllogs_url": server.calllogs_url, "voicetrends_url": server.voicetrends_url,
                "path": f"calls/logs/{start}/{start + 3600}"}
        procs = []
        for i in range(processes):
            cfg = dict(base, worker=i, hang=kill_one and i == 0)
            procs.append(subprocess.Popen([sys.executable, str(WORKER), json.dumps(cfg)],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        try:
            for p in procs:
                line = p.stdout.readline() if p.stdout else ""
                if line.strip() != "ready":
                    raise RuntimeError(f"worker failed to start: {line!r}")
            # 0.1 real seconds from now, and clear of a reset (latency is not compressed with the window)
            go = start_time_in_window(clock.now() + 0.1 * scale, window)
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(f"go {go!r}\n")
                p.stdin.flush()
            if on_go is not None:
                on_go(clock, go)
            held = killed = 0
            if kill_one:
                until_go = max(0.0, (go - clock.now()) / scale)  # real seconds before the workers start
                # the others may take the whole first window before the victim gets a permit
                held = _kill_while_holding(procs[0], deadline=until_go + 1.5 * window / scale + 1.0)
                killed = 1
            results = []
            for p in procs[killed:]:
                out, _ = p.communicate(timeout=timeout)
                if p.returncode != 0:
                    raise RuntimeError(f"worker exited with {p.returncode}: {out[-2000:]}")
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
        statuses = server.app.recorder.statuses()
        times = sorted(r.server_time - go for r in server.app.recorder.records)
    return Outcome(go=go, results=results, statuses=statuses, killed=killed, held=held,
                   extra={"arrivals": times})


def _kill_while_holding(victim: subprocess.Popen[str], grace: float = 0.3, deadline: float = 1.5) -> int:
    """SIGKILL ``victim`` ``grace`` real seconds after it first holds a permit (or at ``deadline``)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert victim.stdout is not None
        for line in victim.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    held = 0
    end = time.monotonic() + deadline
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line.startswith("holding"):
            held += 1
            end = min(end, time.monotonic() + grace) if held == 1 else end
    victim.send_signal(signal.SIGKILL)
    victim.wait(5)
    while not lines.empty():
        held += lines.get().startswith("holding")
    return held


def t_min(requests: int, *, go: float, limit: int = 30, window: int = 300) -> float:
    """The window arithmetic's least duration for ``requests`` sent from ``go`` (fixed aligned windows)."""
    from plumasync.testing import minimum_duration, until_reset

    return minimum_duration(requests, remaining_now=limit, per_window=limit, window=window,
                            until_reset=until_reset(go, window))


# -- the worker process --------------------------------------------------------------------------------------


async def _work(cfg: dict[str, Any]) -> dict[str, Any]:
    import anyio
    import anyio.to_thread
    import httpx

    from plumasync import Budget, PlumClient, ScaledClock
    from plumasync.errors import PlumError

    logging.getLogger("plumasync").setLevel(logging.ERROR)  # every waiter warns of the long waits
    clock = ScaledClock(**cfg["clock"])
    http_client = None
    if cfg.get("hang"):

        class Hang(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                print("holding", flush=True)  # a permit is held; the request is never sent
                await anyio.sleep_forever()
                raise AssertionError("unreachable")

        http_client = httpx.AsyncClient(transport=Hang())
    statuses: Counter[int] = Counter()
    ok = 0
    async with PlumClient(login="demo", password="demo-password", calllogs_url=cfg["calllogs_url"],
                          voicetrends_url=cfg["voicetrends_url"], store=cfg["store"], clock=clock,
                          budget=Budget(limit=cfg["limit"], window=cfg["window"]),
                          http_client=http_client) as plum:
        print("ready", flush=True)
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        go = float(line.split()[1])
        await clock.sleep(go - clock.now())

        async def one() -> None:
            nonlocal ok
            try:
                response = await plum.request("calllogs", "calllogs", "GET", cfg["path"], params={"limit": 1},
                                              auth=plum.dev_auth())
            except PlumError as exc:
                statuses[getattr(exc, "status", None) or 0] += 1
                return
            statuses[response.status_code] += 1
            ok += response.json()["status"] == "success"

        async with anyio.create_task_group() as tg:
            for _ in range(cfg["n"]):
                tg.start_soon(one)
        done = clock.now()
    return {"worker": cfg["worker"], "ok": ok, "done": done, "statuses": dict(statuses)}


if __name__ == "__main__":
    import anyio

    print(json.dumps(anyio.run(_work, json.loads(sys.argv[1]))), flush=True)
