"""Which WhatsApp message type carries each of an agent's files, and WhatsApp's limits for them.

Graph's ``/media`` upload takes only the types listed here (anything else is error 100, "Param file must be a
file with one of the following types"), each message type only some of them, and each at most so many bytes.
Files are checked before any part of a reply goes out, and a file over its limit is never read.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

from kommutator.channels.base import OutboundAttachment, SendError

MB = 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
VIDEO_TYPES = frozenset({"video/mp4", "video/3gpp"})
AUDIO_TYPES = frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"})
DOCUMENT_TYPES = frozenset({
    "text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})
# Images WhatsApp uploads but does not show as pictures: they go as documents.
OTHER_IMAGE_TYPES = frozenset({"image/webp"})
LIMITS = {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB}
CAPTIONED = frozenset({"image", "video", "document"})  # audio messages carry no caption
_NAMES = {"image": "images (JPEG, PNG)", "video": "videos (MP4, 3GPP)", "audio": "audio files",
          "document": "documents"}
ACCEPTED = ("JPEG or PNG images, MP4 or 3GPP videos, AAC, AMR, MP3, M4A or OGG audio, and PDF, Word, Excel, "
            "PowerPoint or plain-text documents")


@dataclass(frozen=True)
class Media:
    """One file and the WhatsApp message type that carries it."""

    attachment: OutboundAttachment
    kind: str  # image | video | audio | document


def megabytes(size: int) -> str:
    """Rounded up, so that a file just over a limit never reads as the limit itself."""
    return f"{math.ceil(size * 10 / MB) / 10:.1f} MB"


def kind_of(content_type: str) -> str | None:
    """The message type for a file, or None when WhatsApp takes no such file."""
    if content_type in IMAGE_TYPES:
        return "image"
    if content_type in VIDEO_TYPES:
        return "video"
    if content_type in AUDIO_TYPES:
        return "audio"
    if content_type in DOCUMENT_TYPES or content_type in OTHER_IMAGE_TYPES:
        return "document"
    return None


def check(attachment: OutboundAttachment) -> Media:
    """The file's message type; SendError (permanent) when WhatsApp would refuse it or it is not on disk."""
    name = attachment.filename
    kind = kind_of(attachment.content_type.lower())
    if kind is None:
        raise SendError(retryable=False, reason=(
            f"WhatsApp does not take files of type {attachment.content_type} ({name!r}); it accepts {ACCEPTED} — "
            "convert the file (e.g. to PDF) or send a link"))
    limit = LIMITS[kind]
    if attachment.size > limit:
        raise SendError(retryable=False, reason=(
            f"WhatsApp sends {_NAMES[kind]} of at most {limit // MB} MB; {name!r} is {megabytes(attachment.size)} — "
            "send a smaller file or a link"))
    if attachment.path is None:
        raise SendError(retryable=False, reason=f"the file {name!r} is not on this server's disk")
    return Media(attachment, kind)


def _load(path: Path, limit: int) -> bytes | None:
    if path.stat().st_size > limit:
        return None
    return path.read_bytes()


async def read(media: Media) -> bytes:
    """The file's bytes, read in a thread; a file that grew past the limit on disk is refused, never loaded."""
    attachment = media.attachment
    assert attachment.path is not None
    try:
        data = await asyncio.to_thread(_load, attachment.path, LIMITS[media.kind])
    except OSError as exc:
        raise SendError(retryable=False, reason=f"the file {attachment.filename!r} cannot be read from storage "
                                                f"({type(exc).__name__}); it may have been removed") from None
    if data is None:
        raise SendError(retryable=False, reason=f"the file {attachment.filename!r} on disk is larger than WhatsApp "
                                                f"allows ({LIMITS[media.kind] // MB} MB)")
    return data
