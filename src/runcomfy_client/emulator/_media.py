"""Real media for the emulator: H.264 MP4s a browser plays, images, and WAV audio.

Image-to-video gets a slow camera move over the image; first-last-frame gets a transition from
the start image to the end image; a text prompt gets a camera move over a colour field. Image
models get the first input image (an edit) or a colour field, as PNG, JPEG or WebP. Audio
models get a soft chord as 16-bit PCM WAV.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "VideoSpec",
    "decode_image",
    "first_frame",
    "image_size",
    "render_audio",
    "render_image",
    "render_placeholder_image",
    "render_video",
]

# PIL's names for the output formats the catalog asks for.
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# Frames are drawn at most this wide (or tall) and scaled up by the encoder's scaler: a
# 1080p or 4k clip then costs little more to draw than a 540p one.
_DRAW_SIDE = 960


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
            if img.width * img.height > 64_000_000:
                raise ValueError(f"{img.width}x{img.height} is more than 64 megapixels")
            img.load()
            rgb: Image.Image = img.convert("RGB")
            return rgb
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from None


def image_size(data: bytes) -> tuple[int, int] | None:
    """An image's width and height from its header alone; None when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width, img.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None


def first_frame(data: bytes) -> Image.Image:
    """The first picture of a video, as RGB; ValueError when it has none."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            for frame in container.decode(video=0):
                picture: Image.Image = frame.to_image()
                return picture
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise ValueError(f"not a decodable video ({exc})") from None
    raise ValueError("the video has no frames")


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Crop the image to the output's aspect ratio, centred, without distorting it."""
    src_ratio = img.width / img.height
    dst_ratio = width / height
    if src_ratio > dst_ratio:
        new_w = max(1, round(img.height * dst_ratio))
        left = (img.width - new_w) // 2
        return img.crop((left, 0, left + new_w, img.height))
    new_h = max(1, round(img.width / dst_ratio))
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


def colour_field(width: int, height: int, phase: float = 0.0) -> Image.Image:
    """A smooth colour field: what a prompt alone turns into."""
    import numpy as np
    from PIL import Image

    ys, xs = np.mgrid[0:height, 0:width].astype("float32")
    scale = 512 / max(width, height)
    xs, ys = xs * scale, ys * scale
    r = 127 + 127 * np.sin(xs / 60 + phase)
    g = 127 + 127 * np.sin(ys / 45 + phase * 1.3)
    b = 127 + 127 * np.sin((xs + ys) / 80 - phase)
    return Image.fromarray(np.dstack([r, g, b]).astype("uint8"), "RGB")


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


def render_video(
    images: Sequence[Image.Image], spec: VideoSpec, path: Path, *, style: str | None = None
) -> Path:
    """Encode ``spec.frames`` frames at ``spec.fps`` into an H.264 (yuv420p) MP4 at ``path``:
    a camera move over one image, a transition across two or more, a colour field for none.
    ``style`` narrows that: ``camera`` uses the first image only, ``gradient`` none."""
    import av
    import numpy as np

    if style == "camera":
        images = images[:1]
    elif style == "gradient":
        images = []

    width, height = _even(spec.width), _even(spec.height)
    frames, fps = max(1, spec.frames), max(1, spec.fps)
    scale = min(1.0, _DRAW_SIDE / max(width, height))
    drawn = VideoSpec(max(2, round(width * scale)), max(2, round(height * scale)), frames, fps)
    if not images:
        images = [colour_field(drawn.width, drawn.height)]
    make = (_frames_transition if len(images) >= 2 else _frames_camera)(images, drawn)
    tmp = path.with_name(path.name + ".part")
    # faststart puts the index first, so a browser can play while downloading.
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(frames):
            t = i / (frames - 1) if frames > 1 else 0.0
            picture = np.asarray(make(t).convert("RGB"))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if scale < 1.0:
                frame = frame.reformat(width=width, height=height, format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def render_image(
    images: Sequence[Image.Image], width: int, height: int, fmt: str, path: Path, variant: int = 0
) -> Path:
    """One output image: the first input image cropped to size (an edit), or a colour field."""
    if images:
        img = _cover(images[variant % len(images)], width, height).resize((width, height))
    else:
        img = colour_field(width, height, phase=variant * 0.9)
    tmp = path.with_name(path.name + ".part")
    # Fast settings: the emulator's pictures are for tests, not for keeping.
    options = {"compress_level": 1} if fmt == "png" else {"quality": 85}
    img.save(tmp, format=IMAGE_FORMATS[fmt], **options)
    tmp.replace(path)
    return path


def render_placeholder_image(images: Sequence[Image.Image], path: Path, size: int = 512) -> Path:
    """A square PNG: the first input image, or a colour field."""
    return render_image(images, size, size, "png", path)


def render_audio(seconds: float, path: Path, rate: int = 24_000) -> Path:
    """A soft A-minor chord of ``seconds`` as mono 16-bit PCM WAV."""
    import numpy as np

    count = max(1, round(seconds * rate))
    t = np.arange(count, dtype="float32") / rate
    tone = sum(np.sin(2 * math.pi * f * t) for f in (220.0, 261.63, 329.63)) / 3
    fade = np.minimum(1.0, np.minimum(t, (count / rate) - t) * 20)
    samples = (tone * fade * 0.4 * 32767).astype("<i2")
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    tmp.replace(path)
    return path


def pad_mp4(path: Path, size: int) -> None:
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
