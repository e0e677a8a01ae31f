"""A model's catalog record, typed: what ``client.catalog()`` yields and a sidecar holds.

The API's ``GET /v1/models`` answers records with ``model_id``, ``display_name``,
``categories`` (the last names the output: image, video, audio), ``kind``, ``base_price_usd``,
``price_unit`` (``output``, ``second``, ...), ``pricing_note``, and ``input_schema`` when asked.
Records come from outside: every field is checked for its type, text is kept to one printable
line of bounded length, and a price must be a finite, non-negative number; anything else reads
as unknown (None), never as a wrong value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ResponseDecodeError
from ._model_ids import model_id_problem
from ._sidecar import RECORD_FIELDS

__all__ = ["ModelInfo", "Price", "one_line", "price_unit_of"]

_MAX_TEXT = 500
_MAX_CATEGORIES = 20
_OUTPUT_KINDS = ("image", "video", "audio")

# The spellings of a price per job's output and per second of output, as catalogs write them.
_PER_OUTPUT = frozenset(
    ("output", "outputs", "image", "images", "video", "videos", "clip", "generation", "request")
)
_PER_SECOND = frozenset(("second", "seconds", "sec", "s"))


def price_unit_of(unit: str | None) -> str | None:
    """``output`` or ``second`` for a unit this client can estimate with, else None."""
    word = (unit or "").strip().lower()
    if word in _PER_OUTPUT:
        return "output"
    if word in _PER_SECOND:
        return "second"
    return None


def one_line(value: Any, limit: int = _MAX_TEXT) -> str | None:
    """Server text as one printable line (controls become ``?``), at most ``limit`` chars."""
    if not isinstance(value, str):
        return None
    text = "".join(c if c.isprintable() else "?" for c in " ".join(value.split()))
    return text[:limit] if text else None


def _usd(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number < 1e9 else None


def _categories(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found = [text for text in (one_line(v, 100) for v in value[:_MAX_CATEGORIES]) if text]
    return tuple(found)


@dataclass(frozen=True)
class Price:
    """A model's published price: ``usd`` per ``unit`` (``output``, ``second``, ...)."""

    usd: float
    unit: str
    note: str | None = None

    @property
    def per(self) -> str | None:
        """``output`` or ``second`` when the unit is one the client estimates with."""
        return price_unit_of(self.unit)

    def __str__(self) -> str:
        return f"{_money(self.usd)} per {self.unit}"


def _money(usd: float) -> str:
    """``$0.05``, ``$1.20``, ``$0.0035``: cents always, more digits only when they count."""
    text = f"{usd:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


@dataclass(frozen=True)
class ModelInfo:
    """One model of the catalog: its record, and its input schema when it was asked for."""

    model_id: str
    display_name: str | None = None
    categories: tuple[str, ...] = ()
    kind: str | None = None
    base_price_usd: float | None = None
    price_unit: str | None = None
    pricing_note: str | None = None
    output_kind: str | None = None
    """``image``, ``video`` or ``audio``: from a sidecar, else the record's last category."""
    input_schema: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    deployment: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """For a schema derived from a workflow: its deployment binding (see ``_derive``)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def price(self) -> Price | None:
        """The published price, or None when the record gives none (or an unusable one)."""
        if self.base_price_usd is None or not self.price_unit:
            return None
        return Price(self.base_price_usd, self.price_unit, self.pricing_note)

    @property
    def price_text(self) -> str:
        """``$0.05 per output``, or ``unknown``."""
        price = self.price
        return str(price) if price is not None else "unknown"

    def price_line(self) -> str:
        """The price with its note: ``$0.10 per second (720p; audio extra)``."""
        note = f" ({self.pricing_note})" if self.pricing_note and self.price else ""
        return self.price_text + note

    @classmethod
    def from_record(cls, body: Any, *, source: str = "the catalog") -> ModelInfo:
        """A record from the API; ResponseDecodeError when it has no usable model id.

        ``input_schema`` is kept as the API sent it (an object, or a JSON text of one).
        """
        if not isinstance(body, Mapping):
            raise ResponseDecodeError(
                f"{source} holds a model record that is a {type(body).__name__}, not an object"
            )
        model_id = body.get("model_id")
        if not isinstance(model_id, str) or model_id_problem(model_id.strip("/")) is not None:
            shown = json.dumps(model_id, ensure_ascii=True, default=str)[:80]
            raise ResponseDecodeError(f"{source} holds a record without a usable model_id: {shown}")
        schema = body.get("input_schema")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except (ValueError, RecursionError):
                schema = None
        return cls._build(
            model_id.strip("/"),
            body,
            output_kind=None,
            input_schema=schema if isinstance(schema, Mapping) else None,
        )

    @classmethod
    def from_sidecar(cls, data: Mapping[str, Any], *, model_id: str) -> ModelInfo:
        """A sidecar's content, for the model in the file beside it (whose id wins)."""
        kind = data.get("output_kind")
        deployment = data.get("deployment")
        return cls._build(
            model_id,
            data,
            output_kind=kind if kind in _OUTPUT_KINDS else None,
            deployment=deployment if isinstance(deployment, Mapping) else None,
        )

    @classmethod
    def _build(
        cls,
        model_id: str,
        data: Mapping[str, Any],
        *,
        output_kind: str | None,
        input_schema: Mapping[str, Any] | None = None,
        deployment: Mapping[str, Any] | None = None,
    ) -> ModelInfo:
        categories = _categories(data.get("categories"))
        if output_kind is None and categories and categories[-1].lower() in _OUTPUT_KINDS:
            output_kind = categories[-1].lower()
        return cls(
            model_id=model_id,
            display_name=one_line(data.get("display_name"), 200),
            categories=categories,
            kind=one_line(data.get("kind"), 40),
            base_price_usd=_usd(data.get("base_price_usd")),
            price_unit=one_line(data.get("price_unit"), 40),
            pricing_note=one_line(data.get("pricing_note")),
            output_kind=output_kind,
            input_schema=input_schema,
            deployment=deployment,
            raw={k: v for k, v in data.items() if k != "input_schema"},
        )

    def record(self) -> dict[str, Any]:
        """The catalog record's fields (no schema), as read and checked."""
        return {
            "model_id": self.model_id,
            "display_name": self.display_name,
            "categories": list(self.categories),
            "kind": self.kind,
            "base_price_usd": self.base_price_usd,
            "price_unit": self.price_unit,
            "pricing_note": self.pricing_note,
        }

    def sidecar(self, output_kind: str | None = None) -> dict[str, Any]:
        """What the model's sidecar holds: the record without its schema, the output kind
        (``output_kind`` given here wins), and a derived schema's deployment."""
        data = self.record()
        assert tuple(data) == RECORD_FIELDS
        data["output_kind"] = output_kind or self.output_kind
        if self.deployment is not None:
            data["deployment"] = dict(self.deployment)
        return data

    def as_dict(self) -> dict[str, Any]:
        """The record as the CLI's ``--json`` prints it (``price``: the words for it)."""
        return {**self.record(), "output_kind": self.output_kind, "price": self.price_text}
