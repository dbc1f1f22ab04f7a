"""Agents' files on VK: photos and documents go through VK's upload servers before ``messages.send`` names
them in ``attachment``.

A photo: ``photos.getMessagesUploadServer`` → POST the file (field ``photo``) to the ``upload_url`` →
``photos.saveMessagesPhoto(server, photo, hash)`` → ``photo{owner_id}_{id}``. Anything else:
``docs.getMessagesUploadServer(type=doc)`` → POST (field ``file``) → ``docs.save(file)`` → ``doc{owner_id}_{id}``.
VK's API answers errors with HTTP 200 and ``{"error": {...}}``; its upload servers with ``{"error": "..."}``.
Files are checked before anything goes out, and a file over VK's limit is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from kommutator.channels import files
from kommutator.channels.base import OutboundAttachment, SendError
from kommutator.channels.files import MB
from kommutator.channels.types.vk import outbound
from kommutator.common.jsonsafe import loads_json

PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})  # GIFs go as documents, which keep them animated
PHOTO_LIMIT = 50 * MB  # a larger picture goes as a document
DOC_LIMIT = 200 * MB
# VK takes documents of any type but MP3 (audio belongs in its music catalogue) and executables.
REFUSED_EXTENSIONS = frozenset({"mp3", "exe", "msi", "apk", "bat", "cmd", "com", "scr"})
MAX_ATTACHMENTS = 10  # per message
_UPLOAD_TIMEOUT = 120.0
_MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class Media:
    """One file and how it goes to VK."""

    attachment: OutboundAttachment
    kind: str  # photo | doc

    @property
    def limit(self) -> int:
        return PHOTO_LIMIT if self.kind == "photo" else DOC_LIMIT


@dataclass(frozen=True)
class Api:
    """Where and as whom to call VK's API for one channel."""

    base_url: str
    token: str
    version: str

    def form(self, **params: str) -> dict[str, str]:
        return {**params, "access_token": self.token, "v": self.version}


def check(attachment: OutboundAttachment) -> Media:
    """How the file goes; SendError (permanent) when VK would refuse it or it is not on disk."""
    name = attachment.filename
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in REFUSED_EXTENSIONS or attachment.content_type.lower() == "audio/mpeg":
        raise SendError(retryable=False, reason=(
            f"VK does not take MP3 or executable files as documents ({name!r}); pack the file in a ZIP archive "
            "or send a link"))
    kind = "photo" if attachment.content_type.lower() in PHOTO_TYPES and attachment.size <= PHOTO_LIMIT else "doc"
    files.check(attachment, DOC_LIMIT, refusal=f"VK takes files of at most {DOC_LIMIT // MB} MB")
    return Media(attachment, kind)


def _json(response: httpx.Response, content: bytes, what: str) -> Any:
    status = response.status_code
    if status == 429 or status >= 500:
        raise SendError(retryable=True, reason=f"VK answered HTTP {status} while {what}",
                        retry_after=1.0 if status == 429 else None)
    if status != 200:
        raise SendError(retryable=False, reason=f"VK answered HTTP {status} while {what}; check the channel's "
                                                "api_base_url")
    try:
        return loads_json(content)
    except ValueError:
        raise SendError(retryable=True, reason=f"VK answered with something that is not JSON while {what}") from None


async def call(client: httpx.AsyncClient, api: Api, method: str, params: dict[str, str], *,
               subject: str = "the message") -> Any:
    """POST one VK API method; its ``response``, or SendError (VK reports errors with HTTP 200)."""
    what = f"calling {method}"
    try:
        response = await client.post(f"{api.base_url}/method/{method}", data=api.form(**params),
                                     follow_redirects=False)
    except httpx.TimeoutException:
        raise SendError(retryable=True, reason=f"VK did not answer in time while {what}") from None
    except httpx.HTTPError as exc:
        raise SendError(retryable=True, reason=f"cannot reach VK while {what}: {str(exc) or type(exc).__name__}") \
            from None
    answer = _json(response, response.content, what)
    if not isinstance(answer, dict):
        raise SendError(retryable=True, reason=f"VK answered with something that is not a JSON object while {what}")
    if "error" in answer:
        raise outbound.error(answer, subject=subject)
    return answer.get("response")


