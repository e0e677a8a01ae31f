"""Draw the demo's example images (kept in the repo; run again only to change them).

python examples/make_images.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent / "images"
SIZE = (480, 320)


def _sky(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(img)
    for y in range(SIZE[1]):
        t = y / (SIZE[1] - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (SIZE[0], y)], fill=colour)
    return img


def _hills(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int], base: int, amp: int) -> None:
    points = [
        (x, base - amp * math.sin(x / 70) - amp / 2 * math.sin(x / 23)) for x in range(0, 481, 8)
    ]
    draw.polygon([(0, SIZE[1]), *points, (SIZE[0], SIZE[1])], fill=colour)


def scene(time_of_day: str) -> Image.Image:
    if time_of_day == "day":
        img = _sky((90, 160, 235), (200, 230, 250))
        sun, sun_colour = (360, 80), (255, 235, 120)
        near, far = (60, 140, 70), (110, 170, 110)
    else:
        img = _sky((20, 20, 60), (230, 120, 80))
        sun, sun_colour = (110, 210), (255, 170, 90)
        near, far = (40, 50, 60), (80, 70, 90)
    draw = ImageDraw.Draw(img)
    draw.ellipse([sun[0] - 34, sun[1] - 34, sun[0] + 34, sun[1] + 34], fill=sun_colour)
    _hills(draw, far, 230, 22)
    _hills(draw, near, 270, 16)
    # A small house, so the camera move has something to frame.
    draw.rectangle([200, 215, 260, 262], fill=(235, 225, 200))
    draw.polygon([(192, 217), (230, 185), (268, 217)], fill=(170, 60, 50))
    draw.rectangle([222, 235, 238, 262], fill=(90, 60, 40))
    return img


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    scene("day").save(HERE / "valley-day.png", optimize=True)
    scene("dusk").save(HERE / "valley-dusk.png", optimize=True)
    print("wrote", *sorted(p.name for p in HERE.glob("*.png")))
