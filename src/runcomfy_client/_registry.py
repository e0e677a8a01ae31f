"""The schema registry: which models exist, and what each one's fields are.

Schemas are found in the bundled folder and in the user's folders (``RUNCOMFY_SCHEMA_PATH``,
path-separated, and the ``schema_dirs`` argument). A model's id is its file's path below the
folder without ``.json``. A user's file overrides a bundled one of the same id; two user files for
one id are an error naming both.

Besides model files a folder may hold output schemas: ``_output.json`` at its root is the
default for every model, and ``<id>.output.json`` beside a model's file is that model's own.
``<id>.info.json`` beside it is its sidecar (``ModelSchema.info``): the catalog record that
``schema sync`` fetched (display name, categories, price), or the deployment a schema derived
from a workflow calls. Files whose name starts with ``_`` are never models.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._dialect import (
    LintWarning,
    MediaRule,
    dimension_pair,
    lint,
    media_of,
    media_rules,
    normalise,
)
from ._errors import DuplicateModelError, SchemaError, UnknownModelError
from ._model_ids import check_model_id
from ._model_info import ModelInfo
from ._naming import assign_names, closest
from ._output_kind import OutputRule, output_rule
from ._schema_files import (  # where schema files live: shared with the emulator
    INFO_SUFFIX,
    OUTPUT_SUFFIX,
    bundled_schema_dir,
    env_schema_dirs,
    folder_output_file,
    output_file,
)
from ._schema_files import scan as _scan
from ._schema_limits import MAX_SCHEMA_BYTES
from ._sidecar import SidecarError, read_sidecar

if TYPE_CHECKING:
    from ._validation import Validator

__all__ = [
    "INFO_SUFFIX",
    "OUTPUT_SUFFIX",
    "Field",
    "ModelSchema",
    "Registry",
    "bundled_schema_dir",
]


class _Missing:
    """The marker for "the schema gives no default"."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Field:
    """One input of a model, as the schema describes it."""

    key: str
    """The wire key, e.g. ``96_steps``."""
    name: str
    """The readable Python name, e.g. ``steps``."""
    title: str | None
    description: str | None
    type: str | list[str] | None
    required: bool
    default: Any
    """The server's default (``MISSING`` when none): documented, never sent by the client."""
    enum: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None
    exclusive_minimum: float | None
    exclusive_maximum: float | None
    media: str | None
    """'image', 'video', 'audio' or 'mask' for fields that take media URLs (for an array of
    them, the kind of each element)."""
    dimensions: bool
    """True for the ``<n>_widthx<n>_height`` enum that carries two node inputs."""
    schema: Mapping[str, Any] = field(repr=False, compare=False)
    media_array: bool = False
    """True when the field takes a list of media URLs (``format: image_uris``, ...)."""
    media_rule: str | None = None
    """Which rule of the dialect made it media: ``x-media``, ``format`` or ``name``."""
    min_items: int | None = None
    max_items: int | None = None
    validations: tuple[MediaRule, ...] = ()
    """The ``validations`` rules the client checks on local files before uploading them."""

    @property
    def items(self) -> Mapping[str, Any] | None:
        """The schema of each element, for an array field that gives one."""
        found = self.schema.get("items")
        return found if isinstance(found, dict) else None

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING

    @property
    def label(self) -> str:
        """``name (key)``: how messages name a field."""
        return f"{self.name} ({self.key})"

    @property
    def type_name(self) -> str:
        if isinstance(self.type, list):
            return " | ".join(self.type)
        return self.type or "any"


