"""``schema sync``: keep a schema folder equal to the API's catalog, and say how it drifted.

For each published model the folder gets its input schema, verbatim (the one writer of
``schema add``, :mod:`._schema_store`), and its sidecar (:mod:`._sidecar`): the catalog record
without the schema, plus the output kind. Then:

- a file whose bytes would not change is not written (its mtime is kept), so ``make generate``
  re-renders only the models that changed; every write goes through a temporary name;
- a schema the runtime cannot use (the same check as ``schema add``) is reported with its id
  and the reason, and skipped: nothing of it is written;
- ``check`` writes nothing: the report lists added, changed and removed models (CI's drift
  check);
- models the folder holds that the catalog no longer lists are *removed*: reported, and deleted
  only with ``prune``, only in the target folder, never in the bundled one, never a schema
  derived from a workflow (its sidecar's kind is ``deployment``).

What counts as no longer listed follows the selection: with ``--all`` every local model that
is not listed; with a search, category or kind only the local models that match it (by their
sidecars); with model ids, those the API does not know.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._errors import ConfigurationError, NotFoundError, SchemaError
from ._model_ids import model_id_problem
from ._model_info import ModelInfo, one_line
from ._output_kind import output_rule
from ._registry import model_from_schema
from ._remote_catalog import CatalogPager, CatalogQuery
from ._schema_files import OUTPUT_SUFFIX, bundled_schema_dir, scan
from ._schema_store import schema_text, write_text
from ._sidecar import INFO_SUFFIX, SidecarError, read_sidecar, sidecar_path, sidecar_text

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Selection", "SyncEntry", "SyncReport", "Syncer", "sync_folder"]

Change = Literal["added", "changed", "unchanged", "removed", "unusable"]
CHANGES: tuple[Change, ...] = ("added", "changed", "removed", "unusable", "unchanged")


@dataclass(frozen=True)
class Selection:
    """Which part of the catalog to sync: model ids, or filters, or all of it."""

    model_ids: tuple[str, ...] = ()
    search: str | None = None
    category: str | None = None
    kind: str | None = None
    everything: bool = False

    def __post_init__(self) -> None:
        filters = self.search or self.category or self.kind
        if self.model_ids and (filters or self.everything):
            raise ConfigurationError(
                "give model ids, or filters (search, category, kind), not both"
            )
        if self.everything and filters:
            raise ConfigurationError("--all syncs the whole catalog: drop the filters, or --all")
        if not (self.model_ids or filters or self.everything):
            raise ConfigurationError(
                "say what to sync: model ids, --search TEXT, --category C, --kind K, or --all"
            )

    def owns(self, model_id: str, info: ModelInfo | None) -> bool:
        """Whether a local model falls in this selection, so its absence means it was removed."""
        if self.everything:
            return True
        if self.model_ids:
            return False  # judged one by one: the API says which ids it does not know
        if info is None:
            return False  # no record: nothing says it is in this part of the catalog
        if self.search:
            text = f"{model_id} {info.display_name or ''}".lower()
            if self.search.strip().lower() not in text:
                return False
        if self.category and self.category.strip().lower() not in (
            c.lower() for c in info.categories
        ):
            return False
        return not (self.kind and (info.kind or "").lower() != self.kind.strip().lower())


@dataclass(frozen=True)
class SyncEntry:
    """What happened to one model: its change, the details (or the reason it is unusable), and
    the files written or removed."""

    model_id: str
    change: Change
    details: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        # Details quote the server (field keys, names): one printable line each.
        shown = tuple(one_line(d, 300) or "?" for d in self.details)
        object.__setattr__(self, "details", shown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "change": self.change,
            "details": list(self.details),
            "files": [str(f) for f in self.files],
        }


@dataclass
class SyncReport:
    """Every model's entry, the files written and removed, and unreadable records."""

    folder: Path
    check: bool
    prune: bool
    entries: list[SyncEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, change: Change) -> list[SyncEntry]:
        return [entry for entry in self.entries if entry.change == change]

    @property
    def drifted(self) -> bool:
        """True when the folder differs from the catalog (what ``--check`` fails on)."""
        return any(e.change in ("added", "changed", "removed") for e in self.entries)

    @property
    def written(self) -> list[Path]:
        if self.check:
            return []
        return [f for e in self.entries if e.change in ("added", "changed") for f in e.files]

    @property
    def removed_files(self) -> list[Path]:
        if self.check or not self.prune:
            return []
        return [f for e in self.of("removed") for f in e.files]

    def counts(self) -> dict[str, int]:
        return {change: len(self.of(change)) for change in CHANGES}

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts[c]} {c}" for c in CHANGES if counts[c] or c == "unchanged"]
        text = f"{len(self.entries)} models: " + ", ".join(parts)
        if self.check:
            return f"{text}; nothing written (--check)"
        removed = counts["removed"]
        if removed and not self.prune:
            text += " (kept; --prune deletes them)"
        written = len(self.written)
        files = "file" if written == 1 else "files"
        return f"{text}; {written} {files} written, {len(self.removed_files)} removed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "check": self.check,
            "prune": self.prune,
            "drifted": self.drifted,
            "counts": self.counts(),
            **{change: [e.as_dict() for e in self.of(change)] for change in CHANGES},
            "written": [str(p) for p in self.written],
            "removed_files": [str(p) for p in self.removed_files],
            "problems": list(self.problems),
        }


