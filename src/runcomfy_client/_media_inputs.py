"""Paths and open files given for media fields, turned into the local paths uploaders take.

Validation and uploaders work on file names; callers often hold a ``pathlib.Path`` or an open
binary file instead. Before validation, such values given for a media field become plain path
strings: a ``Path`` as is, an open file by its name when it has one on disk, otherwise its bytes
spooled to a temporary file that lives until the submit is over. Without an uploader they then
get the usual "this is a local file; configure an uploader" message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LocalMedia", "check_inputs_type"]

ACCEPTED = (
    "a mapping of field names (readable names or wire keys) to values, "
    "or a generated input model (runcomfy_models...Input)"
)


def check_inputs_type(inputs: object) -> None:
    """TypeError, saying what is accepted, for inputs that are neither a mapping nor a model."""
    if isinstance(inputs, Mapping) or callable(getattr(inputs, "to_payload", None)):
        return
    raise TypeError(f"inputs must be {ACCEPTED}, not {type(inputs).__name__}")


def _is_binary_file(value: object) -> bool:
    return callable(getattr(value, "read", None)) and not isinstance(value, (str, bytes))


class LocalMedia:
    """Context manager: the inputs with Paths and open files of media fields as path strings.

    ``media_names`` holds the readable names and wire keys of the model's media fields; values
    of other fields are left alone (validation reports them). Spooled copies are removed on
    exit.
    """

    def __init__(self, inputs: Mapping[str, Any], media_names: Iterable[str]) -> None:
        self._inputs = inputs
        self._media = set(media_names)
        self._spool: Path | None = None

    def __enter__(self) -> Mapping[str, Any]:
        if not any(self._convertible(v) for k, v in self._inputs.items() if k in self._media):
            return self._inputs
        return {
            key: self._convert(value) if key in self._media else value
            for key, value in self._inputs.items()
        }

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._spool is not None:
            import shutil

            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    def _convertible(self, value: object) -> bool:
        if isinstance(value, (list, tuple)):
            return any(self._convertible(v) for v in value)
        return isinstance(value, os.PathLike) or _is_binary_file(value)

    def _convert(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [self._convert(v) for v in value]
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if _is_binary_file(value):
            return self._file_path(value)
        return value

    def _file_path(self, stream: Any) -> str:
        name = getattr(stream, "name", None)
        if isinstance(name, str) and os.path.isfile(name):
            return name  # an open file on disk: upload the file itself
        data = stream.read()
        if not isinstance(data, bytes):
            raise TypeError(
                f"{name or 'a file object'} was opened in text mode; open media files with "
                "open(path, 'rb')"
            )
        if self._spool is None:
            import tempfile

            self._spool = Path(tempfile.mkdtemp(prefix="runcomfy-upload-"))
        base = os.path.basename(name) if isinstance(name, str) and name else "input"
        path = self._spool / f"{len(list(self._spool.iterdir()))}" / base
        path.parent.mkdir()
        path.write_bytes(data)
        return str(path)
