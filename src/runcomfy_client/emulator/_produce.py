"""Running one job: get its inputs, plan its output, render it once and share the file.

Renders are cached on what the file is made from (the plan and the input files' digests), so
a load test's jobs that differ only in their prompt or seed share one file, and jobs that
need the same file while it is being made wait for the first one's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._catalog import HostedModel
from ._failures import JobCannotRunError
from ._inputs import InputFetcher
from ._media import image_size, pad_mp4
from ._reading import MediaInput
from ._render import RenderPlan, decode_inputs, plan_render, render, stub_plan

__all__ = ["Produced", "Producer"]


@dataclass(frozen=True)
class Produced:
    key: str
    """The output key of the answer (``video``, ``images`` ...)."""
    files: dict[str, Path]
    seconds: float = 0.0
    """The length of clip the job asked for (what a price per second charges)."""


def given_media(
    model: HostedModel, payload: Mapping[str, Any]
) -> list[tuple[str, MediaInput, Any]]:
    """``(label, input, value)`` for every media value the caller sent, start frames first.
    Optional inputs left out (or sent empty) are not fetched: the service would not use them."""
    found = []
    for media in sorted(model.reading.media, key=lambda m: m.rank):
        value = payload.get(media.key)
        if value is None or value in ("", []):
            continue
        if isinstance(value, list):
            found += [(f"{media.key}[{i}]", media, v) for i, v in enumerate(value)]
        else:
            found.append((media.key, media, value))
    return found


async def _all(jobs: list[Awaitable[bytes]]) -> list[bytes]:
    """Every fetch at once; the first failure cancels the rest."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Producer:
    """Makes jobs' output files under ``folder``; ``real=False`` makes tiny stand-ins."""

    def __init__(
        self, fetcher: InputFetcher, folder: Path, *, real: bool, output_bytes: int | None
    ) -> None:
        self.fetcher = fetcher
        self.folder = folder
        self.real = real
        self.output_bytes = output_bytes
        self._renders: dict[str, dict[str, Path]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def produce(self, model: HostedModel, payload: Mapping[str, Any]) -> Produced:
        resolved = {**model.reading.defaults, **payload}
        media = given_media(model, payload)
        data = await _all([self.fetcher.get(label, value, m.kind) for label, m, value in media])
        labelled = [(label, m.kind, d) for (label, m, _), d in zip(media, data, strict=True)]
        images = [(label, d) for label, kind, d in labelled if kind == "image"]
        videos = [(label, d) for label, kind, d in labelled if kind == "video"]
        first = image_size(images[0][1]) if images else None
        if images and first is None:
            raise JobCannotRunError(f"input {images[0][0]} cannot be used: not a decodable image")
        plan = plan_render(model, resolved, first)
        asked = plan.seconds if plan.kind != "image" else 0.0
        if not self.real:
            plan = stub_plan(plan)
        used = [d for _, d in images or videos[:2]]
        made_from = [repr(plan), [hashlib.sha256(d).hexdigest() for d in used], self.output_bytes]
        cache_key = hashlib.sha256(json.dumps(made_from).encode()).hexdigest()
        async with self._locks.setdefault(cache_key, asyncio.Lock()):
            files = self._renders.get(cache_key)
            if files is None:
                folder = self.folder / cache_key[:16]
                folder.mkdir(parents=True, exist_ok=True)
                files = await asyncio.to_thread(self._render, plan, images, videos, folder)
                self._renders[cache_key] = files
        return Produced(plan.key, files, asked)

    def _render(
        self,
        plan: RenderPlan,
        images: list[tuple[str, bytes]],
        videos: list[tuple[str, bytes]],
        folder: Path,
    ) -> dict[str, Path]:
        pictures = decode_inputs(images, videos) if plan.kind != "audio" else []
        files = render(plan, pictures, folder)
        if self.output_bytes and plan.kind == "video":
            for path in files.values():
                pad_mp4(path, self.output_bytes)
        return files
