"""Which WhatsApp message type carries each of an agent's files, and WhatsApp's limits for them.

Graph's ``/media`` upload takes only the types listed here (anything else is error 100, "Param file must be a
file with one of the following types"), each message type only some of them, and each at most so many bytes.
Files are checked before any part of a reply goes out, and a file over its limit is never read.
"""

from __future__ import annotations

from dataclasses import dataclass

from kommutator.channels import files
from kommutator.channels.base import OutboundAttachment, SendError
from kommutator.channels.files import MB

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
    files.check(attachment, limit, refusal=f"WhatsApp sends {_NAMES[kind]} of at most {limit // MB} MB")
    return Media(attachment, kind)
