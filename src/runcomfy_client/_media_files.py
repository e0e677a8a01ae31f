"""What a piece of media is, from its bytes: kind and MIME type, size, width and height.

Used before anything leaves the machine: to upload only files whose content is media of the
field's kind, to check a field's ``validations`` on local files, and to send files inline as
``data:`` URIs within RunComfy's caps. The kind is read from the content's magic bytes, never
from the file name. Width and height come from the image header (Pillow) or the video stream
(PyAV); both are optional and imported only when a rule needs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INLINE_CAPS",
    "INLINE_MAX_MEGAPIXELS",
    "INLINE_MAX_REQUEST",
    "DataURI",
    "Sniffed",
    "dimensions",
    "kind_accepts",
    "mib",
    "parse_data_uri",
    "sniff",
    "sniff_file",
]

MiB = 1024 * 1024
# RunComfy's own ComfyUI nodes cap inline media at these sizes.
INLINE_CAPS: Mapping[str, int] = {
    "image": 6 * MiB,
    "mask": 6 * MiB,
    "video": 32 * MiB,
    "audio": 16 * MiB,
}
INLINE_MAX_MEGAPIXELS = 32
INLINE_MAX_REQUEST = 64 * MiB
_HEAD = 64


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes of some media say it is."""

    mime: str
    kind: str  # image, video or audio


def sniff(head: bytes) -> Sniffed | None:
    """The media type of content starting with ``head`` (its first 64 bytes), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "image")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "image")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image/gif", "image")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Sniffed("image/tiff", "image")
    if head.startswith(b"BM") and len(head) >= 18 and head[14] in (12, 40, 52, 56, 108, 124):
        return Sniffed("image/bmp", "image")
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {
            b"WEBP": Sniffed("image/webp", "image"),
            b"WAVE": Sniffed("audio/wav", "audio"),
            b"AVI ": Sniffed("video/x-msvideo", "video"),
        }.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _iso_media(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video/webm" if b"webm" in head else "video/x-matroska", "video")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Sniffed("video/mpeg", "video")
    if head.startswith(b"OggS"):
        return Sniffed("video/ogg", "video") if b"theora" in head else Sniffed("audio/ogg", "audio")
    if head.startswith(b"fLaC"):
        return Sniffed("audio/flac", "audio")
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return Sniffed("audio/aiff", "audio")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] in _MP3_SYNC):
        return Sniffed("audio/mpeg", "audio")
    if len(head) > 1 and head[0] == 0xFF and head[1] in (0xF1, 0xF9):
        return Sniffed("audio/aac", "audio")
    return None


# The second byte of an MPEG audio frame header (MPEG-1/2, layer III, with or without CRC).
_MP3_SYNC = frozenset({0xFB, 0xFA, 0xF3, 0xF2, 0xE3, 0xE2})


def _iso_media(brand: bytes) -> Sniffed:
    """An ISO base media file (MP4 and relatives), by its major brand."""
    if brand in (b"avif", b"avis"):
        return Sniffed("image/avif", "image")
    if brand in (b"heic", b"heix", b"mif1", b"msf1"):
        return Sniffed("image/heic", "image")
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return Sniffed("audio/mp4", "audio")
    if brand == b"qt  ":
        return Sniffed("video/quicktime", "video")
    return Sniffed("video/mp4", "video")


def sniff_file(path: Path) -> Sniffed | None:
    """The media type of a file's content (None when it is not media the client knows)."""
    with path.open("rb") as stream:
        return sniff(stream.read(_HEAD))


def kind_accepts(field_kind: str | None, content_kind: str) -> bool:
    """Whether a field of ``field_kind`` takes content of ``content_kind`` (a mask is an image)."""
    if field_kind is None or field_kind not in INLINE_CAPS:
        return True  # a kind the dialect does not know: any media
    return (field_kind if field_kind != "mask" else "image") == content_kind


def mib(size: float) -> str:
    """A byte count as a person reads it: '6 MiB', '6.4 MiB', '512 KiB'."""
    if size >= MiB:
        value = size / MiB
        return f"{value:.0f} MiB" if value == int(value) else f"{value:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{int(size)} bytes"


def dimensions(path: Path, kind: str) -> tuple[int, int] | str:
    """(width, height) from the file's header, or why they cannot be read."""
    if kind == "video":
        return _video_dimensions(path)
    try:
        from PIL import Image
    except ImportError:
        return "Pillow is not installed (pip install pillow)"
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        return "the image claims more pixels than Pillow will open"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"its image header cannot be read ({exc})"
    return int(width), int(height)


def _video_dimensions(path: Path) -> tuple[int, int] | str:
    try:
        import av
    except ImportError:
        return "PyAV is not installed (pip install av)"
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            if not streams:
                return "it has no video stream"
            context = streams[0].codec_context
            return int(context.width), int(context.height)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; all mean "unreadable"
        return f"its video stream cannot be read ({type(exc).__name__})"


@dataclass(frozen=True)
class DataURI:
    """A parsed ``data:`` URI: its MIME type and the size of what it carries."""

    mime: str
    size: int
    """Bytes of the decoded content."""
    problem: str | None
    """Why it cannot be sent as media (None when it can)."""


_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def parse_data_uri(value: str) -> DataURI:
    """Read a ``data:<mime>;base64,<content>`` URI without decoding it."""
    header, comma, content = value[5:].partition(",")
    parts = header.split(";")
    mime = parts[0].strip().lower()
    if not comma:
        return DataURI(mime, 0, "a data: URI needs a ',' before its content")
    if "base64" not in (p.strip().lower() for p in parts[1:]):
        return DataURI(mime, 0, "only base64 data: URIs are sent (data:<type>;base64,...)")
    if not _BASE64.fullmatch(content) or len(content) % 4:
        return DataURI(mime, 0, "its content is not valid base64")
    size = len(content) // 4 * 3 - content[-2:].count("=") if content else 0
    if "/" not in mime:
        return DataURI(mime, size, "a data: URI needs a media type (data:image/png;base64,...)")
    return DataURI(mime, size, None)
