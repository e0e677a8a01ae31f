"""The emulator's catalog: the models it hosts and the records it lists, like RunComfy's.

The emulator is a second reading of the API, so it does not use the client's registry: it
shares only where the files are (:mod:`runcomfy_client._schema_files`: the given folders,
then ``RUNCOMFY_SCHEMA_PATH``, then the bundled schemas; a model's id is its path) and the
sidecar file format (:mod:`runcomfy_client._sidecar`), and reads each schema itself, verbatim.
An Output schema may be published wrapped as ``{"output": {...}}``.

Records (``model_id``, ``display_name``, ``categories``, ``kind``, ``base_price_usd``,
``price_unit``, ``pricing_note``) come from each model's sidecar, else are made up from its id
and output kind (no price). With a catalog file (a JSON list of records, each with its
``input_schema``) the file *is* the catalog: it is read again whenever it is replaced, so a test
can publish, change and withdraw models between two requests.
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
from .._sidecar import RECORD_FIELDS, SidecarError, read_sidecar
from ._checks import SubmitChecker
from ._failures import ModelUnusableError
from ._reading import ModelReading, read_model

__all__ = ["Catalog", "HostedModel", "read_catalog_file"]

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
MAX_CATALOG_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class HostedModel:
    """One model as the emulator serves it: the schema verbatim, its record, what it makes."""

    model_id: str
    raw: Mapping[str, Any] = field(repr=False)
    output_schema: Mapping[str, Any] = field(repr=False)
    output: OutputRule
    record: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The catalog record as listed (no ``input_schema``)."""
    published: Any = field(default=None, repr=False)
    """The input schema as the catalog lists it (verbatim, even when it is no schema)."""
    problem: str | None = None
    """Why jobs cannot run on it (a catalog file's record without a schema object)."""

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


def _record(model_id: str, given: Mapping[str, Any], rule: OutputRule) -> dict[str, Any]:
    """The listed record: what is given, the rest made up as a catalog would show it."""
    record = {name: given.get(name) for name in RECORD_FIELDS}
    record["model_id"] = model_id
    if not isinstance(record["display_name"], str) or not record["display_name"]:
        record["display_name"] = model_id.rsplit("/", 1)[-1]
    if not isinstance(record["categories"], list) or not record["categories"]:
        record["categories"] = [rule.kind]  # the last category names what the model makes
    if not isinstance(record["kind"], str) or not record["kind"]:
        record["kind"] = "model"
    return record


def read_catalog_file(path: Path) -> dict[str, tuple[dict[str, Any], Any]]:
    """``model id -> (record, input schema)`` from a catalog file; ValueError saying what is
    wrong (the emulator's CLI shows it)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CATALOG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"catalog file {path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise ValueError(f"catalog file {path}: larger than {MAX_CATALOG_BYTES >> 20} MiB")
    try:
        records = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"catalog file {path}: not JSON ({exc})") from None
    if not isinstance(records, list):
        raise ValueError(f"catalog file {path}: a JSON list of model records is expected")
    found: dict[str, tuple[dict[str, Any], Any]] = {}
    for number, record in enumerate(records):
        model_id = record.get("model_id") if isinstance(record, dict) else None
        if not isinstance(model_id, str) or not model_id.strip("/"):
            raise ValueError(f"catalog file {path}: record {number} has no model_id")
        assert isinstance(record, dict)
        found[model_id.strip("/")] = (record, record.get("input_schema"))
    return found


class Catalog:
    """The hosted models, found once and loaded on first use (a catalog file: read again when
    it is replaced). Thread-safe."""

    def __init__(
        self,
        schema_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        use_env: bool = True,
        catalog_file: str | os.PathLike[str] | None = None,
    ) -> None:
        folders = [Path(d).expanduser() for d in schema_dirs]
        if use_env:
            folders += env_schema_dirs()
        folders.append(bundled_schema_dir())
        self.folders = tuple(dict.fromkeys(folders))
        self.catalog_file = Path(catalog_file) if catalog_file is not None else None
        self._lock = threading.Lock()
        self._files: dict[str, tuple[Path, Path]] | None = None
        self._models: dict[str, HostedModel] = {}
        self._published: dict[str, tuple[dict[str, Any], Any]] = {}
        self._signature: tuple[int, int, int] | None = None
        if self.catalog_file is not None:
            self._refresh()  # a broken file is refused at start

    # -- the catalog file ---------------------------------------------------------------------

    def _refresh(self) -> None:
        """Read the catalog file again if it was replaced or changed since the last read."""
        path = self.catalog_file
        if path is None:
            return
        try:
            stat = path.stat()
        except OSError as exc:
            raise ModelUnusableError(f"catalog file {path}: {exc.strerror}") from None
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if signature == self._signature:
                return
        try:
            published = read_catalog_file(path)
        except ValueError as exc:
            raise ModelUnusableError(str(exc)) from None
        with self._lock:
            self._published = dict(sorted(published.items()))
            self._models = {}
            self._signature = signature

    # -- lookups ------------------------------------------------------------------------------

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
        if self.catalog_file is not None:
            self._refresh()
            return list(self._published)
        return list(self._found())

    def __contains__(self, model_id: object) -> bool:
        if not isinstance(model_id, str):
            return False
        if self.catalog_file is not None:
            self._refresh()
            return model_id in self._published
        return model_id in self._found()

    def get(self, model_id: str) -> HostedModel:
        """The model (KeyError when unknown, ModelUnusableError when its files are broken)."""
        if self.catalog_file is not None:
            self._refresh()
        with self._lock:
            model = self._models.get(model_id)
        if model is not None:
            return model
        model = self._published_model(model_id) if self.catalog_file else self._file_model(model_id)
        with self._lock:
            return self._models.setdefault(model_id, model)

    def _published_model(self, model_id: str) -> HostedModel:
        given, published = self._published[model_id]
        raw = published if isinstance(published, dict) else {}
        problem = None if raw else f"the catalog file gives {model_id} no input_schema object"
        rule = output_rule(
            model_id, input_schema=raw, output_schema=_PUBLISHED_OUTPUT, record=given
        )
        record = _record(model_id, given, rule)
        return HostedModel(model_id, raw, _PUBLISHED_OUTPUT, rule, record, published, problem)

    def _file_model(self, model_id: str) -> HostedModel:
        path, folder = self._found()[model_id]
        raw = _load(path)
        if not isinstance(raw, dict):
            raise ModelUnusableError(f"{path}: a model's schema must be a JSON object")
        try:
            sidecar = read_sidecar(path) or {}
        except SidecarError as exc:
            raise ModelUnusableError(str(exc)) from None
        output_schema = self._output_schema(path, folder)
        rule = output_rule(model_id, input_schema=raw, output_schema=output_schema, record=sidecar)
        record = _record(model_id, sidecar, rule)
        return HostedModel(model_id, raw, output_schema, rule, record, raw)

    def _output_schema(self, path: Path, folder: Path) -> Mapping[str, Any]:
        found = output_file(path, (folder, *self.folders))
        return _output_of(found) if found else _PUBLISHED_OUTPUT
