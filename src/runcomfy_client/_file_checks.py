"""Checks on local files before any of them is uploaded: content of the field's kind, and the
field's ``validations`` rules (file size, width, height, aspect ratio) measured on the file.

They run only when there are local files to upload, so valid URL inputs never pay for them.
A rule that cannot be measured here (Pillow or PyAV missing, an unreadable header) is not
enforced: a note goes to the ``runcomfy_client`` logger and the server has the last word.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._dialect import MEDIA_RULES, MediaRule, number_text
from ._media_files import Sniffed, dimensions, kind_accepts, sniff_file
from ._problem import LocalFile, Problem
from ._registry import Field

__all__ = ["local_file_problems"]

logger = logging.getLogger("runcomfy_client")
MB = 1024 * 1024
"""What ``file_size_mb`` counts in: 1,048,576 bytes, as most tools do."""
_ARTICLE = {"image": "an image", "video": "a video", "audio": "an audio", "mask": "an image"}


def local_file_problems(
    files: Sequence[LocalFile], fields: Mapping[str, Field], *, allow_any_file: bool = False
) -> list[Problem]:
    """Every problem with the local files about to be uploaded (empty when all may go)."""
    problems: list[Problem] = []
    for local in files:
        f = fields[local.key]
        where = f"[{local.index}]" if local.index is not None else ""
        path = Path(local.path)
        try:
            size = path.stat().st_size
            sniffed = sniff_file(path)
        except OSError as exc:
            unreadable = f"cannot read {local.path}: {exc.strerror}"
            problems.append(Problem("media", unreadable, f.name, f.key, local.path, path=where))
            continue
        if not allow_any_file and (sniffed is None or not kind_accepts(f.media, sniffed.kind)):
            problems.append(_wrong_kind(f, local, sniffed, where))
            continue
        kind = sniffed.kind if sniffed is not None else (f.media or "image")
        measured = _Measure(path, size, kind)
        for rule in f.validations:
            message = _broken_rule(rule, measured, local, f)
            if message is not None:
                allowed = f"{rule.rule} {number_text(rule.value)}"
                problems.append(
                    Problem("rule", message, f.name, f.key, local.path, allowed, path=where)
                )
    return problems


def _wrong_kind(f: Field, local: LocalFile, sniffed: Sniffed | None, where: str) -> Problem:
    wanted = f.media or "media"
    what = (
        f"{_ARTICLE[sniffed.kind]} ({sniffed.mime})"
        if sniffed
        else "not an image, video or audio file"
    )
    message = (
        f"{local.path!r} is not {_ARTICLE.get(wanted, 'a ' + wanted)} file (its content is "
        f"{what}); only {wanted} files are uploaded for this field. Pass allow_any_file=True "
        "(--allow-any-file in the CLI) to upload it anyway"
    )
    return Problem("media", message, f.name, f.key, local.path, f"{wanted} file", path=where)


class _Measure:
    """A file's measurements, each read once and only when a rule needs it."""

    def __init__(self, path: Path, size: int, kind: str) -> None:
        self.path, self.size, self.kind = path, size, kind
        self._dimensions: tuple[int, int] | str | None = None

    def dimensions(self) -> tuple[int, int] | str:
        if self._dimensions is None:
            self._dimensions = (
                dimensions(self.path, self.kind)
                if self.kind in ("image", "video")
                else f"a {self.kind} file has no width or height"
            )
        return self._dimensions


def _broken_rule(rule: MediaRule, m: _Measure, local: LocalFile, f: Field) -> str | None:
    """The message when ``rule`` fails on the file, None when it holds or cannot be measured."""
    if rule.rule == "file_size_mb<":
        value = m.size / MB
        if value < rule.value:
            return None
        return _message(rule, local, f"{value:.2f} MB ({m.size:,} bytes)")
    size = m.dimensions()
    if isinstance(size, str):
        logger.warning(
            "%s: rule %s %s not checked for %s: %s",
            local.label,
            rule.rule,
            number_text(rule.value),
            local.path,
            size,
        )
        return None
    width, height = size
    measured: float = {
        "width_pixels>": width,
        "height_pixels>": height,
        "width/height>": width / height if height else float("inf"),
        "width/height<": width / height if height else float("inf"),
    }[rule.rule]
    holds = measured < rule.value if rule.rule.endswith("<") else measured > rule.value
    if holds:
        return None
    shown = f"{width}x{height}"
    if rule.rule.startswith("width/height"):
        shown += f", ratio {measured:.3g}"
    return _message(rule, local, shown)


def _message(rule: MediaRule, local: LocalFile, measured: str) -> str:
    own = " ".join(rule.error.split()) or (
        f"{MEDIA_RULES[rule.rule]} must be {rule.rule[-1]} {number_text(rule.value)}."
    )
    if not own.endswith((".", "!", "?")):
        own += "."
    return f"{own} {local.path!r} measures {measured} (rule {rule.rule} {number_text(rule.value)})"