@dataclass(frozen=True)
class ModelSchema:
    """A model's normalised input schema, its fields, output schema and lint warnings."""

    model_id: str
    path: Path | None
    raw: Mapping[str, Any] = field(repr=False)
    schema: dict[str, Any] = field(repr=False)
    fields: tuple[Field, ...]
    output_schema: Mapping[str, Any] = field(repr=False)
    warnings: tuple[LintWarning, ...] = ()
    bundled: bool = False
    info: ModelInfo | None = field(default=None, compare=False)
    """The model's sidecar (``<id>.info.json``): catalog record, price; None when it has none."""

    @property
    def title(self) -> str | None:
        title = self.schema.get("title")
        return title if isinstance(title, str) else None

    @property
    def description(self) -> str | None:
        text = self.raw.get("description")
        return text if isinstance(text, str) and text else None

    @property
    def required(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.required)

    def field(self, name_or_key: str) -> Field:
        """The field with this readable name or wire key (KeyError with a hint otherwise)."""
        found = self.find(name_or_key)
        if found is None:
            hints = closest(
                name_or_key, [f.name for f in self.fields] + [f.key for f in self.fields]
            )
            hint = f"; did you mean {hints[0]!r}?" if hints else ""
            raise KeyError(f"{self.model_id} has no field {name_or_key!r}{hint}")
        return found

    def find(self, name_or_key: str) -> Field | None:
        for f in self.fields:
            if name_or_key in (f.key, f.name):
                return f
        return None

    @cached_property
    def validator(self) -> Validator:
        """This schema's validator, compiled on first use and kept with the schema."""
        from ._validation import Validator

        return Validator(self)

    def output(self) -> OutputRule:
        """What the model makes, by the one output-kind rule (its catalog record first)."""
        return output_rule(
            self.model_id,
            input_schema=self.raw,
            output_schema=self.output_schema,
            record=self.info.sidecar() if self.info is not None else None,
        )

    def output_kinds(self) -> list[str]:
        """The output keys the Output schema names (``video``, ``images``, ...)."""
        props = self.output_schema.get("properties", {})
        return list(props) if isinstance(props, dict) else []


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build_fields(schema: Mapping[str, Any]) -> tuple[Field, ...]:
    """The fields of a normalised schema, named by the one naming rule."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    names, _ = assign_names({k: v for k, v in properties.items() if isinstance(v, dict)})
    required = set(schema.get("required", []))
    fields = []
    for key, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        enum = prop.get("enum")
        media = media_of(key, prop)
        fields.append(
            Field(
                key=key,
                name=names[key],
                title=prop.get("title") if isinstance(prop.get("title"), str) else None,
                description=prop.get("description") or None,
                type=prop.get("type"),
                required=key in required,
                default=prop.get("default", MISSING),
                enum=tuple(enum) if isinstance(enum, list) else None,
                minimum=_number(prop.get("minimum")),
                maximum=_number(prop.get("maximum")),
                exclusive_minimum=_number(prop.get("exclusiveMinimum")),
                exclusive_maximum=_number(prop.get("exclusiveMaximum")),
                media=media.kind if media else None,
                dimensions=dimension_pair(key, prop),
                schema=prop,
                media_array=bool(media and media.many),
                media_rule=media.rule if media else None,
                min_items=_count(prop.get("minItems")),
                max_items=_count(prop.get("maxItems")),
                validations=media_rules(prop) if media else (),
            )
        )
    # Required fields first, each group in the schema's order: the order people fill them in.
    fields.sort(key=lambda f: not f.required)
    return tuple(fields)


def load_json(path: Path, *, limit: int = MAX_SCHEMA_BYTES, what: str = "a schema file") -> Any:
    """Parse a JSON file; bad JSON names the file, line and column. Files over ``limit``
    bytes (``MAX_SCHEMA_BYTES`` for schemas) are refused unread."""
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise SchemaError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if len(data) > limit:
        raise SchemaError(
            f"larger than {limit // (1024 * 1024)} MiB; {what} this big is refused unread",
            file=str(path),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None
    return parse_json(text, file=str(path))


def parse_json(text: str, *, file: str | None = None) -> Any:
    """``json.loads`` whose every failure (bad JSON, nesting too deep for the parser, a number
    with thousands of digits) is a :class:`SchemaError` naming the file."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"not valid JSON: {exc.msg}", file=file, line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise SchemaError("not usable: the JSON is nested too deeply", file=file) from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise SchemaError(f"not usable JSON: {exc}", file=file) from None


def model_from_schema(
    model_id: str,
    raw: Any,
    *,
    path: Path | None = None,
    output_schema: Mapping[str, Any] | None = None,
    bundled: bool = False,
    info: ModelInfo | None = None,
) -> ModelSchema:
    """Normalise, lint and describe one model's schema."""
    file = str(path) if path else None
    check_model_id(model_id, file=file)
    schema = normalise(raw, file=file)
    return ModelSchema(
        model_id=model_id,
        path=path,
        raw=raw,
        schema=schema,
        fields=build_fields(schema),
        output_schema=output_schema or DEFAULT_OUTPUT_SCHEMA,
        warnings=tuple(lint(schema, file=file)),
        bundled=bundled,
        info=info,
    )


# The Output schema every published page shows, used when no folder provides one.
DEFAULT_OUTPUT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "uri"},
        "video": {"type": "string", "format": "uri"},
        "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "videos": {"type": "array", "items": {"type": "string", "format": "uri"}},
    },
}


def _output_from_file(path: Path) -> Mapping[str, Any]:
    data = load_json(path)
    # Pages publish it wrapped as {"output": {...}}; accept the bare schema too.
    if isinstance(data, dict) and isinstance(data.get("output"), dict) and len(data) == 1:
        data = data["output"]
    if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
        raise SchemaError("an output schema needs a 'properties' object", file=str(path))
    return data


