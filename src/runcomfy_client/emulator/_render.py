"""What the emulator renders for a job: which inputs it reads and what file it writes."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._registry import Field, ModelSchema
from .._validation import dimensions_of
from ._media import VideoSpec, decode_image, render_placeholder_image, render_video

__all__ = ["JobCannotRunError", "RenderPlan", "plan_render", "render_job"]


class JobCannotRunError(Exception):
    """The job cannot run; its message becomes the job's error."""


_DEFAULT = VideoSpec(512, 512, 16, 16)
# A fast stand-in when rendering is off (load tests): tiny but a real, playable MP4.
_STUB = VideoSpec(64, 64, 4, 8)


@dataclass(frozen=True)
class RenderPlan:
    kind: str  # "video" or "image"
    style: str  # "camera", "transition" or "gradient"
    spec: VideoSpec
    image_keys: tuple[str, ...]


def _pick(fields: Sequence[Field], names: Sequence[str], suffixes: Sequence[str]) -> Field | None:
    for f in fields:
        if f.name in names or any(f.key.endswith(s) for s in suffixes):
            return f
    return None


def _int(value: Any, fallback: int) -> int:
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else fallback
    )


def plan_render(model: ModelSchema, resolved: dict[str, Any]) -> RenderPlan:
    """Read resolution, frame count, frame rate and image inputs from the model's fields."""
    fields = model.fields
    width, height = _DEFAULT.width, _DEFAULT.height
    for f in fields:
        if f.dimensions and isinstance(resolved.get(f.key), str):
            pair = dimensions_of(resolved[f.key])
            if pair:
                width, height = pair
    frames_field = _pick(
        fields, ["number_of_frames", "num_frames", "length"], ["_num_frames", "_length"]
    )
    fps_field = _pick(fields, ["frames_per_second", "fps", "frame_rate"], ["_frame_rate", "_fps"])
    frames = _int(resolved.get(frames_field.key) if frames_field else None, _DEFAULT.frames)
    fps = _int(resolved.get(fps_field.key) if fps_field else None, _DEFAULT.fps)
    images = [f for f in fields if f.media == "image"]

    # Order first/last frame inputs by their names: "start"/"first" before "end"/"last".
    def rank(f: Field) -> int:
        name = f.name.lower()
        return (
            0
            if ("start" in name or "first" in name)
            else 2
            if ("end" in name or "last" in name)
            else 1
        )

    images.sort(key=rank)
    style = "transition" if len(images) >= 2 else "camera" if images else "gradient"
    kinds = model.output_kinds()
    kind = "video" if ("video" in kinds or "videos" in kinds or not kinds) else "image"
    return RenderPlan(
        kind, style, VideoSpec(width, height, frames, fps), tuple(f.key for f in images)
    )


def render_job(
    plan: RenderPlan, inputs: Sequence[bytes], folder: Path, render: bool, output_bytes: int | None
) -> dict[str, Path]:
    """Decode the fetched inputs and write the output file into ``folder``."""
    try:
        images = [decode_image(data) for data in inputs]
    except ValueError as exc:
        raise JobCannotRunError(f"input image cannot be used: {exc}") from None
    if plan.kind == "image":
        return {"output.png": render_placeholder_image(images, folder / "output.png")}
    spec = plan.spec if render else _STUB
    path = render_video(images, spec, folder / "output.mp4", style=plan.style)
    if output_bytes:
        _pad(path, output_bytes)
    return {"output.mp4": path}


def _pad(path: Path, size: int) -> None:
    """Grow an MP4 to ``size`` bytes with a trailing 'free' box: players skip it."""
    missing = size - path.stat().st_size
    if missing < 8:
        return
    chunk = bytes(range(256)) * 4096
    with path.open("ab") as out:
        out.write(struct.pack(">I", missing) + b"free")
        left = missing - 8
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
