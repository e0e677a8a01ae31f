"""The emulator's stand-in for public storage: bounded uploads, served as downloads.

A file is stored under a random token and served back with the type its content shows (a
PNG as ``image/png``, anything unrecognised as ``application/octet-stream``, never HTML),
``Content-Disposition: attachment`` and ``nosniff``, so an upload can never act as a page on
the emulator's origin.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UploadStore", "UploadTooLargeError", "content_type", "safe_name"]

# (offset, magic, type): the media the service takes, recognised by their first bytes.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (8, b"WAVE", "audio/wav"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\xff\xfb", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
)


def content_type(head: bytes) -> str:
    """The media type the first bytes of a file show; ``application/octet-stream`` otherwise."""
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if magic in (b"WEBP", b"WAVE") and not head.startswith(b"RIFF"):
                continue
            return kind
    return "application/octet-stream"


def safe_name(name: str) -> str:
    """A file name reduced to letters, digits, ``-``, ``_`` and ``.`` (never a dot file)."""
    cleaned = "".join(c for c in name if c.isalnum() or c in "-_.")[:120]
    return cleaned.lstrip(".") or "upload"


class UploadTooLargeError(Exception):
    """An upload went over the store's cap; nothing was kept."""


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    ref: str
    """``<token>--<name>``: the last part of its URL."""
    size: int


class UploadStore:
    """Uploaded files in one folder, each under its own random token."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    async def save(self, name: str, chunks: AsyncIterator[bytes]) -> StoredUpload:
        token = uuid.uuid4().hex[:12]
        folder = self.folder / token
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe_name(name)
        size = 0
        try:
            with path.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadTooLargeError(
                            f"an upload may hold at most {self.max_bytes} bytes"
                        )
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        return StoredUpload(path, f"{token}--{path.name}", size)

    def find(self, ref: str) -> Path | None:
        """The stored file for ``<token>--<name>``, or None."""
        token, sep, name = ref.partition("--")
        if not sep:
            return None
        path = self.folder / safe_name(token) / safe_name(name)
        return path if path.is_file() else None
