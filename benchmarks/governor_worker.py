"""One round of ``bench_governor``'s measurements, in a fresh process (run as a script, so that the
``plumasync`` it measures is whichever checkout ``PYTHONPATH`` names): prints one JSON line.

* ``raw`` / ``governed`` / ``scoped``: CPU µs per request (the least of many short blocks) through an
  ``httpx.AsyncClient`` on ``httpx.MockTransport`` (no network), without and with ``GovernedTransport``
  (memory store, a budget that never binds); ``scoped`` adds one ``anyio.move_on_after`` per request
  around the governed transport, to show what a cancel scope per request costs.  Blocks alternate so
  drift hits all alike.
* ``sqlite``: CPU µs per transaction of ``SQLiteStore`` (acquire + observe, one group, budget never binds).

    PYTHONPATH=/path/to/checkout python benchmarks/governor_worker.py --requests 25 --blocks 200 --ops 2000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

from plumasync.governor import Governor, GroupKey, Lane, Policy, RateHeaders
from plumasync.governor.stores.sqlite import SQLiteStore
from plumasync.transport import GovernedTransport, hints

KEY = GroupKey("bench.invalid", "account-hash", "calllogs")
POLICY = Policy(limit=10**9, window=900.0, reserve=0, margin=0.5)
BODY = b'{"result":"success","data":{"session_id":"0123456789abcdef","duration":"42"}}'


_SECOND: list[object] = [None, None]  # (second, its headers): a real server's headers change every second


def _headers() -> list[tuple[str, str]]:
    now = int(time.time())
    if _SECOND[0] != now:
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
        _SECOND[:] = [now, [("content-type", "application/json"), ("date", date),
                            ("x-ratelimit-limit", str(10**9)), ("x-ratelimit-remaining", str(10**9 - 1)),
                            ("x-ratelimit-reset", str(now - now % 900 + 900)), ("server", "mock")]]
    return _SECOND[1]  # type: ignore[return-value]


def _handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=_headers(), content=BODY)


class _Scoped(GovernedTransport):
    """The governed transport inside one more cancel scope per request (its former deadline's cost)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with anyio.move_on_after(self.deadline):
            return await super().handle_async_request(request)


def _client(kind: str) -> httpx.AsyncClient:
    mock = httpx.MockTransport(_handler)
    if kind == "raw":
        return httpx.AsyncClient(transport=mock)
    governor = Governor()
    governor.register(KEY, POLICY)
    return httpx.AsyncClient(transport=(_Scoped if kind == "scoped" else GovernedTransport)(mock, governor))


async def _cpu_per_call(n: int, one: Callable[[], Awaitable[object]]) -> float:
    gc.collect()
    start = time.process_time_ns()
    for _ in range(n):
        await one()
    return (time.process_time_ns() - start) / n / 1000


async def transport_round(requests: int, blocks: int) -> dict[str, float]:
    """µs of CPU per request for each client kind: the least over ``blocks`` alternating blocks of
    ``requests`` each (on a shared machine the least is the cost with the least interference)."""
    kinds = ["raw", "governed", "scoped"]
    clients = {kind: _client(kind) for kind in kinds}
    ext = hints(KEY, Lane.INTERACTIVE)
    best = dict.fromkeys(kinds, float("inf"))
    for block in range(blocks + 1):  # block 0 warms up (imports, caches)
        for kind in kinds if block % 2 else reversed(kinds):
            client = clients[kind]

            async def one(client: httpx.AsyncClient = client) -> None:
                (await client.get("http://bench.invalid/ws/calls/log/x", extensions=ext)).raise_for_status()

            cost = await _cpu_per_call(requests, one)
            if block:
                best[kind] = min(best[kind], cost)
    for client in clients.values():
        await client.aclose()
    return best


async def sqlite_round(ops: int) -> float:
    """µs of CPU per SQLite store transaction (acquire + observe pairs, one group)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(os.path.join(tmp, "budget.db"))
        now = time.time()
        answer = RateHeaders(limit=10**9, remaining=10**9 - 1, reset=float(int(now) + 900), date=float(int(now)))
        ids = iter(range(10**9))

        async def pair() -> None:
            permit = f"p{next(ids)}"
            await store.acquire(KEY, POLICY, Lane.INTERACTIVE, permit)
            await store.observe(KEY, POLICY, permit, 200, answer)

        await _cpu_per_call(200, pair)
        cost = await _cpu_per_call(ops, pair) / 2
        await store.aclose()
    return cost


async def main(requests: int, blocks: int, ops: int) -> None:
    result = await transport_round(requests, blocks)
    result["sqlite"] = await sqlite_round(ops)
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=25, help="per block")
    parser.add_argument("--blocks", type=int, default=200, help="per client kind")
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    anyio.run(main, args.requests, args.blocks, args.ops)
