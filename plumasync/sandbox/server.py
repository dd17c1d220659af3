"""Serving the sandbox on loopback with uvicorn: :class:`SandboxServer` (background thread) and :func:`serve`.

The sandbox only ever listens on a loopback address; anything else is refused with ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import anyio.to_thread
import uvicorn

from .app import DroppedConnection, SandboxApp
from .config import SandboxConfig

__all__ = ["SandboxServer", "check_loopback", "serve"]


def check_loopback(host: str) -> str:
    """Return the address to bind for ``host``; ``ValueError`` unless it is a loopback address."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the Plum sandbox only listens on loopback (127.0.0.1, ::1, localhost), refusing {host!r}"
        )
    return str(address)


class _HideDrops(logging.Filter):
    """Keep uvicorn from printing a traceback for every deliberately dropped connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the "Exception in ASGI application" record of a :class:`DroppedConnection`."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def _install_drop_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in logger.filters):
        logger.addFilter(_HideDrops())


def _uvicorn_config(app: SandboxApp, host: str, port: int) -> uvicorn.Config:
    _install_drop_filter()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # leave the host program's logging configuration alone
        access_log=False,
        lifespan="off",
        interface="asgi3",
        ws="none",
        server_header=False,
        date_header=False,  # the app sends its own Date, from the sandbox clock
        timeout_graceful_shutdown=2,
    )


class SandboxServer:
    """The sandbox on ``127.0.0.1`` (free port by default) in a daemon thread.

    Use as ``with SandboxServer(config) as srv:`` or ``async with ...``; :attr:`url`,
    :attr:`voicetrends_url`, :attr:`calllogs_url` and :attr:`app` are valid while it runs.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        app: SandboxApp | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        if app is not None and config is not None:
            raise ValueError("pass either config or app, not both")
        self._bind_host = check_loopback(host)
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._app = app if app is not None else SandboxApp(config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    @property
    def app(self) -> SandboxApp:
        """The served :class:`SandboxApp` (recorder, knobs, expectations)."""
        return self._app

    @property
    def host(self) -> str:
        """The loopback address listened on."""
        return self._bind_host

    @property
    def port(self) -> int:
        """The actual port (valid once started)."""
        if self._port is None:
            raise RuntimeError("SandboxServer is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host = f"[{self._bind_host}]" if ":" in self._bind_host else self._bind_host
        return f"http://{host}:{self.port}"

    @property
    def voicetrends_url(self) -> str:
        """Base URL of the VoiceTrends API (``…/api/``)."""
        return f"{self.url}/api/"

    @property
    def calllogs_url(self) -> str:
        """Base URL of the Call Logs API (``…/ws/``)."""
        return f"{self.url}/ws/"

    @property
    def running(self) -> bool:
        """Whether the server thread is up and serving."""
        return (
            self._server is not None
            and self._server.started
            and self._thread is not None
            and self._thread.is_alive()
        )

    def start(self) -> None:
        """Bind, start uvicorn in a daemon thread and wait (bounded) until it serves."""
        if self._thread is not None:
            raise RuntimeError("SandboxServer already started")
        family = socket.AF_INET6 if ":" in self._bind_host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio then sets TCP_NODELAY on accepted connections (no delayed-ACK stalls).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._bind_host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        server = uvicorn.Server(_uvicorn_config(self._app, self._bind_host, self._port))
        self._server = server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # SystemExit on startup failure included
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"plum-sandbox-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Plum sandbox failed to start: {self._error!r}")
            time.sleep(0.002)

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for the thread and release the socket (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket, self._port = None, None, None, None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SandboxServer:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"SandboxServer({where})"


def serve(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8765, **kwargs: Any
) -> None:
    """Serve the sandbox in the foreground until interrupted (the ``plumasync sandbox`` command).

    ``kwargs`` are :class:`SandboxConfig` fields applied on top of ``config``.
    """
    bind = check_loopback(host)
    app = SandboxApp(config, **kwargs)
    uvicorn.Server(_uvicorn_config(app, bind, port)).run()
