"""Files the channel adapters move: an agent's attachment read from our disk before it goes out, and a
customer's file downloaded from a provider."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from kommutator.channels.base import OutboundAttachment, SendError

MB = 1024 * 1024
# A file larger than this is not downloaded at all (the file store refuses anything above its own cap).
MAX_DOWNLOAD_BYTES = 32 * MB
_MAX_REDIRECTS = 3


def megabytes(size: int) -> str:
    """Rounded up, so that a file just over a limit never reads as the limit itself."""
    return f"{math.ceil(size * 10 / MB) / 10:.1f} MB"


def _not_on_disk(name: str) -> SendError:
    return SendError(retryable=False, reason=f"the file {name!r} is not on this server's disk")


def check(attachment: OutboundAttachment, limit: int, *, refusal: str) -> None:
    """SendError (permanent) when the file is larger than ``limit`` (``refusal`` says whose limit, as in
    "VK takes files of at most 200 MB") or not on this server's disk."""
    if attachment.size > limit:
        raise SendError(retryable=False, reason=f"{refusal}; {attachment.filename!r} is "
                                                f"{megabytes(attachment.size)} — send a smaller file or a link")
    if attachment.path is None:
        raise _not_on_disk(attachment.filename)


def _load(path: Path, limit: int) -> bytes | None:
    if path.stat().st_size > limit:
        return None
    return path.read_bytes()


async def read(attachment: OutboundAttachment, limit: int, *, provider: str) -> bytes:
    """The file's bytes, read in a thread; a file that grew past ``limit`` on disk is refused, never loaded.
    SendError (permanent) names ``provider`` as the one whose limit the file is over."""
    name = attachment.filename
    if attachment.path is None:
        raise _not_on_disk(name)
    try:
        data = await asyncio.to_thread(_load, attachment.path, limit)
    except OSError as exc:
        raise SendError(retryable=False, reason=f"the file {name!r} cannot be read from storage "
                                                f"({type(exc).__name__}); it may have been removed") from None
    if data is None:
        raise SendError(retryable=False, reason=f"the file {name!r} on disk is larger than {provider} allows "
                                                f"({limit // MB} MB)")
    return data


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
