"""Import each named plumasync module alone, in a process where no plumasync module was imported before.

Run as ``python tests/import_alone.py MODULE...``; prints one JSON object: module → "" (imported) or the
tail of its traceback.  The parent imports only third-party libraries (what dominates an interpreter's
start-up), then forks one child per module: each child starts with no plumasync module loaded, so an
import order that hides a circle fails exactly as in a fresh interpreter, at a fraction of the cost.
Without ``os.fork`` (Windows) each module gets a fresh interpreter instead.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import traceback

#: Third-party libraries plumasync modules import; loading them once is what makes a fork cheap.
PRELOAD = ("anyio", "attrs", "cattrs", "tenacity", "httpx", "defusedxml.ElementTree", "rich.console",
           "rich.progress", "typer", "uvicorn", "platformdirs", "opentelemetry.metrics", "starlette.applications",
           "redis.asyncio", "sqlite3", "xml.etree.ElementTree", "zoneinfo", "email.utils")


def _in_child(module: str, write: int) -> None:
    try:
        importlib.import_module(module)
        message = ""
    except BaseException:  # whatever breaks the import is the answer
        message = traceback.format_exc()[-2000:]
    os.write(write, message.encode())
    os._exit(0)


def _forked(module: str) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        _in_child(module, write)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    return text if status == 0 else text or f"child exited with status {status}"


def _fresh(module: str) -> str:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          timeout=120, check=False)
    return "" if done.returncode == 0 else done.stderr[-2000:]


def main(modules: list[str]) -> dict[str, str]:
    assert not any(name.startswith("plumasync") for name in sys.modules), "the parent must stay plumasync-free"
    if not hasattr(os, "fork"):
        return {module: _fresh(module) for module in modules}
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # an optional extra that is absent is not preloaded
            importlib.import_module(name)
    assert not any(name.startswith("plumasync") for name in sys.modules), "a preload imported plumasync"
    return {module: _forked(module) for module in modules}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