def load_info(model_id: str, schema_file: Path) -> ModelInfo | None:
    """The sidecar beside ``schema_file`` as a :class:`ModelInfo`; None when it has none."""
    try:
        data = read_sidecar(schema_file)
    except SidecarError as exc:
        raise SchemaError(f"its sidecar is unusable: {exc.reason}", file=str(exc.file)) from None
    return None if data is None else ModelInfo.from_sidecar(data, model_id=model_id)


@dataclass(frozen=True)
class _Source:
    model_id: str
    path: Path
    root: Path
    bundled: bool


class Registry:
    """Finds, loads and caches model schemas. Thread-safe.

    ``schema_dirs`` are searched before ``RUNCOMFY_SCHEMA_PATH`` (when ``use_env``), and both
    before the bundled folder (when ``include_bundled``).
    """

    def __init__(
        self,
        schema_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        use_env: bool = True,
        include_bundled: bool = True,
    ) -> None:
        user = [Path(d).expanduser() for d in schema_dirs]
        if use_env:
            user += env_schema_dirs()
        seen: set[Path] = set()
        self.user_dirs: list[Path] = []
        for folder in user:
            resolved = folder.resolve()
            if resolved not in seen:
                seen.add(resolved)
                self.user_dirs.append(folder)
        self.bundled_dir: Path | None = bundled_schema_dir() if include_bundled else None
        self._lock = threading.RLock()
        self._sources: dict[str, _Source] | None = None
        self._models: dict[str, ModelSchema] = {}

    def __repr__(self) -> str:
        return f"Registry(user_dirs={[str(d) for d in self.user_dirs]!r})"

    @property
    def schema_dirs(self) -> list[Path]:
        dirs = list(self.user_dirs)
        if self.bundled_dir is not None:
            dirs.append(self.bundled_dir)
        return dirs

    def _discover(self) -> dict[str, _Source]:
        with self._lock:
            if self._sources is not None:
                return self._sources
            sources: dict[str, _Source] = {}
            claimed: dict[str, list[Path]] = {}
            for folder in self.user_dirs:
                for model_id, path in _scan(folder):
                    claimed.setdefault(model_id, []).append(path)
                    sources.setdefault(model_id, _Source(model_id, path, folder, False))
            for model_id, paths in claimed.items():
                if len(paths) > 1:
                    raise DuplicateModelError(model_id, [str(p) for p in paths])
            if self.bundled_dir is not None:
                for model_id, path in _scan(self.bundled_dir):
                    sources.setdefault(model_id, _Source(model_id, path, self.bundled_dir, True))
            self._sources = dict(sorted(sources.items()))
            return self._sources

    def model_ids(self) -> list[str]:
        """Every known model id, sorted."""
        return list(self._discover())

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id in self._discover()

    def source(self, model_id: str) -> Path:
        """The file a model's schema is loaded from."""
        return self._source(model_id).path

    def _source(self, model_id: str) -> _Source:
        sources = self._discover()
        found = sources.get(model_id.strip("/"))
        if found is None:
            raise UnknownModelError(model_id, closest(model_id, sources, n=2))
        return found

    def get(self, model_id: str) -> ModelSchema:
        """The model's schema, loaded and normalised once (UnknownModelError if unknown)."""
        src = self._source(model_id)
        with self._lock:
            model = self._models.get(src.model_id)
            if model is None:
                model = model_from_schema(
                    src.model_id,
                    load_json(src.path),
                    path=src.path,
                    output_schema=self._output_schema(src),
                    bundled=src.bundled,
                    info=load_info(src.model_id, src.path),
                )
                self._models[src.model_id] = model
            return model

    def validator(self, model_id: str) -> Validator:
        """The model's validator, compiled once and cached."""
        model = self.get(model_id)
        with self._lock:  # one compile even when threads ask at once
            return model.validator

    def _output_schema(self, src: _Source) -> Mapping[str, Any]:
        found = output_file(src.path, (src.root, *self.schema_dirs))
        return _output_from_file(found) if found else DEFAULT_OUTPUT_SCHEMA

    def shared_output_schema(self, root: Path) -> Mapping[str, Any]:
        """The Output schema of a model in ``root`` that has no ``<id>.output.json`` of its own:
        the first ``_output.json`` in ``root`` or the registry's folders, else the default."""
        found = folder_output_file((root, *self.schema_dirs))
        return _output_from_file(found) if found else DEFAULT_OUTPUT_SCHEMA
