"""No secret echoes back: a server that echoes the login form or the Authorization header in an error
body must not put the password, in any encoding, into an exception's text or the CLI's output."""

from __future__ import annotations

import base64
import html
import json
from datetime import date
from urllib.parse import quote, quote_plus

import httpx
import pytest

from plumasync import PlumClient, PlumError, RetryPolicy
from plumasync.cli._common import GlobalOptions
from plumasync.errors import ResponseParseError

pytestmark = pytest.mark.anyio

PASSWORD = "s3cr/t pa&ss<é>+\"x"  # a slash, a space, HTML and JSON specials, a non-ASCII letter
LOGIN = "dev-login"


def encodings(secret: str, login: str = LOGIN) -> dict[str, str]:
    escaped = json.dumps(secret)[1:-1]
    return {
        "raw": secret,
        "percent": quote(secret, safe=""),
        "percent-lower": quote(secret, safe="").lower(),
        "plus": quote_plus(secret, safe=""),
        "form": quote_plus(secret),
        "html": html.escape(secret),
        "json": escaped,
        "json-php": escaped.replace("/", "\\/"),
        "json-utf8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "basic": base64.b64encode(f"{login}:{secret}".encode()).decode(),
    }


def leaked(text: str, secret: str = PASSWORD, login: str = LOGIN) -> list[str]:
    forms = encodings(secret, login)
    forms.pop("percent-lower")  # case-folded: compare on the lowered text below
    found = [name for name, form in forms.items() if form in text]
    if quote(secret, safe="").lower() in text.lower() and "percent" not in found:
        found.append("percent-lower")
    return found


@pytest.mark.parametrize("name", list(encodings(PASSWORD)))
def test_mask_secrets_masks_every_encoding(name: str) -> None:
    from plumasync.errors import mask_secrets

    form = encodings(PASSWORD)[name]
    text = mask_secrets(f"before {form} after", (LOGIN, PASSWORD))
    assert text == "before *** after"


def test_the_cli_scrub_masks_every_encoding() -> None:
    opts = GlobalOptions(login=LOGIN, password=PASSWORD)
    text = opts.scrub(" | ".join(encodings(PASSWORD).values()))
    assert leaked(text) == [], text


def echoing(status: int, bodies: list[bytes]) -> httpx.AsyncClient:
    """A server that answers every request with ``status`` and an error body echoing the request."""

    def handler(request: httpx.Request) -> httpx.Response:
        echo = request.content.decode() + " " + request.headers.get("authorization", "")
        bodies.append(echo.encode())
        return httpx.Response(status, json={"error": f"cannot log in with {echo}, {html.escape(echo)}, "
                                                     f"{json.dumps(echo)}"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_an_echoed_login_form_never_reaches_the_exception(status: int) -> None:
    bodies: list[bytes] = []
    async with PlumClient(login=LOGIN, password=PASSWORD, http_client=echoing(status, bodies),
                          retry=RetryPolicy(attempts=1)) as plum:
        with pytest.raises(PlumError) as caught:
            await plum.voicetrends.authenticate()
    assert quote_plus(PASSWORD) in bodies[0].decode()  # the form really was echoed
    assert leaked(str(caught.value)) == [], str(caught.value)
    assert leaked(repr(caught.value)) == []


async def test_an_echoed_authorization_header_never_reaches_the_exception() -> None:
    bodies: list[bytes] = []
    async with PlumClient(login=LOGIN, password=PASSWORD, http_client=echoing(400, bodies),
                          retry=RetryPolicy(attempts=1)) as plum:
        with pytest.raises(PlumError) as caught:
            await plum.calllogs.log(1)
    assert leaked(str(caught.value)) == [], str(caught.value)


async def test_temporary_credentials_never_reach_the_exception() -> None:
    temporary = ("tmp-login-7", "tmp/pass word+9")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"login": temporary[0], "password": temporary[1]})
        echo = request.headers.get("authorization", "")
        pair = base64.b64decode(echo.split()[1]).decode()
        return httpx.Response(400, json={"error": f"bad {echo} ({quote(pair, safe='')}, {json.dumps(pair)})"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with PlumClient(login=LOGIN, password=PASSWORD, http_client=http, retry=RetryPolicy(attempts=1)) as plum:
        with pytest.raises(PlumError) as caught:
            await plum.voicetrends.volume(date(2018, 2, 1), date(2018, 2, 2))
    text = str(caught.value)
    assert leaked(text, temporary[1], temporary[0]) == [], text
    assert temporary[0] not in text


def test_a_parse_error_snippet_is_masked() -> None:
    from plumasync.errors import register_secret

    register_secret("snippet-secret/1")
    exc = ResponseParseError("bad", endpoint="x", snippet="echo snippet-secret%2F1 and snippet-secret/1")
    assert "snippet-secret" not in exc.snippet and "snippet-secret" not in str(exc)
