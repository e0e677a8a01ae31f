"""One thing wrong with a job's inputs, and how it names where it is.

A problem is labelled by the field's readable name and wire key; inside a list or an object the
place follows the name (``image_urls[2] (image_urls)``, ``loras[0].scale (loras)``), so the
same label reads right in a message, the CLI and a batch report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LocalFile", "Problem", "place"]


def place(parts: Sequence[str | int]) -> str:
    """``[0].scale`` for the path ``(0, 'scale')`` inside a field's value."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inputs.

    ``kind`` is one of: ``missing``, ``unknown``, ``duplicate``, ``type``, ``minimum``,
    ``maximum``, ``enum``, ``media``, ``rule`` (a field's ``validations`` rule failed on a local
    file), ``invalid``. ``path`` is the place inside the field's value (``[2]``, ``[0].scale``),
    empty for the value itself.
    """

    kind: str
    message: str
    name: str | None = None
    key: str | None = None
    value: object = None
    allowed: str | None = None
    path: str = ""

    @property
    def label(self) -> str:
        if self.path and (self.name or self.key):
            return f"{self.name or self.key}{self.path} ({self.key or self.name})"
        if self.name and self.key and self.name != self.key:
            return f"{self.name} ({self.key})"
        given = self.name or self.key
        if given is None:
            return "input"
        # A blank or unprintable name (from an unknown key) is shown quoted, so it is visible.
        return given if given.strip() and given.isprintable() else repr(given)

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


@dataclass(frozen=True)
class LocalFile:
    """A local file given for a media field, to be uploaded before the job is submitted.

    ``path`` has ``~`` expanded; ``index`` is its place in a media list (None for one file).
    """

    key: str
    name: str
    path: str
    media: str | None
    index: int | None = None

    @property
    def label(self) -> str:
        where = f"[{self.index}]" if self.index is not None else ""
        return f"{self.name}{where} ({self.key})"
