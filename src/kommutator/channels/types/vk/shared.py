"""Helpers the VK and SMS adapters share: splitting long texts, cleaning provider text, downloading files.

They belong in ``kommutator.channels`` once the core takes them; until then the SMS adapter imports them
from here.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx

from kommutator.channels.base import SendError

# Where a text is best cut, most preferred first; a separator only counts past the first third of a piece,
# so that a paragraph break near the start does not leave a tiny first piece.
_SEPARATORS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")

# A file larger than this is not downloaded at all (the file store refuses anything above its own cap).
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
_MAX_REDIRECTS = 3


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as SMS gateways count (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int, size: Callable[[str], int]) -> int:
    """The longest prefix of ``text`` (in code points) whose ``size`` is at most ``limit``."""
    if size is len:
        return min(limit, len(text))
    low, high = 0, min(limit, len(text))
    while low < high:
        middle = (low + high + 1) // 2
        if size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def split_text(text: str, limit: int, *, size: Callable[[str], int] = len) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (measured by ``size``), between paragraphs, lines,
    sentences or words when possible; a word longer than a piece is cut where it must be."""
    pieces: list[str] = []
    rest = text.strip()
    while rest and size(rest) > limit:
        cut = max(1, _fit(rest, limit, size))
        window = rest[:cut]
        for separator in _SEPARATORS:
            at = window.rfind(separator)
            if at >= cut // 3:
                cut = at + len(separator)
                break
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def clean_text(value: str) -> str:
    """Provider text made storable: NUL characters dropped, lone surrogates (from JSON escapes) replaced."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


async def download(client: httpx.AsyncClient, url: str, *, what: str, auth: tuple[str, str] | None = None,
                   auth_host: str | None = None, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """GET a file, following a few redirects by hand (each hop through the guarded client); ``auth`` is
    sent only to ``auth_host``, never to the storage a redirect leads to. Raise SendError: retryable
    for network trouble, 429 and 5xx, permanent when the file is gone or too large."""
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SendError(retryable=False, reason=f"{what}: {current!r} is not an http(s) URL")
        credentials = auth if auth is not None and parts.netloc == auth_host else None
        try:
            async with client.stream("GET", current, auth=credentials, follow_redirects=False) as response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308) and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if status == 429 or status >= 500:
                    raise SendError(retryable=True, reason=f"{what}: {parts.netloc} answered HTTP {status}")
                if status != 200:
                    raise SendError(retryable=False, reason=f"{what}: {parts.netloc} answered HTTP {status}; "
                                                            "the file is no longer available")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise SendError(retryable=False, reason=f"{what}: the file is larger than {max_bytes} bytes")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise SendError(retryable=False,
                                        reason=f"{what}: the file is larger than {max_bytes} bytes")
                return bytes(data)
        except httpx.TimeoutException:
            raise SendError(retryable=True, reason=f"{what}: {parts.netloc} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SendError(retryable=True, reason=f"{what}: cannot reach {parts.netloc}: "
                                                   f"{str(exc) or type(exc).__name__}") from None
    raise SendError(retryable=False, reason=f"{what}: more than {_MAX_REDIRECTS} redirects")
