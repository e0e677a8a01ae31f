"""What the emulator makes for a job: the output's kind, size, length and format.

The kind comes from the one output rule (:mod:`runcomfy_client._output_kind`). Then, read
from the job's inputs (the caller's values over the schema's defaults):

- **Size**: a width x height enum (``"720x480 (3:2)"``), ``width``/``height``, ``image_size``
  (``{"width": .., "height": ..}``, ``"1024x768"`` or a preset such as ``landscape_16_9``),
  else ``resolution`` (``480p``, ``720p``, ``1080p``, ``4k``, ``WxH``; ``1K``/``2K``/``4K``
  for images) or such a word in the model id (``.../1080p``), shaped by ``aspect_ratio``
  (``16:9``; ``adaptive``/``auto`` follow the first input image). Without any: 480p video,
  1024-pixel images.
- **Length**: an explicit frame count and frame rate are kept as asked. Otherwise ``duration``
  seconds (``"auto"``: 5), with the frame rate lowered for big or long clips so that no clip
  costs more than about 32 frames of 720p to render (at least 1 fps, at most 24).
- **Images**: ``output_format`` (png, jpeg, webp) and ``num_images``.
- **Audio**: ``duration`` seconds (3 by default) of WAV.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._catalog import HostedModel
from ._failures import JobCannotRunError
from ._media import VideoSpec, render_audio, render_image, render_video

__all__ = ["RenderPlan", "plan_render", "render"]

_PIXEL_FRAMES = 32 * 1280 * 720
_MAX_FPS = 24
_MAX_SIDE = 8192
_IMAGE_PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
_ADAPTIVE = {"adaptive", "auto", "match_input_image", "match_input", "original"}
_RESOLUTION = re.compile(r"^(\d{3,4})p$|^(\d)k$", re.IGNORECASE)
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)\s*$")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RenderPlan:
    """Everything a render depends on besides the input files (the cache keys on it)."""

    kind: str
    """``image``, ``video`` or ``audio``."""
    key: str
    """The output key of the answer: ``video``, ``image``, ``images``, ``audio`` ..."""
    width: int = 0
    height: int = 0
    frames: int = 0
    fps: int = 0
    seconds: float = 0.0
    fmt: str = "png"
    count: int = 1

    @property
    def files(self) -> list[str]:
        if self.kind == "video":
            return ["output.mp4"]
        if self.kind == "audio":
            return ["output.wav"]
        ext = "jpg" if self.fmt == "jpeg" else self.fmt
        return [
            f"output-{i + 1}.{ext}" if self.count > 1 else f"output.{ext}"
            for i in range(self.count)
        ]


# A fast stand-in when rendering is off (load tests): tiny but real files of the right kind.
def stub_plan(plan: RenderPlan) -> RenderPlan:
    return RenderPlan(plan.kind, plan.key, 64, 64, 4, 8, 0.25, plan.fmt, min(plan.count, 2))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        found = _SECONDS.match(value)
        return float(found.group(1)) if found else None
    return None


class _Inputs:
    """The job's values by name (node prefixes dropped), read through the model's schema."""

    def __init__(self, model: HostedModel, resolved: Mapping[str, Any]) -> None:
        self.reading = model.reading
        self.resolved = resolved

    def get(self, *names: str) -> Any:
        key = self.reading.find(*names)
        return self.resolved.get(key) if key is not None else None


def _dimensions(value: Any) -> tuple[int, int] | None:
    from ._reading import parse_dimensions

    if isinstance(value, Mapping):
        w, h = _number(value.get("width")), _number(value.get("height"))
        return (int(w), int(h)) if w and h else None
    if isinstance(value, str) and value.lower() in _IMAGE_PRESETS:
        return _IMAGE_PRESETS[value.lower()]
    return parse_dimensions(value)


def _ratio(value: Any, first_image: tuple[int, int] | None, fallback: float) -> float:
    if isinstance(value, str):
        found = _RATIO.match(value)
        if found and float(found.group(1)) > 0 and float(found.group(2)) > 0:
            return float(found.group(1)) / float(found.group(2))
    if first_image is not None and first_image[1] > 0:
        return first_image[0] / first_image[1]
    return fallback


def _size(
    kind: str, model: HostedModel, inputs: _Inputs, first_image: tuple[int, int] | None
) -> tuple[int, int]:
    """Width and height: exact when the inputs say so, else a resolution shaped by a ratio."""
    for key in model.reading.dimension_keys:
        found = _dimensions(inputs.resolved.get(key))
        if found:
            return found
    w, h = _number(inputs.get("width")), _number(inputs.get("height"))
    if w and h:
        return int(w), int(h)
    found = _dimensions(inputs.get("image_size"))
    if found:
        return found
    resolution = inputs.get("resolution")
    if not isinstance(resolution, str) or not resolution.strip():
        parts = reversed(model.model_id.split("/"))
        resolution = next((p for p in parts if _RESOLUTION.match(p)), "")
    found = _dimensions(resolution)
    if found:
        return found
    ratio = _ratio(inputs.get("aspect_ratio"), first_image, 16 / 9 if kind == "video" else 1.0)
    matched = _RESOLUTION.match(resolution)
    if matched and matched.group(1):  # 720p: the short side
        return _fit(ratio, short=int(matched.group(1)))
    k = int(matched.group(2)) if matched else 0
    if kind == "image":  # 1K, 2K, 4K: the long side, in 1024s
        return _fit(ratio, long=1024 * (k or 1))
    return _fit(ratio, short={0: 480, 1: 1080, 2: 1440}.get(k, 2160))


def _fit(ratio: float, *, short: int = 0, long: int = 0) -> tuple[int, int]:
    """Width and height of ``ratio`` with the given short or long side, the other side rounded
    to the nearest even number (as video needs): 480p at 16:9 is 854x480."""

    def even(n: float) -> int:
        return 2 * round(n / 2)

    if short:
        return (even(short * ratio), short) if ratio >= 1 else (short, even(short / ratio))
    return (long, even(long / ratio)) if ratio >= 1 else (even(long * ratio), long)


def _clamp_side(n: int) -> int:
    return max(16, min(_MAX_SIDE, n))


def plan_render(
    model: HostedModel, resolved: Mapping[str, Any], first_image: tuple[int, int] | None
) -> RenderPlan:
    """The render for a job: ``resolved`` is what the server runs with (defaults applied),
    ``first_image`` the size of the first input image, if any."""
    kind, key = model.output.kind, model.output.key
    inputs = _Inputs(model, resolved)
    if kind == "audio":
        seconds = _number(inputs.get("duration", "duration_seconds", "seconds")) or 3.0
        return RenderPlan(kind, key, seconds=min(max(seconds, 0.1), 600.0))
    width, height = (_clamp_side(n) for n in _size(kind, model, inputs, first_image))
    if kind == "image":
        fmt = _FORMATS.get(str(inputs.get("output_format") or "png").lower(), "png")
        count = _number(inputs.get("num_images", "number_of_images", "num_outputs", "batch_size"))
        n = min(max(int(count or 1), 1), 8)
        if n > 1 and not key.endswith("s"):
            key += "s"
        return RenderPlan(kind, key, width, height, fmt=fmt, count=n)
    fps_given = _number(inputs.get("frame_rate", "fps", "frames_per_second"))
    frames_given = _number(inputs.get("num_frames", "number_of_frames", "length", "frames"))
    if frames_given:
        fps = int(fps_given or 16)
        return RenderPlan(kind, key, width, height, int(frames_given), max(fps, 1))
    seconds = _number(inputs.get("duration")) or (5.0 if inputs.get("duration") else 2.0)
    seconds = min(max(seconds, 0.1), 600.0)
    if fps_given:
        fps = int(fps_given)
    else:
        affordable = max(1, _PIXEL_FRAMES // (width * height))
        fps = int(min(_MAX_FPS, max(1, affordable // max(seconds, 1))))
    return RenderPlan(kind, key, width, height, max(1, round(seconds * fps)), max(fps, 1), seconds)


def render(plan: RenderPlan, images: Sequence[Any], folder: Path) -> dict[str, Path]:
    """Write the plan's files into ``folder`` from the decoded input images."""
    names = plan.files
    if plan.kind == "video":
        spec = VideoSpec(plan.width, plan.height, plan.frames, plan.fps)
        return {names[0]: render_video(images, spec, folder / names[0])}
    if plan.kind == "audio":
        return {names[0]: render_audio(plan.seconds, folder / names[0])}
    return {
        name: render_image(images, plan.width, plan.height, plan.fmt, folder / name, variant=i)
        for i, name in enumerate(names)
    }


def decode_inputs(
    images: Sequence[tuple[str, bytes]], videos: Sequence[tuple[str, bytes]]
) -> list[Any]:
    """The pictures a render can use: the input images, else the first frame of the first two
    input videos. Each input comes with its label, which a failure names."""
    from ._media import decode_image, first_frame

    decode = decode_image if images else first_frame
    decoded = []
    for label, data in images or videos[:2]:
        try:
            decoded.append(decode(data))
        except ValueError as exc:
            raise JobCannotRunError(f"input {label} cannot be used: {exc}") from None
    return decoded
