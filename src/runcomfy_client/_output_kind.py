"""The one rule for which kind of output a model makes: image, video or audio.

Pure and dependency-free (standard library only), so the client's ``describe`` and the
emulator, which must not share the client's schema reading, both use it. In order:

0. **The model's catalog record** (its sidecar, see ``_sidecar``): its ``output_kind``, else its
   last category, when that is image, video or audio (the catalog's last category names what
   the model makes).
1. **The Output schema**, when it names one kind only: the model's own ``<id>.output.json``
   (or a folder's ``_output.json``) whose keys are among ``image``/``images``,
   ``video``/``videos``, ``audio``/``audios`` of a single kind. The usual published Output
   schema names both images and videos, so it decides nothing.
2. **The model id's words.** A ``<from>-to-<kind>`` segment names the kind (``text-to-image``,
   ``image-to-video``, ``text-to-speech``), the id's last segments first; else the last kind
   word in the id (``video``, ``image``, ``speech``, ``music``, ``audio`` ...); else ``edit``
   (an edit of images) means image.
3. **The input schema's fields**: a duration, frame count or frame rate means video; an image
   size, image count or image ``output_format`` means image.
4. Otherwise **video**, the kind most of the catalog makes.

The answer's key is the kind's plural (``images``) when the Output schema names only that one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["OutputKind", "OutputRule", "output_rule"]

OutputKind = Literal["image", "video", "audio"]

_KIND_WORDS: dict[str, OutputKind] = {
    **dict.fromkeys(("image", "images", "img", "picture", "photo"), "image"),
    **dict.fromkeys(("video", "videos"), "video"),
    **dict.fromkeys(("audio", "audios", "speech", "music", "sound", "voice", "tts"), "audio"),
}
_OUTPUT_KEYS: dict[str, OutputKind] = {
    "image": "image",
    "images": "image",
    "video": "video",
    "videos": "video",
    "audio": "audio",
    "audios": "audio",
}
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# Input keys (node prefix dropped) whose presence says the model makes a clip or a picture.
_VIDEO_FIELDS = frozenset(
    ("duration", "length", "num_frames", "number_of_frames", "frame_rate", "fps", "frames")
)
_IMAGE_FIELDS = frozenset(("image_size", "num_images", "number_of_images"))
_IMAGE_FORMATS = frozenset(("png", "jpeg", "jpg", "webp"))


@dataclass(frozen=True)
class OutputRule:
    """What a model makes, the output key its answer uses, and which step of the rule decided."""

    kind: OutputKind
    key: str
    """``image``, ``images``, ``video``, ``videos``, ``audio`` or ``audios``."""
    reason: str
    """Which rule decided, for people: ``the model id says 'text-to-image'``."""


def output_rule(
    model_id: str,
    *,
    input_schema: Mapping[str, object] | None = None,
    output_schema: Mapping[str, object] | None = None,
    record: Mapping[str, object] | None = None,
) -> OutputRule:
    """The output kind of ``model_id`` by the rule in this module's docstring."""
    named = _kinds_named(output_schema)
    stated = _kind_from_record(record)
    if stated is not None:
        kind, reason = stated
        keys = named.get(kind, set())
        return OutputRule(kind, kind + "s" if keys == {kind + "s"} else kind, reason)
    if len(named) == 1:
        kind, keys = next(iter(named.items()))
        plural = keys == {kind + "s"}
        names = ", ".join(repr(k) for k in sorted(keys))
        return OutputRule(kind, kind + "s" if plural else kind, f"the Output schema names {names}")
    found = _kind_from_id(model_id) or _kind_from_inputs(input_schema)
    if found is not None:
        return OutputRule(found[0], found[0], found[1])
    return OutputRule("video", "video", "nothing names a kind: video by default")


def _kind_from_record(record: Mapping[str, object] | None) -> tuple[OutputKind, str] | None:
    if not record:
        return None
    stated = record.get("output_kind")
    if isinstance(stated, str) and stated in ("image", "video", "audio"):
        return _KIND_WORDS[stated], f"its catalog record says {stated!r}"
    categories = record.get("categories")
    last = categories[-1] if isinstance(categories, list) and categories else None
    if isinstance(last, str) and last.lower() in ("image", "video", "audio"):
        return _KIND_WORDS[last.lower()], f"its last catalog category is {last.lower()!r}"
    return None


def _kinds_named(output_schema: Mapping[str, object] | None) -> dict[OutputKind, set[str]]:
    props = output_schema.get("properties") if output_schema else None
    named: dict[OutputKind, set[str]] = {}
    if isinstance(props, Mapping):
        for key in props:
            kind = _OUTPUT_KEYS.get(str(key))
            if kind is not None:
                named.setdefault(kind, set()).add(str(key))
    return named


def _kind_from_id(model_id: str) -> tuple[OutputKind, str] | None:
    segments = [_WORD_SPLIT.split(s.lower()) for s in model_id.split("/")]
    for words in reversed(segments):
        for i in range(len(words) - 2, 0, -1):
            if words[i] == "to" and words[i + 1] in _KIND_WORDS:
                said = "-".join(words[i - 1 : i + 2])
                return _KIND_WORDS[words[i + 1]], f"the model id says {said!r}"
    words = [w for seg in segments for w in seg]
    for word in reversed(words):
        if word in _KIND_WORDS:
            return _KIND_WORDS[word], f"the model id says {word!r}"
    if "edit" in words:
        return "image", "the model id says 'edit' (of images)"
    return None


def _kind_from_inputs(input_schema: Mapping[str, object] | None) -> tuple[OutputKind, str] | None:
    props = input_schema.get("properties") if input_schema else None
    if not isinstance(props, Mapping):
        return None
    for key, prop in props.items():
        name = re.sub(r"^\d+_", "", str(key)).lower()
        if name in _VIDEO_FIELDS or name.endswith(("_length", "_frame_rate", "_num_frames")):
            return "video", f"the input {key!r} is a clip's length or frame rate"
        if name in _IMAGE_FIELDS or (name == "output_format" and _image_formats(prop)):
            return "image", f"the input {key!r} describes images"
    return None


def _image_formats(prop: object) -> bool:
    enum = prop.get("enum") if isinstance(prop, Mapping) else None
    return isinstance(enum, list) and any(str(v).lower() in _IMAGE_FORMATS for v in enum)
