"""What the catalog suite needs besides the tests: media files, example inputs built from a
schema, the output a model should answer, and schemas of the same dialect never seen before.

The expected output is this suite's own reading of the issue, not the emulator's code: a video
is as long as its ``duration`` (or ``number_of_frames`` / ``frames_per_second``), its size is a
``WxH`` choice, or ``resolution`` ``<N>p`` (``1080p`` in the id when there is no such field) as
the short side shaped by ``aspect_ratio`` (an input image's shape when the ratio is adaptive,
auto or not a field; 16:9 without one).
"""

from __future__ import annotations

import io
import json
import random
import re
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from runcomfy_client import Field, ModelSchema
from runcomfy_client._validation import dimensions_of

from .conftest import png_bytes

IMAGE_SIZE = (64, 36)  # 16:9, so "follow the input image" is 16:9 too
PROMPT = "a quiet valley at dawn, slow push-in"


@dataclass(frozen=True)
class MediaFiles:
    image: Path
    video: Path
    audio: Path

    def of(self, kind: str | None) -> Path:
        return {"video": self.video, "audio": self.audio}.get(kind or "image", self.image)


def make_media(folder: Path) -> MediaFiles:
    """A 16:9 PNG, a tiny H.264 MP4 and a short WAV, with names that do not say what they are."""
    import av
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "still one"
    image.write_bytes(png_bytes((180, 120, 40), IMAGE_SIZE))
    video = folder / "clip one"
    with av.open(str(video), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(4):
            pixels = np.full((36, 64, 3), 40 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    audio = folder / "sound one"
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 4000)
    audio.write_bytes(buffer.getvalue())
    return MediaFiles(image, video, audio)


# -- example inputs ---------------------------------------------------------------------------

_PREFERRED = {
    # Cheap, even-sized renders: 720p / 4:3 / the shortest duration the schema allows.
    "resolution": ["720p", "480p", "1080p"],
    "aspect_ratio": ["16:9", "4:3", "1:1"],
    "duration": ["5", "4"],
}


def _choice(f: Field) -> Any:
    assert f.enum is not None
    options = list(f.enum)
    if f.dimensions:
        return min(options, key=lambda o: (dimensions_of(str(o)) or (9999, 9999))[0])
    for wanted in _PREFERRED.get(f.name, []):
        if wanted in options:
            return wanted
    return options[0]


def _number(f: Field) -> int | float:
    low = f.minimum if f.minimum is not None else 0
    high = f.maximum if f.maximum is not None else low + 10
    if f.name == "duration":
        return int(low) if f.type == "integer" else low
    value = low + (high - low) / 2
    return int(value) if f.type == "integer" else round(value, 2)


def _structured(items: Mapping[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = {}
    for name, sub in (items.get("properties") or {}).items():
        kind = sub.get("type")
        if kind == "string":
            made[name] = "owner/lora-name"
        elif kind in ("number", "integer"):
            low, high = sub.get("minimum", 0), sub.get("maximum", 1)
            made[name] = low + (high - low) / 2 if kind == "number" else int(low)
    return made


def example_inputs(model: ModelSchema, media: MediaFiles) -> dict[str, Any]:
    """Inputs by readable name for every field: local files for media (two in a list)."""
    inputs: dict[str, Any] = {}
    for f in model.fields:
        if f.media and f.media_array:
            count = max(f.min_items or 0, min(2, f.max_items if f.max_items is not None else 2))
            inputs[f.name] = [str(media.of(f.media))] * count
        elif f.media:
            inputs[f.name] = str(media.of(f.media))
        elif f.enum is not None:
            inputs[f.name] = _choice(f)
        elif f.type in ("integer", "number"):
            inputs[f.name] = _number(f)
        elif f.type == "boolean":
            inputs[f.name] = False
        elif f.type == "string":
            inputs[f.name] = PROMPT
        elif f.type == "array" and f.items is not None and f.items.get("type") == "object":
            inputs[f.name] = [_structured(f.items)]
    return inputs


# -- what the model should answer -------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    kind: str  # image, video, audio
    width: int | None = None
    height: int | None = None
    seconds: float | None = None


_RATIO = re.compile(r"^(\d+):(\d+)$")
_SHORT_SIDE = re.compile(r"^(\d+)p$")


def expected_output(model: ModelSchema, inputs: Mapping[str, Any], kind: str) -> Expected:
    if kind != "video":
        return Expected(kind)
    by_name = {f.name: f for f in model.fields}
    width = height = None
    for f in model.fields:
        if f.dimensions and f.name in inputs:
            width, height = dimensions_of(str(inputs[f.name])) or (None, None)
    if width is None:
        resolution = str(inputs.get("resolution") or "")
        if not resolution:
            resolution = next(
                (p for p in reversed(model.model_id.split("/")) if _SHORT_SIDE.match(p)), "480p"
            )
        short = int(_SHORT_SIDE.match(resolution).group(1))  # type: ignore[union-attr]
        ratio_text = str(inputs.get("aspect_ratio") or "")
        found = _RATIO.match(ratio_text)
        ratio = Fraction(*map(int, found.groups())) if found else Fraction(*IMAGE_SIZE)
        width, height = (int(short * ratio), short) if ratio >= 1 else (short, int(short / ratio))
    seconds: float | None = None
    frames, fps = inputs.get("number_of_frames"), inputs.get("frames_per_second")
    if frames and fps:
        seconds = frames / fps
    elif "duration" in by_name and "duration" in inputs:
        seconds = float(inputs["duration"])
    return Expected("video", width, height, seconds)


# -- schemas of the same dialect, never seen before ---------------------------------------------

_KEYS = {
    "image": ["image_url", "start_frame", "reference", "first_image_url", "source"],
    "video": ["video_url", "motion_clip", "driving_video"],
    "audio": ["audio_url", "soundtrack", "voice_sample"],
}


# Which media each synthetic schema takes (one URL or a list), so that together they hold every
# media format of the dialect; the keys are drawn from names that do not all say what they hold.
_PLANS: list[dict[str, str]] = [
    {"image": "many", "audio": "one"},
    {"image": "one", "video": "many"},
    {"image": "many"},
    {"video": "one", "audio": "many", "image": "one"},
]


def synthetic_schema(seed: int) -> tuple[str, dict[str, Any], str]:
    """A schema in the catalog's dialect (model id, schema, output kind), from a seed."""
    rng = random.Random(seed)
    kind = "image" if seed % len(_PLANS) == 2 else "video"
    task = rng.choice(["text-to-video", "image-to-video"]) if kind == "video" else "text-to-image"
    model_id = f"synthetic/model-{seed}/{task}"
    props: dict[str, Any] = {"prompt": {"type": "string", "default": ""}}
    required = ["prompt"]
    for media, shape in _PLANS[seed % len(_PLANS)].items():
        key = rng.choice(_KEYS[media])
        if shape == "one":
            props[key] = {"type": "string", "format": f"{media}_uri"}
            if media == "image":
                required.append(key)
                props[key]["validations"] = [
                    {
                        "validation_rule": "file_size_mb<",
                        "validation_value": 10,
                        "validation_error": "File size must be less than 10 MB.",
                    },
                    {
                        "validation_rule": "width_pixels>",
                        "validation_value": 16,
                        "validation_error": "Width must be above 16 px.",
                    },
                ]
        else:
            plural = key if key.endswith("s") else key + "s"
            props[plural] = {
                "type": "array",
                "format": f"{media}_uris",
                "maxItems": rng.randint(2, 5),
            }
            if rng.random() < 0.5:
                props[plural]["minItems"] = 1
    if kind == "video":
        props["resolution"] = {"type": "string", "enum": ["480p", "720p"], "default": "720p"}
        props["aspect_ratio"] = {
            "type": "string",
            "enum": ["adaptive", "16:9", "4:3", "1:1"],
            "default": "adaptive",
        }
        props["duration"] = {"type": "integer", "minimum": 1, "maximum": 12, "default": 5}
    else:
        props["aspect_ratio"] = {
            "type": "string",
            "enum": ["auto", "1:1", "3:4"],
            "default": "auto",
        }
        props["num_images"] = {"type": "integer", "minimum": 1, "maximum": 1, "default": 1}
    props["guidance"] = {"type": "float", "minimum": 0, "maximum": 10, "default": 3.5}
    props["seed"] = {"type": "integer", "default": None}
    props["enhance"] = {"type": "boolean", "default": True}
    if rng.random() < 0.6:
        props["loras"] = {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string"},
                    "scale": {"type": "number", "minimum": 0, "maximum": 2, "default": 1},
                },
            },
        }
    return model_id, {"type": "object", "properties": props, "required": required}, kind


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
