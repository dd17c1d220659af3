"""XML through the C ElementTree behind a DTD pre-scan: the classic attacks refused in every encoding,
and every document without a DTD parsed exactly as defusedxml parsed it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wire import SEEDS, _parse_any, _seed_bodies

from plumasync import envelope, safexml, wire
from plumasync.errors import ResponseParseError
from plumasync.models import ProfileReport
from plumasync.testing import sandbox_bodies

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10))
    + "]>\n<logs><status>success</status><error>&lol9;</error></logs>"
)
ATTACKS = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<logs><status>success</status><error>&x;</error></logs>",
    "parameter entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    "<logs><status>success</status></logs>",
    "external DTD": '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
    "<logs><status>success</status></logs>",
    "internal subset, no entity": "<!DOCTYPE logs [<!ELEMENT logs ANY>]><logs><status>success</status></logs>",
    "bare DOCTYPE": "<!DOCTYPE logs><logs><status>success</status></logs>",
    "unparsed entity": '<!DOCTYPE r [<!NOTATION n SYSTEM "x"><!ENTITY u SYSTEM "file:///etc/passwd" NDATA n>]>'
    "<r/>",
}


def _declared(doc: str, encoding: str) -> str:
    """``doc`` with its XML declaration naming ``encoding`` (added when it has none)."""
    body = re.sub(r"^<\?xml[^>]*\?>", "", doc)
    return f'<?xml version="1.0" encoding="{encoding}"?>' + body


def _encodings(doc: str) -> Iterator[tuple[str, bytes | str]]:
    yield "str", doc
    yield "utf-8", doc.encode()
    yield "utf-8 BOM", b"\xef\xbb\xbf" + doc.encode()
    yield "utf-8 declared", _declared(doc, "UTF-8").encode()
    yield "utf-16 BOM", _declared(doc, "UTF-16").encode("utf-16")
    yield "utf-16-le, no BOM", _declared(doc, "UTF-16").encode("utf-16-le")
    yield "utf-16-be, no BOM", _declared(doc, "UTF-16").encode("utf-16-be")
    yield "utf-16 undeclared", doc.encode("utf-16")
    yield "latin-1", _declared(doc, "ISO-8859-1").encode("latin-1")
    yield "cp500 (EBCDIC)", _declared("", "cp500").encode() + re.sub(r"^<\?xml[^>]*\?>", "", doc).encode("cp500")
    yield "utf-7", _declared("", "UTF-7").encode() + re.sub(r"^<\?xml[^>]*\?>", "", doc).encode("utf-7")
    yield "utf-16 declared in str", _declared(doc, "UTF-16")


CASES = [(f"{name}, {enc}", body) for name, doc in ATTACKS.items() for enc, body in _encodings(doc)]


@pytest.mark.parametrize(("case", "body"), CASES, ids=[c for c, _ in CASES])
def test_every_dtd_is_refused_in_every_encoding(case: str, body: bytes | str) -> None:
    """Nothing of a DTD reaches expat: the document is refused before its entities mean anything."""
    with pytest.raises(ResponseParseError, match="invalid XML") as caught:
        wire.parse_log_page(body, "xml")
    assert "root:" not in str(caught.value) and "lollol" not in str(caught.value)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_dtds_are_refused_as_defusedxml_refuses_them(name: str) -> None:
    """The same typed error as defusedxml's own DTD check, on the fast path's documents too."""
    with pytest.raises(ResponseParseError) as caught:
        envelope.loads_xml(ATTACKS[name].encode(), "calls/logs")
    assert isinstance(caught.value.__cause__, defusedxml.DTDForbidden)
    assert str(caught.value).startswith("calls/logs: invalid XML: DTDForbidden(")


@pytest.mark.parametrize("name", ["bare DOCTYPE", "internal subset, no entity"])
def test_a_dtd_without_entities_is_refused_too(name: str) -> None:
    """New: defusedxml's defaults let a DTD without entities through; no DTD reaches the parser now."""
    with pytest.raises(ResponseParseError, match="DTDForbidden"):
        wire.parse_xml_envelope(ATTACKS[name])


