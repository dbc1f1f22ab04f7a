"""Twilio's request signature: ``X-Twilio-Signature`` = Base64(HMAC-SHA1(auth token, URL + sorted params))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature of a request to ``url`` (with its query string) carrying form ``params``: every key
    sorted, each key's distinct values sorted, each appended as key then value (as Twilio's libraries do)."""
    values: dict[str, set[str]] = {}
    for key, value in params:
        values.setdefault(key, set()).add(value)
    data = url + "".join(key + value for key in sorted(values) for value in sorted(values[key]))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def url_variants(url: str) -> list[str]:
    """The URL as given, without and with its scheme's default port: proxies and Twilio's own libraries
    differ on whether ``:443`` is part of the signed URL."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.username or default is None:
        return [url]
    try:
        port = parts.port
    except ValueError:
        return [url]
    variants = [url]
    if port in (None, default):
        for netloc in (host, f"{host}:{default}"):
            variant = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
            if variant not in variants:
                variants.append(variant)
    return variants


def matches(auth_token: str, urls: Iterable[str], params: list[tuple[str, str]], given: str) -> bool:
    """Whether ``given`` is the signature of the request for any of ``urls``, compared in constant time."""
    found = False
    for candidate in urls:
        for variant in url_variants(candidate):
            # No early exit: every candidate is computed and compared the same way.
            found |= hmac.compare_digest(signature(auth_token, variant, params).encode(), given.encode("utf-8"))
    return found
