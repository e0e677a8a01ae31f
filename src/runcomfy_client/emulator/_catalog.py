"""The emulator's catalog: the models it hosts, from the same schema folders the client reads.

The emulator is a second reading of the API, so it does not use the client's registry: it
shares only where the files are (:mod:`runcomfy_client._schema_files`: the given folders,
then ``RUNCOMFY_SCHEMA_PATH``, then the bundled schemas; a model's id is its path) and reads
each schema itself, verbatim. An Output schema may be published wrapped as
``{"output": {...}}``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .._output_kind import OutputRule, output_rule
from .._schema_files import bundled_schema_dir, env_schema_dirs, output_file, scan
from ._checks import SubmitChecker
from ._failures import ModelUnusableError
from ._reading import ModelReading, read_model

__all__ = ["Catalog", "HostedModel"]

# The Output schema every published page shows, for models no folder gives one.
_PUBLISHED_OUTPUT: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "uri"},
        "video": {"type": "string", "format": "uri"},
        "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "videos": {"type": "array", "items": {"type": "string", "format": "uri"}},
    },
}


@dataclass(frozen=True)
class HostedModel:
    """One model as the emulator serves it: the schema verbatim and what it makes."""

    model_id: str
    raw: Mapping[str, Any] = field(repr=False)
    output_schema: Mapping[str, Any] = field(repr=False)
    output: OutputRule

    @cached_property
    def reading(self) -> ModelReading:
        return read_model(self.raw)

    @cached_property
    def checker(self) -> SubmitChecker:
        return SubmitChecker(self.raw)

    @property
    def description(self) -> str:
        text = self.raw.get("description")
        return text if isinstance(text, str) else ""


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelUnusableError(f"{path}: cannot be read as JSON ({exc})") from None


def _output_of(path: Path) -> Mapping[str, Any]:
    data = _load(path)
    if isinstance(data, dict) and len(data) == 1 and isinstance(data.get("output"), dict):
        data = data["output"]
    if not isinstance(data, dict):
        raise ModelUnusableError(f"{path}: an Output schema must be a JSON object")
    return data


class Catalog:
    """The hosted models, found once and loaded on first use. Thread-safe."""

    def __init__(
        self, schema_dirs: Iterable[str | os.PathLike[str]] = (), *, use_env: bool = True
    ) -> None:
        folders = [Path(d).expanduser() for d in schema_dirs]
        if use_env:
            folders += env_schema_dirs()
        folders.append(bundled_schema_dir())
        self.folders = tuple(dict.fromkeys(folders))
        self._lock = threading.Lock()
        self._files: dict[str, tuple[Path, Path]] | None = None
        self._models: dict[str, HostedModel] = {}

    def _found(self) -> dict[str, tuple[Path, Path]]:
        with self._lock:
            if self._files is None:
                files: dict[str, tuple[Path, Path]] = {}
                for folder in self.folders:
                    for model_id, path in scan(folder):
                        files.setdefault(model_id, (path, folder))
                self._files = dict(sorted(files.items()))
            return self._files

    def model_ids(self) -> list[str]:
        return list(self._found())

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id in self._found()

    def get(self, model_id: str) -> HostedModel:
        """The model (KeyError when unknown, ModelUnusableError when its files are broken)."""
        path, folder = self._found()[model_id]
        with self._lock:
            model = self._models.get(model_id)
        if model is None:
            raw = _load(path)
            if not isinstance(raw, dict):
                raise ModelUnusableError(f"{path}: a model's schema must be a JSON object")
            output_schema = self._output_schema(path, folder)
            rule = output_rule(model_id, input_schema=raw, output_schema=output_schema)
            model = HostedModel(model_id, raw, output_schema, rule)
            with self._lock:
                model = self._models.setdefault(model_id, model)
        return model

    def _output_schema(self, path: Path, folder: Path) -> Mapping[str, Any]:
        found = output_file(path, (folder, *self.folders))
        return _output_of(found) if found else _PUBLISHED_OUTPUT
