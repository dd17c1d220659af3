"""Body rendering for the sandbox: PHP-style JSON and the XML representations.

JSON is compact, ASCII-only and escapes ``/`` as ``\\/`` (PHP ``json_encode``); an empty map is ``[]``.
XML documents start with ``<?xml version="1.0"?>``, except Call Logs failure envelopes, which (as in
Plum's sample) have no prolog.  See the package docstring for every XML shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "JSON",
    "XML",
    "XML_PROLOG",
    "Body",
    "envelope_failure",
    "envelope_success",
    "geographic_body",
    "path_body",
    "php_json",
    "series_body",
    "simple_body",
    "wants_xml",
]

JSON = "application/json"
XML = "application/xml"
XML_PROLOG = '<?xml version="1.0"?>'

#: A rendered body: (content type, bytes).
Body = tuple[str, bytes]

Scalar = str | int | float
_BRACKET = re.compile(r"\[[^\]]*\]")


def php_json(value: object) -> bytes:
    """``json_encode``-style JSON: compact, ASCII, ``/`` escaped as ``\\/``."""
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def wants_xml(accept: str) -> bool:
    """True when the Accept header prefers ``application/xml`` (or ``text/xml``) over JSON."""
    best: tuple[float, int, bool] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        if media not in (JSON, XML, "text/xml"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        candidate = (-q, position, media != JSON)
        if best is None or candidate < best:
            best = candidate
    return best is not None and best[2]


def _num(value: Scalar) -> str:
    """A number or string as XML text (numbers formatted exactly as in the JSON body)."""
    return escape(value) if isinstance(value, str) else json.dumps(value)


def _elements(fields: Mapping[str, Scalar]) -> str:
    return "".join(f"<{k}>{_num(v)}</{k}>" for k, v in fields.items())


def _doc(root: str, inner: str) -> bytes:
    return f"{XML_PROLOG}<{root}>{inner}</{root}>".encode()


def simple_body(root: str, fields: Mapping[str, Scalar], xml: bool) -> Body:
    """A flat VoiceTrends object (auth result, ``{"error": ...}``)."""
    if xml:
        return XML, _doc(root, _elements(fields))
    return JSON, php_json(dict(fields))


def series_body(root: str, series: Mapping[str, Mapping[str, int | float]], xml: bool) -> Body:
    """Period series: JSON ``{"calls":{"<epoch>":n,...},...}`` (``[]`` when empty), XML ``<item>`` lists."""
    if xml:
        inner = "".join(
            f"<{name}>"
            + "".join(f'<item timestamp="{ts}">{_num(v)}</item>' for ts, v in values.items())
            + f"</{name}>"
            for name, values in series.items()
        )
        return XML, _doc(root, inner)
    return JSON, php_json({name: dict(values) if values else [] for name, values in series.items()})


def geographic_body(us: Mapping[str, int], non_us: Mapping[str, int], xml: bool) -> Body:
    """Geographic: ``{"US":{...},"NON_US":[] or {...}}``; XML ``<region name="..">`` lists."""
    if xml:

        def regions(values: Mapping[str, int]) -> str:
            return "".join(f"<region name={quoteattr(k)}>{v}</region>" for k, v in values.items())

        non = f"<NON_US>{regions(non_us)}</NON_US>" if non_us else "<NON_US/>"
        return XML, _doc("geographic", f"<US>{regions(us)}</US>{non}")
    return JSON, php_json({"US": dict(us) if us else [], "NON_US": dict(non_us) if non_us else []})


def path_body(applications: Mapping[str, Sequence[Mapping[str, Scalar]]], xml: bool) -> Body:
    """Diagnostic flow: ``{"applications":{url:[node,...]}}``; XML ``<application url=..><node>``."""
    if xml:
        inner = "".join(
            f"<application url={quoteattr(url)}>"
            + "".join(f"<node>{_elements(node)}</node>" for node in nodes)
            + "</application>"
            for url, nodes in applications.items()
        )
        return XML, _doc("path", f"<applications>{inner}</applications>")
    apps = {url: [dict(n) for n in nodes] for url, nodes in applications.items()}
    return JSON, php_json({"applications": apps if apps else []})


def xml_line(line: str) -> str:
    """A session/error line as Plum's XML shows it: slashes in the bracketed timestamp stay ``\\/``."""
    return _BRACKET.sub(lambda m: m.group(0).replace("/", "\\/"), line, count=1)


def envelope_failure(root: str, error: str, xml: bool) -> Body:
    """Call Logs failure envelope as documented (JSON with its trailing comma; XML without prolog)."""
    if xml:
        return XML, f"<{root}><status>failure</status><error>{escape(error)}</error></{root}>".encode()
    return JSON, b'{"status":"failure","error":' + php_json(error) + b",}"


def envelope_success(
    root: str, result: Mapping[str, object], xml: bool, *, list_name: str = "", item_name: str = ""
) -> Body:
    """Call Logs success envelope.  ``result`` values are strings, or (for ``list_name``) a list of
    strings / string-valued dicts rendered as ``<item_name>`` children in XML."""
    if not xml:
        return JSON, php_json({"status": "success", "error": "", "result": dict(result)})
    parts: list[str] = []
    for key, value in result.items():
        if key == list_name and isinstance(value, list):
            children = "".join(
                f"<{item_name}>{_elements(v)}</{item_name}>"
                if isinstance(v, Mapping)
                else f"<{item_name}>{escape(xml_line(str(v)))}</{item_name}>"
                for v in value
            )
            parts.append(f"<{key}>{children}</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    inner = f"<status>success</status><error></error><result>{''.join(parts)}</result>"
    return XML, _doc(root, inner)
