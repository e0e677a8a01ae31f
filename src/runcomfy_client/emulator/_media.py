"""Real media for the emulator: H.264 MP4s a browser plays, rendered from the input images.

Image-to-video gets a slow camera move over the image; first-last-frame gets a transition from
the start image to the end image; anything else gets a plausible output of the kind its Output
schema names.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["VideoSpec", "render_placeholder_image", "render_video"]


@dataclass(frozen=True)
class VideoSpec:
    width: int
    height: int
    frames: int
    fps: int


def _even(n: int) -> int:
    # H.264 with 4:2:0 chroma needs even dimensions.
    return max(2, n - n % 2)


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes to RGB; raises ValueError with the reason when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb: Image.Image = img.convert("RGB")
            return rgb
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from None


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Crop the image to the output's aspect ratio, centred, without distorting it."""
    src_ratio = img.width / img.height
    dst_ratio = width / height
    if src_ratio > dst_ratio:
        new_w = round(img.height * dst_ratio)
        left = (img.width - new_w) // 2
        return img.crop((left, 0, left + new_w, img.height))
    new_h = round(img.width / dst_ratio)
    top = (img.height - new_h) // 2
    return img.crop((0, top, img.width, top + new_h))


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)


def _camera(img: Image.Image, spec: VideoSpec, t: float) -> Image.Image:
    """A frame of a slow push-in with a slight pan: the classic image-to-video move."""
    from PIL import Image

    zoom = 1.0 + 0.18 * _ease(t)
    w, h = img.width / zoom, img.height / zoom
    cx = img.width / 2 + (img.width - w) * 0.25 * (t - 0.5)
    cy = img.height / 2
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    return img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box)


def _frames_camera(
    images: Sequence[Image.Image], spec: VideoSpec
) -> Callable[[float], Image.Image]:
    base = _cover(images[0], spec.width, spec.height)
    return lambda t: _camera(base, spec, t)


def _frames_transition(
    images: Sequence[Image.Image], spec: VideoSpec
) -> Callable[[float], Image.Image]:
    from PIL import Image

    start = _cover(images[0], spec.width, spec.height).resize((spec.width, spec.height))
    end = _cover(images[-1], spec.width, spec.height).resize((spec.width, spec.height))

    def frame(t: float) -> Image.Image:
        mixed = Image.blend(start, end, _ease(t))
        return _camera(mixed, spec, t * 0.5)

    return frame


def _frames_gradient(
    images: Sequence[Image.Image], spec: VideoSpec
) -> Callable[[float], Image.Image]:
    import numpy as np
    from PIL import Image

    ys, xs = np.mgrid[0 : spec.height, 0 : spec.width]

    def frame(t: float) -> Image.Image:
        phase = 2 * math.pi * t
        r = 127 + 127 * np.sin(xs / 60 + phase)
        g = 127 + 127 * np.sin(ys / 45 + phase * 1.3)
        b = 127 + 127 * np.sin((xs + ys) / 80 - phase)
        return Image.fromarray(np.dstack([r, g, b]).astype("uint8"), "RGB")

    return frame


STYLES = {
    "camera": _frames_camera,
    "transition": _frames_transition,
    "gradient": _frames_gradient,
}


def render_video(
    images: Sequence[Image.Image], spec: VideoSpec, path: Path, *, style: str = "camera"
) -> Path:
    """Encode ``spec.frames`` frames at ``spec.fps`` into an H.264 (yuv420p) MP4 at ``path``."""
    import av
    import numpy as np

    width, height = _even(spec.width), _even(spec.height)
    spec = VideoSpec(width, height, max(1, spec.frames), max(1, spec.fps))
    if not images:
        style = "gradient"
    make = STYLES[style](images, spec)
    tmp = path.with_name(path.name + ".part")
    # faststart puts the index first, so a browser can play while downloading.
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=spec.fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(spec.frames):
            t = i / (spec.frames - 1) if spec.frames > 1 else 0.0
            picture = np.asarray(make(t).convert("RGB"))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def render_placeholder_image(images: Sequence[Image.Image], path: Path, size: int = 512) -> Path:
    """A PNG output for image models: the first input image, or a gradient."""
    spec = VideoSpec(size, size, 1, 1)
    img = (
        _cover(images[0], size, size).resize((size, size))
        if images
        else _frames_gradient([], spec)(0.0)
    )
    img.save(path, format="PNG")
    return path
