"""Where a Remote's secrets go, and which of them a move of the remote clears.

One rule for every entry point (API, admin, command line, plugin code), applied by
:meth:`Remote.clean() <pulp_downloads.models.Remote.clean>`:

- each secret reaches a set of *places*, the origins (scheme, host, port) of the URL fields
  listed in :data:`SECRET_REACH`: the origin credentials (password, bearer token, client
  certificate and key, custom header values) go to ``url``, ``mirrors`` and
  ``mirrorlist_url``, and through ``proxy_url`` (a proxy relays a plain-http request's
  ``Authorization`` and headers as they are); the proxy password goes to ``proxy_url``;
- a change that makes a secret reach a place it did not reach before clears it (with its
  companion field: the username with the password, the client certificate with its key),
  unless the same change supplies it again. A custom header is a secret of its own: it is
  removed unless the change gives its value again.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulp_downloads import urlrules

#: The URL fields whose change moves a remote.
PLACE_FIELDS = ("url", "mirrors", "mirrorlist_url", "proxy_url")
#: secret field -> (URL fields whose origins receive it, the field cleared with it).
SECRET_REACH: dict[str, tuple[tuple[str, ...], str | None]] = {
    "password": (PLACE_FIELDS, "username"),
    "bearer_token": (PLACE_FIELDS, None),
    "client_key": (PLACE_FIELDS, "client_cert"),
    "headers": (PLACE_FIELDS, None),
    "proxy_password": (("proxy_url",), "proxy_username"),
}


def places(values: Mapping[str, Any], fields: Iterable[str]) -> frozenset[str]:
    """The origins the URL ``fields`` of ``values`` (a Remote's ``__dict__``) point at."""
    urls: list[str] = []
    for field in fields:
        value = values.get(field)
        if isinstance(value, str) and value:
            urls.append(value)
        elif isinstance(value, list):
            urls.extend(item for item in value if isinstance(item, str) and item)
    return urlrules.origins_of(urls)


@dataclass(frozen=True)
class StoredReach:
    """What the database holds for one remote: the places each secret reaches, and the
    secrets themselves (the headers as a name -> value dict)."""

    places: dict[str, frozenset[str]]
    secrets: dict[str, Any]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> StoredReach | None:
        """The state of a fully loaded Remote's ``__dict__``; ``None`` for a partial load
        (``.only()``), which leaves nothing to compare with."""
        if not all(field in values for field in (*PLACE_FIELDS, *SECRET_REACH)):
            return None
        headers = values["headers"]
        return cls(
            places={secret: places(values, fields)
                    for secret, (fields, _) in SECRET_REACH.items()},
            secrets={**{secret: values[secret] for secret in SECRET_REACH},
                     "headers": dict(headers) if isinstance(headers, dict) else {}},
        )


@dataclass(frozen=True)
class Cleared:
    """What :func:`clear_for_new_places` cleared: secret field names (``"headers"`` when
    any header went) and the names of the removed headers."""

    secrets: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()


def clear_for_new_places(remote: Any, stored: StoredReach, supplied: frozenset[str],
                         supplied_headers: frozenset[str]) -> Cleared:
    """Clear, on ``remote``, each secret that now reaches a place it did not reach in
    ``stored``, unless it is ``supplied`` (or its value differs from the stored one: a new
    value is supplied too). ``supplied_headers`` holds lower-cased header names."""
    values = remote.__dict__
    cleared: list[str] = []
    gone_headers: list[str] = []
    for secret, (fields, companion) in SECRET_REACH.items():
        if places(values, fields) <= stored.places[secret]:
            continue
        if secret == "headers":
            gone_headers = _clear_headers(remote, stored.secrets["headers"], supplied_headers)
            if gone_headers:
                cleared.append(secret)
            continue
        value = getattr(remote, secret)
        if not value or secret in supplied or value != stored.secrets[secret]:
            continue
        setattr(remote, secret, "")
        if companion:
            setattr(remote, companion, "")
        cleared.append(secret)
    return Cleared(tuple(cleared), tuple(gone_headers))


def _clear_headers(remote: Any, stored: dict, supplied: frozenset[str]) -> list[str]:
    headers = remote.headers
    if not isinstance(headers, dict):
        return []
    stored_by_name = {name.lower(): value for name, value in stored.items()}
    kept, gone = {}, []
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else name
        if (lowered in stored_by_name and lowered not in supplied
                and value == stored_by_name[lowered]):
            gone.append(name)
        else:
            kept[name] = value
    if gone:
        remote.headers = kept
    return gone
