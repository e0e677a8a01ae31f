"""What generated typed wrappers stand on (``runcomfy_models``, or your own codegen output).

A generated module holds no protocol logic. It describes one model (its id, the schema it was
generated from, a pydantic input class) and calls the clients through :class:`TypedModel`, so
validation, messages, retries and polling are the runtime's, exactly as for ``client.run(id, ...)``.

Imported only by generated code and by people using it: ``import runcomfy_client`` does not load
pydantic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ._download import ProgressCallback
from ._errors import SchemaError
from ._not_given import NOT_GIVEN, NotGiven
from ._registry import ModelSchema, model_from_schema
from ._waiting import StatusCallback

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._client import (
        AsyncClient,
        AsyncRequestHandle,
        AsyncResult,
        Client,
        RequestHandle,
        RunOptions,
        SyncResult,
    )

__all__ = [
    "NOT_GIVEN",
    "InputModel",
    "NotGiven",
    "ProgressCallback",
    "StatusCallback",
    "TypedModel",
]


class InputModel(BaseModel):
    """Base of every generated input class: fields by readable name, wire keys as aliases.

    Built by name or by wire key. Construction runs the runtime's validator first, so a bad
    value raises the same :class:`~runcomfy_client.InputValidationError` (naming the field, its
    wire key and what is allowed) as ``client.run`` would; a local file for a media field is
    accepted (the client's uploader sends it). :meth:`to_payload` gives only the
    fields that were set, by wire key: defaults stay the server's.
    """

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    runcomfy_model: ClassVar[TypedModel[Any] | None] = None
    """Set by the generated module: the model whose schema validates this class's inputs."""

    def __init__(self, /, **data: Any) -> None:
        typed = type(self).runcomfy_model
        if typed is not None:
            validator = typed.schema.validator
            data, problems = validator.check(_plain(data))
            # A local file for a media field is fine here: the client's uploader sends it (and
            # without one, submitting says so).
            _, problems = validator.split_local_files(problems)
            if problems:
                from ._errors import InputValidationError

                raise InputValidationError(typed.model_id, problems)
        super().__init__(**data)

    def to_payload(self) -> dict[str, Any]:
        """The wire payload: the fields that were set, by wire key, as JSON values."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


_I = TypeVar("_I", bound=InputModel)


class TypedModel(Generic[_I]):
    """One generated model: its id, its schema and its input class, bound to the clients."""

    def __init__(
        self,
        model_id: str,
        schema: Mapping[str, Any],
        input_class: type[_I],
        *,
        output_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.input_class = input_class
        self._raw = schema
        self._output_schema = output_schema
        self._schema: ModelSchema | None = None
        self._lock = threading.Lock()
        input_class.runcomfy_model = self

    @classmethod
    def from_data(
        cls, model_id: str, input_class: type[_I], *, package: str | None, data: str
    ) -> TypedModel[_I]:
        """The model whose schemas codegen wrote as JSON (``data``) beside its module.

        A file that is missing, not JSON, or written for another model raises ``SchemaError``.
        """
        where = f"{package}/{data}"
        try:
            if package is None:
                raise FileNotFoundError("a generated module must be imported from its package")
            record = json.loads(resources.files(package).joinpath(data).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaError(f"cannot read the generated schema data: {exc}", file=where) from exc
        if not isinstance(record, dict) or record.get("model_id") != model_id:
            raise SchemaError(f"the schema data is not {model_id!r}'s", file=where)
        schema, output = record.get("input_schema"), record.get("output_schema")
        if not isinstance(schema, dict) or not isinstance(output, (dict, type(None))):
            raise SchemaError("the schema data has no input_schema object", file=where)
        return cls(model_id, schema, input_class, output_schema=output)

    @property
    def raw_schema(self) -> Mapping[str, Any]:
        """The input schema as published (what the wrappers were generated from)."""
        return self._raw

    def __repr__(self) -> str:
        return f"TypedModel({self.model_id!r})"

    @property
    def schema(self) -> ModelSchema:
        """The schema the wrappers were generated from, normalised on first use."""
        with self._lock:
            if self._schema is None:
                self._schema = model_from_schema(
                    self.model_id, self._raw, output_schema=self._output_schema
                )
            return self._schema

    @staticmethod
    def given(values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the keywords left ``NOT_GIVEN``; nested input models as dicts."""
        return {key: _plain(value) for key, value in values.items() if value is not NOT_GIVEN}

    def submit(self, client: Client, values: Mapping[str, object] | _I) -> RequestHandle:
        return client.submit(self.schema, _inputs(values))

    def run(
        self, client: Client, values: Mapping[str, object] | _I, **options: Unpack[RunOptions]
    ) -> SyncResult:
        return client.run(self.schema, _inputs(values), **options)

    async def submit_async(
        self, client: AsyncClient, values: Mapping[str, object] | _I
    ) -> AsyncRequestHandle:
        return await client.submit(self.schema, _inputs(values))

    async def run_async(
        self, client: AsyncClient, values: Mapping[str, object] | _I, **options: Unpack[RunOptions]
    ) -> AsyncResult:
        return await client.run(self.schema, _inputs(values), **options)


def _plain(value: Any) -> Any:
    """JSON values for what a caller passed: nested input models (a list of ``Lora``, say)
    become the dicts they stand for, at any depth."""
    if isinstance(value, InputModel):
        return value.to_payload()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _inputs(values: Mapping[str, Any] | InputModel) -> Mapping[str, Any] | InputModel:
    if isinstance(values, InputModel):
        return values
    return TypedModel.given(values)
