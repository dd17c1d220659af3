"""A fault-injecting HTTP/1.1 proxy on loopback, in front of the sandbox: per request it forwards the
sandbox's answer whole, or cuts its body short, trickles it, or never answers.

Faults (chosen per request by ``fault(number, path)``, ``number`` 1-based over all requests):

* ``"short"``: the body stops halfway, ``Content-Length`` still announcing all of it;
* ``"close"``: no ``Content-Length``; the body stops halfway and the connection closes;
* ``"trickle"``: the whole body, one byte every ``trickle_delay`` real seconds;
* ``"blackhole"``: the request is read and never answered;
* None: the answer as the sandbox gave it.

Every answer says ``Connection: close`` (one request per connection keeps the fault bookkeeping simple).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from anyio.abc import SocketStream, TaskStatus

Fault = Callable[[int, str], str | None]


def _with_close(head: bytes, drop: tuple[bytes, ...] = ()) -> bytes:
    lines = head.split(b"\r\n")
    kept = [lines[0]] + [h for h in lines[1:] if h and not h.lower().startswith((b"connection:", *drop))]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


class FaultProxy:
    """Serve with ``await tg.start(proxy.serve)``; then ``proxy.url`` is its base URL."""

    def __init__(self, upstream_port: int, fault: Fault, *, trickle_delay: float = 0.2) -> None:
        self.upstream_port = upstream_port
        self.fault = fault
        self.trickle_delay = trickle_delay
        self.port = 0
        self.requests: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._handle)

    async def _handle(self, client: SocketStream) -> None:
        async with client:
            request = b""
            while b"\r\n\r\n" not in request:
                try:
                    request += await client.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
            head, _, rest = request.partition(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            fault = self.fault(len(self.requests) + 1, path)
            self.requests.append((path, fault))
            if fault == "blackhole":
                await anyio.sleep_forever()
            answer = await self._forward(_with_close(head) + rest)
            await self._answer(client, answer, fault)

    async def _forward(self, request: bytes) -> bytes:
        async with await anyio.connect_tcp("127.0.0.1", self.upstream_port) as upstream:
            await upstream.send(request)
            answer = b""
            while True:
                try:
                    answer += await upstream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return answer

    async def _answer(self, client: SocketStream, answer: bytes, fault: str | None) -> None:
        head, _, body = answer.partition(b"\r\n\r\n")
        try:
            if fault == "short":
                await client.send(_with_close(head) + body[: len(body) // 2])
            elif fault == "close":
                await client.send(_with_close(head, (b"content-length:",)) + body[: len(body) // 2])
            elif fault == "trickle":
                await client.send(_with_close(head))
                for i in range(len(body)):
                    await anyio.sleep(self.trickle_delay)
                    await client.send(body[i: i + 1])
            else:
                await client.send(_with_close(head) + body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client gave up (its deadline): nothing more to send
