"""Call Logs bodies exactly as the sandbox serves them (JSON and XML), for parser equivalence checks and
the parsing benchmark."""

from __future__ import annotations

import json

import anyio
import httpx

from plumasync.sandbox import SandboxApp, SandboxConfig

AUTH = ("demo", "demo-password")


async def _fetch(entries: int) -> dict[tuple[str, str], bytes]:
    config = SandboxConfig(calls_count=entries, calls_spacing=1.0, limits={"calllogs": (10**6, 900)})
    start = config.start_of_calls
    span = f"{start}/{start + entries + 1}"
    bodies: dict[tuple[str, str], bytes] = {}
    transport = httpx.ASGITransport(app=SandboxApp(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        for fmt in ("json", "xml"):
            headers = {"Accept": f"application/{fmt}"}
            for service in ("logs", "sessions", "errors"):
                r = await http.get(f"/ws/calls/{service}/{span}", params={"limit": min(entries, 10_000)},
                                   headers=headers, auth=AUTH)
                r.raise_for_status()
                bodies[service, fmt] = r.content
            log_id = json.loads(bodies["logs", "json"])["result"]["logs"][0]["log_id"]
            r = await http.get(f"/ws/calls/log/{log_id}", headers=headers, auth=AUTH)
            r.raise_for_status()
            bodies["log", fmt] = r.content
    return bodies


def sandbox_bodies(entries: int = 50) -> dict[tuple[str, str], bytes]:
    """``{(service, fmt): body}`` for services logs, log (one detail), sessions and errors."""
    return anyio.run(_fetch, entries)