def test_the_billion_laughs_would_expand_without_the_scan() -> None:
    """The attack document is real: expat alone expands it (so the refusal above is the scan's doing)."""
    small = BILLION_LAUGHS.replace("&lol9;", "&lol2;")
    assert ET.fromstring(small).findtext("error") == "lol" * 100


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every body that takes the slow (defusedxml) path."""
    slow: list[object] = []
    real = SafeET.fromstring

    def fromstring(body: bytes | str, **kw: Any) -> ET.Element:
        slow.append(body)
        return real(body, **kw)

    monkeypatch.setattr(safexml.SafeET, "fromstring", fromstring)
    return slow


@pytest.mark.parametrize(
    ("body", "fast"),
    [
        (b'<?xml version="1.0"?><r>\xc3\xa9</r>', True),
        (b'<?xml version="1.0" encoding="UTF-8"?><r/>', True),
        (b"<?xml version='1.0' encoding='utf-8' standalone='yes'?><r/>", True),
        (b"\xef\xbb\xbf<r/>", True),
        ("<r>é</r>", True),
        ('<?xml version="1.0" encoding="UTF-16"?><r/>', True),  # a str is UTF-8 to expat, whatever it says
        ("<r><![CDATA[<!DOCTYPE r>]]></r>", False),  # a false alarm, settled by defusedxml
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><r>\xe9</r>', False),
        ("<r>é</r>".encode("utf-16"), False),
        (b'<?xml version="1.0" encoding="US-ASCII"?><r/>', False),
    ],
)
def test_which_path(spy: list[object], body: bytes | str, fast: bool) -> None:
    root = safexml.parse_xml(body)
    assert root.tag == "r" and (spy == []) is fast
    assert ET.tostring(root) == ET.tostring(SafeET.fromstring(body))


def _old_models(monkeypatch: pytest.MonkeyPatch, parse: Callable[[], object]) -> object:
    """What the same parser gave when XML went through defusedxml."""
    with monkeypatch.context() as patch:
        patch.setattr(envelope, "parse_xml", SafeET.fromstring)
        return parse()


def test_every_seed_xml_body_parses_as_before(monkeypatch: pytest.MonkeyPatch, spy: list[object]) -> None:
    xml_bodies = [b for b in _seed_bodies() if b.startswith("<")]
    fast: list[bool] = []
    assert len(xml_bodies) >= 6 and SEEDS.is_dir()
    for body in xml_bodies:
        try:
            new = _parse_any(body)
        except Exception as exc:  # the failure envelope
            new = repr(exc)
        fast.append(spy == [])
        try:
            old = _old_models(monkeypatch, lambda b=body: _parse_any(b))  # type: ignore[misc]
        except Exception as exc:
            old = repr(exc)
        assert _comparable(new) == _comparable(old)
        spy.clear()
    assert all(fast)


def _comparable(value: object) -> object:
    return ET.tostring(value) if isinstance(value, ET.Element) else value


PARSERS: dict[str, Callable[[bytes | str], object]] = {
    "logs": lambda b: wire.parse_log_page(b, "xml", 0, 10_000),
    "log": lambda b: wire.parse_log_detail(b, "xml"),
    "sessions": lambda b: wire.parse_session_page(b, "xml", 0, 10_000),
    "errors": lambda b: wire.parse_error_page(b, "xml", 0, 10_000),
}


@pytest.mark.parametrize("service", list(PARSERS))
def test_sandbox_xml_parses_as_before(monkeypatch: pytest.MonkeyPatch, spy: list[object], service: str) -> None:
    body = sandbox_bodies(40)[service, "xml"]
    new = PARSERS[service](body)
    assert spy == []  # the sandbox's documents take the fast path
    assert new == _old_models(monkeypatch, lambda: PARSERS[service](body))


def test_voicetrends_xml_parses_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    body = '<profile><calls><item timestamp="1517461200">3</item></calls><callers><item timestamp="1517461200">2</item></callers></profile>'  # noqa: E501
    parse = lambda: wire.parse_trend(body, "xml", ProfileReport)  # noqa: E731
    assert parse() == _old_models(monkeypatch, parse)


# --- fuzzing: without a DTD, the C path and defusedxml agree on every document, valid or not -----------

TAGS = st.sampled_from(["r", "a", "b:c", "status", "x"])
TEXTS = st.sampled_from(["", "1", "é", "&amp;", "&lt;", "&#60;", "&x;", "<", "]]>", "<!-- c -->", "<?pi x?>",
                         "<![CDATA[<a>]]>", " ", "\\/", "&#0;", "\x00", "\ud7ff"])


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(TAGS)
    attrs = draw(st.sampled_from(["", ' k="v"', " k='&amp;'", ' xmlns:b="u"', " k=v"]))
    inner = "".join(draw(st.lists(documents(depth + 1) if depth < 2 else TEXTS, max_size=3)))
    closing = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</other>"]))
    return f"<{tag}{attrs}>{inner}{draw(TEXTS)}{closing}"


def _outcome(parse: Callable[[bytes | str], ET.Element], body: bytes | str) -> object:
    try:
        return ET.tostring(parse(body))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@FUZZ
@given(documents(), st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-8"?>',
                                     "\ufeff", " "]), st.booleans())
def test_fuzz_same_as_defusedxml(doc: str, head: str, as_bytes: bool) -> None:
    body: bytes | str = (head + doc).encode() if as_bytes else head + doc
    assert _outcome(safexml.parse_xml, body) == _outcome(SafeET.fromstring, body)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_bytes_same_as_defusedxml(body: bytes) -> None:
    assert _outcome(safexml.parse_xml, body) == _outcome(SafeET.fromstring, body)
