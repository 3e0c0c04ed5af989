"""Metalink 4 documents (RFC 5854) as mirror lists: base URLs with priorities and
locations, and the hashes of the files they describe."""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import iterparse  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

NAMESPACE = "{urn:ietf:params:xml:ns:metalink}"
#: Metalink hash type names -> hashlib names.
HASH_TYPES = {"md5": "md5", "sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256",
              "sha-384": "sha384", "sha-512": "sha512"}
#: Content types (and URL suffix) that mark a mirror list as Metalink.
CONTENT_TYPE = "application/metalink4+xml"
SUFFIX = ".meta4"


class MetalinkError(ValueError):
    """The document is not a Metalink 4 document this library can use."""


@dataclass(frozen=True)
class MetalinkMirror:
    """A base URL of a mirror with its priority (1 is the best) and location (ISO code)."""

    base: str
    priority: int = 999_999
    location: str = ""


@dataclass
class Metalink:
    """The mirrors (best priority first) and ``{relative path: {algorithm: hex}}``."""

    mirrors: list[MetalinkMirror] = field(default_factory=list)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)


def is_metalink(url: str, content_type: str) -> bool:
    """Whether a mirror list answered with ``content_type`` from ``url`` is Metalink."""
    return (content_type.split(";")[0].strip().lower() == CONTENT_TYPE
            or urlsplit(url).path.endswith(SUFFIX))


#: Deepest element nesting read: a Metalink needs 3 (metalink, file, url); more is refused.
MAX_DEPTH = 32
#: Most elements read (a file with its hashes and a dozen mirrors takes about 20); a
#: document with more is refused, which bounds the time spent parsing it.
MAX_ELEMENTS = 500_000
#: Most distinct mirror bases kept from one document (a remote uses at most
#: :data:`~.mirrors.MAX_MIRRORS` of them); URLs of further bases are ignored with a warning.
MAX_BASES = 10_000


def parse_metalink(text: str | bytes) -> Metalink:
    """The mirrors and hashes of a Metalink 4 document.

    Each ``<file name="path">`` gives hashes for ``path``; each of its ``<url>`` that ends
    with ``path`` gives the mirror base in front of it. A base's priority is the best
    (lowest) it has on any file. URLs that are not http(s), or do not end with their file's
    name, are skipped with a warning. Raises :class:`MetalinkError` on a malformed document,
    one nested deeper than :data:`MAX_DEPTH` or one of more than :data:`MAX_ELEMENTS`
    elements.

    The document is parsed as a stream and each element is dropped once read, so memory
    grows with the mirrors and hashes kept (at most :data:`MAX_BASES` bases), not with the
    document's elements.
    """
    source = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
    bases: dict[str, MetalinkMirror] = {}
    found = Metalink()
    stack: list[Element] = []
    name = ""  # of the <file> being read ("" when unusable)
    hashes: dict[str, str] = {}
    skipped = {"url": 0, "name": 0, "bases": 0}
    elements = 0
    try:
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start":
                elements += 1
                if elements > MAX_ELEMENTS:
                    raise MetalinkError(f"more than {MAX_ELEMENTS} elements")
                if not stack and element.tag != f"{NAMESPACE}metalink":
                    raise MetalinkError("not a Metalink 4 document (root element "
                                        f"{element.tag.split('}')[-1]!r})")
                stack.append(element)
                if len(stack) > MAX_DEPTH:
                    raise MetalinkError(f"nested deeper than {MAX_DEPTH} elements")
                if element.tag == f"{NAMESPACE}file" and len(stack) == 2:
                    name = (element.get("name") or "").lstrip("/")
                    if not name or ".." in name.split("/"):
                        name = ""
                        skipped["name"] += 1
                    hashes = {}
                continue
            stack.pop()
            parent = stack[-1] if stack else None
            in_file = (len(stack) == 2 and parent is not None
                       and parent.tag == f"{NAMESPACE}file")
            if in_file and name and element.tag == f"{NAMESPACE}hash":
                algorithm = HASH_TYPES.get((element.get("type") or "").lower())
                if algorithm and element.text:
                    hashes[algorithm] = element.text.strip().lower()
            elif in_file and name and element.tag == f"{NAMESPACE}url":
                _add_url(bases, name, element, skipped)
            elif element.tag == f"{NAMESPACE}file" and len(stack) == 1 and name and hashes:
                found.hashes[name] = hashes
            if parent is not None:
                parent.remove(element)  # the last child: read, and not needed again
    except ParseError as exc:
        raise MetalinkError(f"not well-formed XML: {exc}") from None
    except DefusedXmlException as exc:
        raise MetalinkError(f"refused: {type(exc).__name__}") from None
    if skipped["name"]:
        log.warning("metalink: %d <file>(s) without a usable name ignored", skipped["name"])
    if skipped["url"]:
        log.warning("metalink: %d URL(s) ignored: not http(s), or not ending with their "
                    "file's name", skipped["url"])
    if skipped["bases"]:
        log.warning("metalink: URLs of more than %d mirror bases; %d URL(s) of further bases "
                    "ignored", MAX_BASES, skipped["bases"])
    found.mirrors = sorted(bases.values(), key=lambda mirror: (mirror.priority, mirror.base))
    return found


def _add_url(bases: dict[str, MetalinkMirror], name: str, element: Element,
             skipped: dict[str, int]) -> None:
    """Take the mirror base of a ``<url>`` of the file ``name`` into ``bases``."""
    url = (element.text or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or "@" in parts.netloc
            or not url.endswith("/" + name)):
        skipped["url"] += 1
        return
    base = url[:-len(name)]
    known = bases.get(base)
    if known is None and len(bases) >= MAX_BASES:
        skipped["bases"] += 1
        return
    try:
        priority = int(element.get("priority") or 999_999)
    except ValueError:
        priority = 999_999
    location = (element.get("location") or "").lower()
    if known is None or priority < known.priority:
        bases[base] = MetalinkMirror(base, priority, location or
                                     (known.location if known else ""))
