"""A model's sidecar: what is known of a model besides its input schema, in one file beside it.

``<id>.info.json`` sits beside ``<id>.json``. It is one JSON object, written by the client and
read by everything that wants more than the schema:

- the catalog record without its input schema, as ``schema sync`` fetched it: ``model_id``,
  ``display_name``, ``categories``, ``kind``, ``base_price_usd``, ``price_unit``,
  ``pricing_note``; and ``output_kind`` (image, video or audio: what the model makes);
- for a schema derived from a ComfyUI workflow (``schema derive``), ``kind: "deployment"`` and a
  ``deployment`` object: the deployment id, what the schema was derived from and how.

The registry (``ModelSchema.info``), ``describe``, codegen docstrings, ``schema derive --check``
and the emulator's catalog all read it through :func:`read_sidecar`. Standard library only, so
the emulator (which shares no schema reading with the client) reads the same files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "INFO_SUFFIX",
    "MAX_SIDECAR_BYTES",
    "RECORD_FIELDS",
    "SidecarError",
    "read_sidecar",
    "sidecar_path",
    "sidecar_text",
]

INFO_SUFFIX = ".info.json"
# A catalog record's fields that a sidecar keeps, in the order they are written.
RECORD_FIELDS = (
    "model_id",
    "display_name",
    "categories",
    "kind",
    "base_price_usd",
    "price_unit",
    "pricing_note",
)
MAX_SIDECAR_BYTES = 1024 * 1024
"""A sidecar is a few hundred bytes; a bigger file is refused unread."""


class SidecarError(ValueError):
    """A sidecar that cannot be read: names the file and says why."""

    def __init__(self, file: Path, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


def sidecar_path(schema_file: Path) -> Path:
    """``.../<name>.json`` -> ``.../<name>.info.json``."""
    name = schema_file.name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return schema_file.with_name(stem + INFO_SUFFIX)


def read_sidecar(schema_file: Path) -> dict[str, Any] | None:
    """The sidecar of the model in ``schema_file`` as a JSON object; None when there is none.

    Raises :class:`SidecarError` for a file that is too big, not UTF-8 JSON, or not an object.
    """
    path = sidecar_path(schema_file)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SidecarError(path, f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(path, f"larger than {MAX_SIDECAR_BYTES // 1024} KiB; refused unread")
    try:
        found = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SidecarError(path, f"not UTF-8 text ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise SidecarError(path, f"not valid JSON ({exc})") from None
    if not isinstance(found, dict):
        raise SidecarError(path, f"a sidecar is a JSON object, not {type(found).__name__}")
    return found


def sidecar_text(data: Mapping[str, Any]) -> str:
    """The sidecar's file content: the same data always gives the same bytes."""
    return json.dumps(dict(data), indent=2, ensure_ascii=False) + "\n"
