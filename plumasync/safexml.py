"""Safe XML parsing at C speed: the C ElementTree behind a pre-scan that refuses every DTD.

Every attack on an XML parser that ``defusedxml`` guards against (entity expansion such as "billion
laughs", external entities such as ``file:///etc/passwd``, parameter entities, external DTDs) needs a
document type declaration: entities can only be declared inside one.  A document without
``<!DOCTYPE`` is therefore safe for expat, and the C parser handles it five times faster than
defusedxml's pure-Python parser class.  Plum never sends a DTD, so every document carrying one is
refused — as :class:`defusedxml.DTDForbidden`, the error defusedxml's own ``forbid_dtd`` check raises.

The pre-scan looks at bytes, so it must read them in the encoding expat will use.  The fast path takes
only documents whose encoding is certainly UTF-8 (no byte-order mark other than UTF-8's, no declared
encoding other than UTF-8) and forces expat to decode them as UTF-8, so no declaration can make the
parser read characters the scan did not see.  Anything else (UTF-16, Latin-1, EBCDIC...) goes through
defusedxml with ``forbid_dtd=True``: slower, just as strict, and it decodes like before.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, XMLParser

import defusedxml.ElementTree as SafeET

__all__ = ["parse_xml"]

_DECLARATION = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']", re.ASCII)
_UTF8_NAMES = frozenset({b"utf-8"})
_UTF8_BOM = b"\xef\xbb\xbf"
_DTD_MARKERS = ("<!DOCTYPE", "<!ENTITY")  # markup is case-sensitive: expat knows no other spelling
_DTD_MARKERS_B = tuple(marker.encode() for marker in _DTD_MARKERS)


def _certainly_utf8(body: bytes) -> bool:
    """True when expat, told to read ``body`` as UTF-8, reads what the document says it is."""
    head = body[:4]
    if head.startswith(_UTF8_BOM):
        head = body[3:7]
        body = body[3:]
    if b"\x00" in head or head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16/32, with or without BOM
        return False
    if not body.startswith(b"<?xml"):
        return True  # no declaration (one anywhere else is an error expat reports)
    end = body.find(b"?>")
    declaration = _DECLARATION.match(body[: end if end >= 0 else 200])
    return declaration is None or declaration[1].lower() in _UTF8_NAMES


def _has_dtd(body: bytes | str) -> bool:
    """True when a DOCTYPE or ENTITY declaration could be in ``body`` (a comment or CDATA section
    naming one is a false alarm, settled by the slow path)."""
    if isinstance(body, str):
        return any(marker in body for marker in _DTD_MARKERS)
    return any(marker in body for marker in _DTD_MARKERS_B)


def parse_xml(body: bytes | str) -> Element:
    """The root element of ``body``; any DTD raises :class:`defusedxml.DTDForbidden`.

    Malformed XML raises :class:`xml.etree.ElementTree.ParseError` with expat's message, as before.
    A ``str`` body is fed to expat as UTF-8 whatever its declaration says, so it always takes the
    fast path unless it names a DTD.
    """
    if _has_dtd(body) or (isinstance(body, bytes) and not _certainly_utf8(body)):
        root: Element = SafeET.fromstring(body, forbid_dtd=True)
        return root
    parser = XMLParser(encoding="utf-8")
    parser.feed(body)
    fast: Element = parser.close()
    return fast
