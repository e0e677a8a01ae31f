"""Where model schemas live on disk: the one layout the client's registry and the emulator read.

Standard library only and free of any reading of the schemas themselves, so the emulator (an
independent reading of the API) hosts exactly the folders the client reads:

- Folders are searched in order: the caller's, then ``RUNCOMFY_SCHEMA_PATH`` (path-separated),
  then the bundled folder; the first file for an id wins.
- A model's id is its file's path below the folder, without ``.json``. Files and folders whose
  name starts with ``_`` or ``.`` are never models.
- ``<id>.output.json`` beside a model's file is its Output schema; ``_output.json`` at a
  folder's root is the default for the models that have none. ``<id>.info.json`` beside a
  model's file is its sidecar: its catalog record, or the deployment a derived schema calls
  (see ``_sidecar``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ._sidecar import INFO_SUFFIX

__all__ = [
    "FOLDER_OUTPUT_NAME",
    "INFO_SUFFIX",
    "OUTPUT_SUFFIX",
    "SCHEMA_PATH_ENV",
    "bundled_schema_dir",
    "env_schema_dirs",
    "folder_output_file",
    "output_file",
    "scan",
]

SCHEMA_PATH_ENV = "RUNCOMFY_SCHEMA_PATH"
OUTPUT_SUFFIX = ".output.json"
FOLDER_OUTPUT_NAME = "_output.json"


def bundled_schema_dir() -> Path:
    """The schema folder that ships with the package."""
    here = Path(__file__).resolve().parent
    packaged = here / "schemas"
    if packaged.is_dir():
        return packaged
    # A source checkout (editable install): the repository's schemas/ is the bundled folder.
    return here.parent.parent / "schemas"


def env_schema_dirs() -> list[Path]:
    """The folders named by ``RUNCOMFY_SCHEMA_PATH`` (path-separated; empty parts ignored)."""
    value = os.environ.get(SCHEMA_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def scan(folder: Path) -> list[tuple[str, Path]]:
    """``(model id, file)`` for every model schema in ``folder``, sorted by path."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*.json")):
        rel = path.relative_to(folder)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if path.name.endswith((OUTPUT_SUFFIX, INFO_SUFFIX)) or not path.is_file():
            continue
        found.append((rel.with_suffix("").as_posix(), path))
    return found


def output_file(model_file: Path, folders: Iterable[Path]) -> Path | None:
    """The Output schema file of the model in ``model_file``: its own ``<id>.output.json``,
    else the first ``_output.json`` at the root of ``folders``; None when there is neither."""
    own = model_file.with_name(model_file.name[: -len(".json")] + OUTPUT_SUFFIX)
    return own if own.is_file() else folder_output_file(folders)


def folder_output_file(folders: Iterable[Path]) -> Path | None:
    """The first ``_output.json`` at the root of ``folders``, or None."""
    for folder in folders:
        shared = folder / FOLDER_OUTPUT_NAME
        if shared.is_file():
            return shared
    return None
