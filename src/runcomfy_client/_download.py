"""Saving outputs: stream to a temporary name, resume after a cut, check the length, rename.

Never writes outside the target folder whatever the URL's file name, never overwrites an existing
file silently (a new name is chosen unless ``overwrite=True``), and never sends the API key: output
URLs are fetched with a plain GET.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from ._errors import DownloadError
from ._types import DownloadProgress

__all__ = ["ProgressCallback", "plan_targets"]

ProgressCallback = Callable[[DownloadProgress], None]
# Bytes are written as they arrive (no chunk_size): httpx would hold back a partial chunk and
# lose it when the connection is cut, and resuming needs every byte that did arrive.
MAX_RESUMES = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(url: str, fallback: str = "output") -> str:
    """A file name from a URL's last path segment that cannot leave its folder."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    segment = segment.replace("\\", "_").replace("/", "_")
    name = _UNSAFE.sub("_", segment).strip("._") or fallback
    return name[:150]


def plan_targets(urls: Iterable[str], directory: Path, *, overwrite: bool = False) -> list[Path]:
    """One path per URL inside ``directory``: unique, and new unless ``overwrite``."""
    directory = directory.resolve()
    chosen: list[Path] = []
    for url in urls:
        name = safe_name(url)
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate = directory / name
        counter = 2
        while candidate in chosen or (not overwrite and candidate.exists()):
            candidate = directory / (f"{stem}-{counter}.{ext}" if ext else f"{stem}-{counter}")
            counter += 1
        if candidate.parent != directory:  # pragma: no cover - safe_name forbids separators
            raise DownloadError(f"refusing to write outside {directory}: {candidate}", url=url)
        chosen.append(candidate)
    return chosen


@dataclass
class _Progress:
    url: str
    path: Path
    total: int | None = None
    received: int = 0

    def report(self, callback: ProgressCallback | None, done: bool = False) -> None:
        if callback is not None:
            callback(DownloadProgress(self.url, self.path, self.received, self.total, done))


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")


def _range_headers(received: int) -> dict[str, str]:
    return {"Range": f"bytes={received}-"} if received else {}


def _accept(response: httpx.Response, state: _Progress) -> bool:
    """Check a (re)started answer; True when it continues at ``received``, False for restart."""
    if response.status_code == 206 and state.received:
        content_range = response.headers.get("Content-Range", "")
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
        if match and int(match.group(1)) == state.received:
            if match.group(3) != "*":
                state.total = int(match.group(3))
            return True
    if response.status_code not in (200, 206):
        raise DownloadError(f"{state.url} answered HTTP {response.status_code}", url=state.url)
    length = response.headers.get("Content-Length")
    state.total = int(length) if length and length.isdigit() else None
    state.received = 0
    return False


def _finish(tmp: Path, state: _Progress) -> None:
    if state.total is not None and state.received != state.total:
        raise DownloadError(
            f"{state.url}: got {state.received} of {state.total} bytes", url=state.url
        )
    os.replace(tmp, state.path)


def download_sync(
    http: httpx.Client, url: str, path: Path, on_progress: ProgressCallback | None = None
) -> Path:
    """Stream ``url`` to ``path`` (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(path)
    state = _Progress(url, path)
    try:
        failures = 0
        while True:
            before = state.received
            try:
                with http.stream("GET", url, headers=_range_headers(state.received)) as response:
                    mode = "ab" if _accept(response, state) else "wb"
                    with tmp.open(mode) as out:
                        for chunk in response.iter_raw():
                            out.write(chunk)
                            state.received += len(chunk)
                            state.report(on_progress)
                if state.total is None or state.received >= state.total:
                    break
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # Give up only after MAX_RESUMES cuts in a row that brought nothing new.
                failures = 0 if state.received > before else failures + 1
                if failures > MAX_RESUMES:
                    raise DownloadError(f"{url}: {type(exc).__name__}: {exc}", url=url) from None
        _finish(tmp, state)
        state.report(on_progress, done=True)
        return path
    finally:
        tmp.unlink(missing_ok=True)


async def download_async(
    http: httpx.AsyncClient, url: str, path: Path, on_progress: ProgressCallback | None = None
) -> Path:
    """The async twin of :func:`download_sync`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(path)
    state = _Progress(url, path)
    try:
        failures = 0
        while True:
            before = state.received
            try:
                headers = _range_headers(state.received)
                async with http.stream("GET", url, headers=headers) as response:
                    mode = "ab" if _accept(response, state) else "wb"
                    with tmp.open(mode) as out:
                        async for chunk in response.aiter_raw():
                            out.write(chunk)
                            state.received += len(chunk)
                            state.report(on_progress)
                if state.total is None or state.received >= state.total:
                    break
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # Give up only after MAX_RESUMES cuts in a row that brought nothing new.
                failures = 0 if state.received > before else failures + 1
                if failures > MAX_RESUMES:
                    raise DownloadError(f"{url}: {type(exc).__name__}: {exc}", url=url) from None
        _finish(tmp, state)
        state.report(on_progress, done=True)
        return path
    finally:
        tmp.unlink(missing_ok=True)