def _file_problem(model_id: str) -> str | None:
    """Why a published id cannot be stored as ``<folder>/<id>.json``, or None."""
    problem = model_id_problem(model_id)
    if problem is not None:
        return f"the id cannot be a file name: {problem}"
    last = model_id.rsplit("/", 1)[-1]
    for suffix in (INFO_SUFFIX, OUTPUT_SUFFIX):
        if (last + ".json").endswith(suffix):
            return f"its file would end in {suffix}, which schema folders read as another file"
    if any(part.startswith("_") for part in model_id.split("/")):
        return "a segment starts with '_': schema folders skip such files"
    return None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _local_info(model_id: str, schema_file: Path) -> ModelInfo | None:
    try:
        data = read_sidecar(schema_file)
    except SidecarError:
        return None
    return None if data is None else ModelInfo.from_sidecar(data, model_id=model_id)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _schema_changes(old: bytes | None, new: Mapping[str, Any]) -> list[str]:
    """What a person needs to know about a schema that changed: fields added, gone, changed."""
    try:
        before = json.loads(old) if old is not None else None
    except (ValueError, RecursionError):
        before = None
    if not isinstance(before, dict):
        return ["input schema replaced (the local file was not a JSON object)"]
    old_props = _properties(before)
    new_props = _properties(new)
    found = [f"new field {key}" for key in new_props if key not in old_props]
    found += [f"field {key} is gone" for key in old_props if key not in new_props]
    found += [
        f"field {key} changed"
        for key in new_props
        if key in old_props and old_props[key] != new_props[key]
    ]
    if before.get("required") != new.get("required"):
        found.append(f"required {_short(before.get('required'))} -> {_short(new.get('required'))}")
    return found or ["input schema changed (outside its fields)"]


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    found = schema.get("properties")
    return found if isinstance(found, dict) else {}


def _record_changes(old: ModelInfo | None, new: Mapping[str, Any]) -> list[str]:
    if old is None:
        return ["catalog record added (sidecar)"]
    before = old.sidecar()
    found = []
    if (before["base_price_usd"], before["price_unit"]) != (
        new["base_price_usd"],
        new["price_unit"],
    ):
        fresh = ModelInfo.from_sidecar(new, model_id=old.model_id)
        found.append(f"price {old.price_text} -> {fresh.price_text}")
    for name in ("display_name", "categories", "kind", "pricing_note", "output_kind"):
        if before.get(name) != new.get(name):
            words = name.replace("_", " ")
            found.append(f"{words} {_short(before.get(name))} -> {_short(new.get(name))}")
    return found


