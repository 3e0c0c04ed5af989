"""Metalink 4 documents (RFC 5854) as mirror lists: base URLs with priorities and
locations, and the hashes of the files they describe."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

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


def parse_metalink(text: str | bytes) -> Metalink:
    """The mirrors and hashes of a Metalink 4 document.

    Each ``<file name="path">`` gives hashes for ``path``; each of its ``<url>`` that ends
    with ``path`` gives the mirror base in front of it. A base's priority is the best
    (lowest) it has on any file. URLs that are not http(s), or do not end with their file's
    name, are skipped with a warning. Raises :class:`MetalinkError` on a malformed document.
    """
    try:
        root = fromstring(text)  # entity bombs and external references are refused
    except ParseError as exc:
        raise MetalinkError(f"not well-formed XML: {exc}") from None
    except DefusedXmlException as exc:
        raise MetalinkError(f"refused: {type(exc).__name__}") from None
    if root.tag != f"{NAMESPACE}metalink":
        raise MetalinkError("not a Metalink 4 document (root element "
                            f"{root.tag.split('}')[-1]!r})")
    bases: dict[str, MetalinkMirror] = {}
    found = Metalink()
    for file in root.iter(f"{NAMESPACE}file"):
        name = (file.get("name") or "").lstrip("/")
        if not name or ".." in name.split("/"):
            log.warning("metalink: a <file> without a usable name is ignored")
            continue
        hashes = {}
        for element in file.findall(f"{NAMESPACE}hash"):
            algorithm = HASH_TYPES.get((element.get("type") or "").lower())
            if algorithm and element.text:
                hashes[algorithm] = element.text.strip().lower()
        if hashes:
            found.hashes[name] = hashes
        for element in file.findall(f"{NAMESPACE}url"):
            url = (element.text or "").strip()
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - a malformed port raises here
            except ValueError:
                parts = None
            if parts is None or parts.scheme not in ("http", "https") or "@" in parts.netloc:
                log.warning("metalink: %s ignored: not an http(s) URL", name)
                continue
            if not url.endswith("/" + name):
                log.warning("metalink: a URL of %s does not end with its name; ignored", name)
                continue
            base = url[:-len(name)]
            try:
                priority = int(element.get("priority") or 999_999)
            except ValueError:
                priority = 999_999
            location = (element.get("location") or "").lower()
            known = bases.get(base)
            if known is None or priority < known.priority:
                bases[base] = MetalinkMirror(base, priority, location or
                                             (known.location if known else ""))
    found.mirrors = sorted(bases.values(), key=lambda mirror: (mirror.priority, mirror.base))
    return found
