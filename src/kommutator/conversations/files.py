"""Attachments: files stored under the data folder (never the web root), one row per file.

A file is written to a temporary name first and moved into place only after its row commits; a failed
request leaves neither a row nor a file behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from kommutator.errors import ProblemError

CHUNK = 1 << 16
# Characters a saved file's name may not hold on common systems, and kinds of characters that are not
# printable (controls, bidi overrides that disguise "exe.pdf", unassigned, private use, line separators).
_RESERVED = frozenset('<>:"/\\|?*')
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_JOINERS = frozenset("\u200c\u200d")  # format characters that belong to emoji sequences and some scripts


def safe_filename(name: str | None) -> str:
    """A download name with no path parts, reserved or unprintable characters, at most 200 characters;
    every other character stays ("Акт приёмки №7 «финал» 😀 café.pdf"). Files on disk have their own names."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = unicodedata.normalize("NFC", base)
    out: list[str] = []
    replaced = False
    for char in base:
        if char.isspace():
            if out and out[-1] == " ":
                continue
            char = " "
        elif char in _RESERVED or (unicodedata.category(char) in _UNPRINTABLE and char not in _JOINERS):
            if replaced:
                continue  # one mark for a run of unusable characters
            char, replaced = "_", True
            out.append(char)
            continue
        replaced = False
        out.append(char)
    base = "".join(out).strip(" ._") or "file"
    return base[-200:]


@dataclass(frozen=True)
class StoredFile:
    key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    temp_path: Path


class FileStore:
    """Files under ``<data_dir>/files``, addressed by a random key."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}", key):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    async def receive(self, upload: UploadFile) -> StoredFile:
        """Copy an upload to a temporary file, enforcing the size cap; raise 413 when it is too big."""
        key_id = uuid.uuid4().hex
        key = f"{key_id[:2]}/{key_id}"
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_suffix(".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with temp.open("wb") as fh:
                while chunk := await upload.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ProblemError(
                            413, "file_too_large",
                            f"Files may be at most {self.max_bytes // 1_000_000} MB; this one is larger.")
                    digest.update(chunk)
                    fh.write(chunk)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if size == 0:
            temp.unlink(missing_ok=True)
            raise ProblemError(422, "empty_file", "The file is empty.")
        ctype = (upload.content_type or "application/octet-stream").split(";")[0].strip().lower()
        if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", ctype):
            ctype = "application/octet-stream"
        return StoredFile(key=key, filename=safe_filename(upload.filename), content_type=ctype, size=size,
                          sha256=digest.hexdigest(), temp_path=temp)

    def put(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        """Write bytes received from a provider straight to their final place (``discard`` removes them if
        their row is not committed); raise 413 over the size cap, 422 when empty."""
        if len(data) > self.max_bytes:
            raise ProblemError(413, "file_too_large",
                               f"Files may be at most {self.max_bytes // 1_000_000} MB; this one is larger.")
        if not data:
            raise ProblemError(422, "empty_file", "The file is empty.")
        key_id = uuid.uuid4().hex
        key = f"{key_id[:2]}/{key_id}"
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        final.write_bytes(data)
        ctype = content_type.split(";")[0].strip().lower()
        if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", ctype):
            ctype = "application/octet-stream"
        return StoredFile(key=key, filename=safe_filename(filename), content_type=ctype, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), temp_path=final)

    def commit(self, stored: StoredFile) -> None:
        os.replace(stored.temp_path, self.path(stored.key))

    def discard(self, stored: StoredFile) -> None:
        stored.temp_path.unlink(missing_ok=True)