class Syncer:
    """Compares published records with a folder, and writes (unless ``check``) what differs."""

    def __init__(
        self,
        folder: Path,
        *,
        check: bool = False,
        prune: bool = False,
        output_schema: Mapping[str, Any] | None = None,
    ) -> None:
        if prune and folder.resolve() == bundled_schema_dir().resolve():
            raise ConfigurationError(
                f"refusing to prune {folder}: it is the bundled schema folder; sync into a "
                "folder of your own (--schemas DIR)"
            )
        self.folder = folder
        self.output_schema = output_schema
        self.report = SyncReport(folder, check, prune)
        self.local = dict(scan(folder))
        self.seen: set[str] = set()

    def consider(self, info: ModelInfo) -> SyncEntry:
        """One published model (its record fetched with its input schema)."""
        entry = self._consider(info)
        self.seen.add(info.model_id)
        self.report.entries.append(entry)
        return entry

    def _consider(self, info: ModelInfo) -> SyncEntry:
        model_id = info.model_id
        problem = _file_problem(model_id)
        if problem is None and info.input_schema is None:
            problem = "the catalog gave no input_schema object"
        if problem is not None:
            return SyncEntry(model_id, "unusable", (problem,))
        schema = dict(info.input_schema or {})
        path = self.folder / f"{model_id}.json"
        text = schema_text(schema)
        old = _read(path)
        schema_changed = old != text.encode("utf-8")
        if schema_changed:
            try:  # the check of `schema add`: a schema the runtime cannot use is not written
                model_from_schema(model_id, schema, path=path)
            except SchemaError as exc:
                return SyncEntry(model_id, "unusable", (exc.reason,))
        rule = output_rule(
            model_id, input_schema=schema, output_schema=self.output_schema, record=info.record()
        )
        record = info.sidecar(output_kind=rule.kind)
        side = sidecar_path(path)
        side_text = sidecar_text(record)
        side_changed = _read(side) != side_text.encode("utf-8")
        if not schema_changed and not side_changed:
            return SyncEntry(model_id, "unchanged")
        details: list[str] = []
        if old is not None and schema_changed:
            details += _schema_changes(old, schema)
        if old is not None and side_changed:
            details += _record_changes(_local_info(model_id, path), record)
        files = [path] if schema_changed else []
        files += [side] if side_changed else []
        if not self.report.check:
            for file, content in ((path, text), (side, side_text)):
                if file in files:
                    write_text(file, content)
        return SyncEntry(
            model_id, "added" if old is None else "changed", tuple(details), tuple(files)
        )

    def not_published(self, model_id: str, error: NotFoundError) -> SyncEntry:
        """A model asked for by id that the API does not know (any more)."""
        if model_id in self.local:
            entry = self._removed(model_id, self.local[model_id])
        else:
            entry = SyncEntry(model_id, "unusable", (f"not published: {error}",))
        self.seen.add(model_id)
        self.report.entries.append(entry)
        return entry

    def finish(self, selection: Selection, problems: Iterable[str] = ()) -> SyncReport:
        """The models no longer listed (removed; deleted with ``prune``), and the report."""
        self.report.problems.extend(problems)
        for model_id, path in sorted(self.local.items()):
            if model_id in self.seen:
                continue
            info = _local_info(model_id, path)
            if info is not None and (info.kind == "deployment" or info.deployment is not None):
                continue  # derived from a workflow: not the catalog's to remove
            if selection.owns(model_id, info):
                self.report.entries.append(self._removed(model_id, path))
        return self.report

    def _removed(self, model_id: str, path: Path) -> SyncEntry:
        own_output = path.with_name(path.name[: -len(".json")] + OUTPUT_SUFFIX)
        files = [f for f in (path, sidecar_path(path), own_output) if f.is_file()]
        if self.report.prune and not self.report.check:
            for file in files:
                file.unlink(missing_ok=True)
        return SyncEntry(model_id, "removed", ("no longer published",), tuple(files))


def sync_folder(
    client: Client,
    folder: Path,
    selection: Selection,
    *,
    check: bool = False,
    prune: bool = False,
    output_schema: Mapping[str, Any] | None = None,
    on_entry: Callable[[SyncEntry], None] | None = None,
) -> SyncReport:
    """Sync ``folder`` with the part of ``client``'s catalog that ``selection`` names."""
    syncer = Syncer(folder, check=check, prune=prune, output_schema=output_schema)

    def done(entry: SyncEntry) -> None:
        if on_entry is not None:
            on_entry(entry)

    if selection.model_ids:
        for model_id in dict.fromkeys(m.strip("/") for m in selection.model_ids):
            try:
                info = client.model_info(model_id)
            except NotFoundError as exc:
                done(syncer.not_published(model_id, exc))
            else:
                done(syncer.consider(info))
        return syncer.finish(selection)
    query = CatalogQuery(
        search=selection.search,
        category=selection.category,
        kind=selection.kind,
        include_schema=True,
    )
    pager = CatalogPager(query)
    while (call := pager.next_call()) is not None:
        for info in pager.take(client._send(call)):
            done(syncer.consider(info))
    return syncer.finish(selection, pager.problems)
