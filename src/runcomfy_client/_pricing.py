"""What a job will cost, estimated before it is submitted, from the model's published price.

The price comes from the model's sidecar (``schema sync`` fetched it): ``base_price_usd`` per
``price_unit``. Two units can be estimated:

- **per output** (``output``, ``image``, ``video`` ...): the price times the outputs the job asks
  for (a ``num_images``-like field, else its default, else one);
- **per second**: the price times the job's ``duration`` in seconds (the value sent, else the
  schema's default). A duration that is not a number (``"auto"``) counts as the longest the
  field allows, so an estimate never falls short of what the job can cost.

Anything else (no sidecar, no price, another unit, no duration to go by) cannot be estimated:
:class:`CostUnknownError` says which model and why. The estimate is the published list price; the
API's reported ``cost`` (``Result.cost``) is what was actually charged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._registry import Field, ModelSchema

__all__ = ["CostUnknownError", "Estimate", "estimate"]

# Readable field names that ask for several outputs, or give a clip's length in seconds.
_COUNT_FIELDS = frozenset(
    ("num_images", "number_of_images", "num_outputs", "num_videos", "batch_size", "image_count")
)
_DURATION_FIELDS = frozenset(("duration", "duration_seconds", "video_duration", "seconds"))
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*$", re.IGNORECASE)
_MAX_COUNT = 1000


class CostUnknownError(ValueError):
    """A job's cost cannot be estimated; the message names the model and says why."""


@dataclass(frozen=True)
class Estimate:
    """A job's estimated cost in USD and how it was reached (``$0.10 per second x 5 s``)."""

    usd: float
    how: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str):
        found = _SECONDS.match(value)
        return float(found.group(1)) if found else None
    return None


def _value(field: Field, payload: Mapping[str, Any]) -> Any:
    if field.key in payload:
        return payload[field.key]
    return field.default if field.has_default else None


def _find(model: ModelSchema, names: frozenset[str]) -> Field | None:
    return next((f for f in model.fields if f.name in names), None)


def _longest(field: Field) -> float | None:
    """The most a field allows, for a value that is not a number (``auto``)."""
    choices = [n for n in (_number(v) for v in field.enum or ()) if n is not None]
    if choices:
        return max(choices)
    return field.maximum


def estimate(model: ModelSchema, payload: Mapping[str, Any]) -> Estimate:
    """The estimated cost of one job of ``model`` with ``payload`` (by wire key)."""
    info = model.info
    price = info.price if info is not None else None
    if price is None:
        why = "its sidecar gives no price" if info else "it has no catalog record (sidecar)"
        raise CostUnknownError(
            f"{model.model_id} has no known price ({why}); fetch it with `runcomfy-client "
            f"schema sync {model.model_id}`"
        )
    per = price.per
    if per == "output":
        field = _find(model, _COUNT_FIELDS)
        count = _number(_value(field, payload)) if field is not None else None
        outputs = int(min(max(count or 1, 1), _MAX_COUNT))
        noun = "output" if outputs == 1 else "outputs"
        return Estimate(price.usd * outputs, f"{price} x {outputs} {noun}")
    if per == "second":
        field = _find(model, _DURATION_FIELDS)
        if field is None:
            raise CostUnknownError(
                f"{model.model_id} is priced per second but has no duration field to go by"
            )
        value = _value(field, payload)
        seconds = _number(value)
        bound = ""
        if seconds is None:
            seconds = _longest(field)
            bound = "up to "
        if seconds is None:
            raise CostUnknownError(
                f"{model.model_id} is priced per second and its duration ({field.label}: "
                f"{value!r}) gives no number of seconds; set {field.name}"
            )
        return Estimate(price.usd * seconds, f"{price} x {bound}{seconds:g} s")
    raise CostUnknownError(
        f"{model.model_id} is priced per {price.unit!r}, which the client cannot estimate "
        "(it knows per output and per second)"
    )