async def _post_file(client: httpx.AsyncClient, url: str, field: str, media: Media, data: bytes) -> dict[str, Any]:
    """POST the file to the upload server VK named; its JSON answer."""
    name = media.attachment.filename
    what = f"uploading {name!r}"
    if not url.startswith(("https://", "http://")):
        raise SendError(retryable=True, reason=f"VK gave no upload address for {name!r}")
    try:
        async with client.stream("POST", url, files={field: (name, data, media.attachment.content_type)},
                                 timeout=_UPLOAD_TIMEOUT, follow_redirects=False) as response:
            content = b""
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > _MAX_ANSWER:
                    break
    except httpx.TimeoutException:
        raise SendError(retryable=True, reason=f"VK's upload server did not answer in time while {what}") from None
    except httpx.HTTPError as exc:
        raise SendError(retryable=True, reason=f"cannot reach VK's upload server while {what}: "
                                               f"{str(exc) or type(exc).__name__}") from None
    answer = _json(response, content, what)
    if not isinstance(answer, dict):
        raise SendError(retryable=True, reason=f"VK's upload server answered {what} with something unexpected")
    if answer.get("error"):
        said = " ".join(str(answer.get("error_descr") or answer["error"]).split())[:300]
        raise SendError(retryable=False, reason=f"VK's upload server refused {name!r}: {said}")
    return answer


def _reference(kind: str, saved: Any, name: str) -> str:
    """``photo{owner_id}_{id}`` / ``doc{owner_id}_{id}``, with the access key when VK gave one."""
    if not isinstance(saved, dict) or not isinstance(saved.get("owner_id"), int) or not isinstance(saved.get("id"),
                                                                                                     int):
        raise SendError(retryable=True, reason=f"VK saved {name!r} but did not say under which id")
    reference = f"{kind}{saved['owner_id']}_{saved['id']}"
    key = saved.get("access_key")
    return f"{reference}_{key}" if isinstance(key, str) and key.isalnum() else reference


async def upload(client: httpx.AsyncClient, api: Api, peer_id: str, media: Media) -> str:
    """Upload one file for a dialog; the ``attachment`` value that shows it in ``messages.send``."""
    name = media.attachment.filename
    subject = f"the file {name!r}"
    data = await files.read(media.attachment, media.limit, provider="VK")
    if media.kind == "photo":
        server = await call(client, api, "photos.getMessagesUploadServer", {"peer_id": peer_id}, subject=subject)
        url = server.get("upload_url") if isinstance(server, dict) else None
        sent = await _post_file(client, str(url or ""), "photo", media, data)
        if sent.get("photo") in (None, "", "[]"):
            raise SendError(retryable=False, reason=(
                f"VK did not take {name!r} as a photo (VK takes JPEG, PNG or GIF pictures whose width and height "
                "add up to at most 14000 pixels, with sides no more than 20 to 1); send it as a PDF or a link"))
        saved = await call(client, api, "photos.saveMessagesPhoto",
                           {"server": str(sent.get("server", "")), "photo": str(sent["photo"]),
                            "hash": str(sent.get("hash", ""))}, subject=subject)
        return _reference("photo", saved[0] if isinstance(saved, list) and saved else None, name)
    server = await call(client, api, "docs.getMessagesUploadServer", {"type": "doc", "peer_id": peer_id},
                        subject=subject)
    url = server.get("upload_url") if isinstance(server, dict) else None
    sent = await _post_file(client, str(url or ""), "file", media, data)
    if not isinstance(sent.get("file"), str) or not sent["file"]:
        raise SendError(retryable=True, reason=f"VK's upload server took {name!r} but gave nothing to save")
    saved = await call(client, api, "docs.save", {"file": sent["file"], "title": name}, subject=subject)
    return _reference("doc", saved.get("doc") if isinstance(saved, dict) else None, name)
