"""The emulator's own reading of the catalog's schema dialect (never the client's).

What the service needs to know to run a job, read straight from the raw schema:

- **Media inputs.** ``format`` marks them: ``image_uri``, ``video_uri``, ``audio_uri`` (one URL)
  and the plural forms (an array); ``x-media`` names the kind outright. Schemas without either
  (the seed models' ``110_image``) are read by the key's last words: ``image``, ``image_url``,
  ``images``, ``end_image_url``, ``video``, ``audio``, ``mask``.
- **Defaults** are the server's: it applies them to what the caller left out, even when a
  default breaks its own bounds. Media defaults are not applied: they are example file names
  on RunComfy's side, and an optional input left out is simply not used.
- **The width x height enum**: ``602_widthx602_height`` with values like ``"720x480 (3:2)"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MediaInput", "ModelReading", "parse_dimensions", "read_model"]

_FORMATS = {
    f"{kind}_{suffix}": (kind, suffix == "uris")
    for kind in ("image", "video", "audio", "mask")
    for suffix in ("uri", "uris")
}
_MEDIA_NAME = re.compile(r"(?:^|_)(image|video|audio|mask)s?(?:_(?:url|uri)s?)?(?:_\d+)?$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NODE_PREFIX = re.compile(r"^\d+_")
_DIMENSION_KEY = re.compile(r"^(.*)widthx(.*)height$")
_DIMENSIONS = re.compile(r"^\s*(\d{1,5})\s*[x*\u00d7]\s*(\d{1,5})\b")  # x, *, multiplication sign


@dataclass(frozen=True)
class MediaInput:
    """One input that takes media: a URL or ``data:`` URI, or an array of them (``many``)."""

    key: str
    kind: str
    """``image``, ``video``, ``audio`` or ``mask``."""
    many: bool
    rank: int
    """0 for a start/first frame, 2 for an end/last frame, 1 otherwise: render order."""


@dataclass(frozen=True)
class ModelReading:
    """The parts of a model's schema that running a job needs."""

    properties: Mapping[str, Mapping[str, Any]]
    media: tuple[MediaInput, ...]
    defaults: Mapping[str, Any]
    dimension_keys: tuple[str, ...]

    def name_of(self, key: str) -> str:
        """The key without its ComfyUI node prefix, in snake case: ``602_num_frames`` ->
        ``num_frames``."""
        return _snake(_NODE_PREFIX.sub("", key))

    def find(self, *names: str) -> str | None:
        """The first key whose name is one of ``names`` or ends with ``_<name>``."""
        for key in self.properties:
            name = self.name_of(key)
            if name in names or any(name.endswith("_" + n) for n in names):
                return key
        return None


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _media_of(key: str, prop: Mapping[str, Any]) -> tuple[str, bool] | None:
    declared = prop.get("x-media")
    many = prop.get("type") == "array"
    if isinstance(declared, str) and declared in ("image", "video", "audio", "mask"):
        return declared, many
    fmt = prop.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    if prop.get("type") not in ("string", "array") or "enum" in prop:
        return None
    found = _MEDIA_NAME.search(_snake(_NODE_PREFIX.sub("", key)))
    return (found.group(1), many) if found else None


def _rank(key: str) -> int:
    name = key.lower()
    if "start" in name or "first" in name:
        return 0
    if "end" in name or "last" in name:
        return 2
    return 1


def read_model(raw: Mapping[str, Any]) -> ModelReading:
    """Read a raw schema; tolerant of anything, since the submit check reports what is wrong."""
    props = raw.get("properties")
    properties = {
        str(k): v
        for k, v in (props.items() if isinstance(props, Mapping) else ())
        if isinstance(v, Mapping)
    }
    media = []
    defaults = {}
    for key, prop in properties.items():
        found = _media_of(key, prop)
        if found is not None:
            media.append(MediaInput(key, found[0], found[1], _rank(key)))
        elif "default" in prop:
            defaults[key] = prop["default"]
    dimension_keys = tuple(k for k in properties if _DIMENSION_KEY.match(k))
    return ModelReading(properties, tuple(media), defaults, dimension_keys)


def parse_dimensions(value: object) -> tuple[int, int] | None:
    """``"720x480 (3:2)"`` -> ``(720, 480)``; ``None`` when the value is not such a pair."""
    if not isinstance(value, str):
        return None
    found = _DIMENSIONS.match(value)
    if not found:
        return None
    width, height = int(found.group(1)), int(found.group(2))
    return (width, height) if width > 0 and height > 0 else None
