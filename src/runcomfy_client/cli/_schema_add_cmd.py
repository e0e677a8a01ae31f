"""``schema add``: put a model's published schema into a schema folder, checked first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .. import _errors as e
from .._model_ids import MODEL_ID_PATTERN, model_id_problem
from .._pages import MAX_PAGE_BYTES, parse_api_page
from .._registry import OUTPUT_SUFFIX, Registry, load_json, model_from_schema
from .._schema_store import input_schema_of, schema_text, write_text
from ._catalog import schema_group
from ._context import client_from, registry_from
from ._job_output import echo_safe


def _target_folder(ctx: click.Context, folder: Path | None) -> Path:
    """``--schemas`` here, else the user's first schema folder, else ``./schemas``."""
    if folder is not None:
        return folder
    registry: Registry = registry_from(ctx)
    return registry.user_dirs[0] if registry.user_dirs else Path("schemas")


class _Exists(click.ClickException):
    exit_code = 2  # a usage problem: nothing was written


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise _Exists(f"{path} exists; pass --force to replace it")


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write through a temporary name so a failure never leaves half a schema behind."""
    _refuse_overwrite(path, force)
    write_text(path, text if text.endswith("\n") else text + "\n")


def _from_remote(ctx: click.Context, model_id: str) -> tuple[Any, str, Any]:
    with client_from(ctx) as client:
        body = client.fetch_model(model_id)
    schema = input_schema_of(body, model_id)
    return schema, schema_text(schema), body.get("output_schema")


def _read_page(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_PAGE_BYTES + 1)
    except OSError as exc:
        raise e.SchemaError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if len(data) > MAX_PAGE_BYTES:
        raise e.SchemaError(
            f"larger than {MAX_PAGE_BYTES // (1024 * 1024)} MiB; not a saved API page",
            file=str(path),
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise e.SchemaError(f"not UTF-8 text ({exc.reason})", file=str(path)) from None


@schema_group.command("add")
@click.argument("model_id", required=False)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON file holding the model's input schema.",
)
@click.option(
    "--from-page",
    "from_page",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A RunComfy API page saved as text: its model id and Input schema are read from it.",
)
@click.option("--remote", is_flag=True, help="Fetch the schema from the API (needs the API key).")
@click.option(
    "--schemas",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into (default: the first user schema folder, else ./schemas).",
)
@click.option("--force", is_flag=True, help="Replace a schema file that exists.")
@click.pass_context
def schema_add_command(
    ctx: click.Context,
    model_id: str | None,
    from_file: Path | None,
    from_page: Path | None,
    remote: bool,
    folder: Path | None,
    force: bool,
) -> None:
    """Add MODEL_ID's schema (verbatim) to a schema folder, after checking it.

    Exactly one source: --from-file, --from-page (MODEL_ID may then be left out) or --remote.
    Lint warnings are printed; a schema the runtime cannot use is refused and nothing is written.
    """
    sources = [s for s in (from_file, from_page, remote or None) if s]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --from-file, --from-page or --remote")
    output: Any = None
    output_text: str | None = None
    if from_page is not None:
        page = parse_api_page(_read_page(from_page), source=str(from_page))
        if model_id is not None and model_id.strip("/") != page.model_id:
            raise click.UsageError(f"{from_page} is the page of {page.model_id}, not {model_id}")
        model_id = page.model_id
        raw, text = page.input_schema, page.input_text
        output, output_text = page.output_schema, page.output_text
    if model_id is None:
        raise click.UsageError("MODEL_ID is required with --from-file and --remote")
    model_id = model_id.strip("/")
    problem = model_id_problem(model_id)
    if problem is not None:
        shown = model_id if len(model_id) <= 60 else model_id[:57] + "..."
        raise click.BadParameter(
            f"{shown!r} is not a model id: {problem} (a model id is {MODEL_ID_PATTERN})"
        )
    if from_file is not None:
        raw = load_json(from_file)  # size and parse limits: SchemaError naming the file
        text = from_file.read_text(encoding="utf-8")
    elif remote:
        raw, text, output = _from_remote(ctx, model_id)

    target_dir = _target_folder(ctx, folder)
    target = target_dir / f"{model_id}.json"
    _refuse_overwrite(target, force)
    model = model_from_schema(model_id, raw, path=target)  # SchemaError: nothing is written
    known: Registry = registry_from(ctx)
    earlier = known.source(model_id) if model_id in known else None
    for warning in model.warnings:
        echo_safe(f"warning: {warning}", err=True)
    _write_new(target, text, force)
    echo_safe(f"added {model_id}: {target} ({len(model.fields)} fields)")
    _write_output_schema(known, target_dir, target, output, output_text, force)
    if earlier is not None and earlier.resolve() != target.resolve():
        echo_safe(f"note: {model_id} was also found at {earlier}", err=True)
    hint_schema_folder(known, target_dir)


def hint_schema_folder(registry: Registry, folder: Path) -> None:
    """Say how to use a folder the command's registry does not search."""
    if folder.resolve() not in {d.resolve() for d in registry.user_dirs}:
        echo_safe(f"use it with: --schemas {folder} (or RUNCOMFY_SCHEMA_PATH={folder})", err=True)


def _write_output_schema(
    registry: Registry,
    target_dir: Path,
    target: Path,
    output: Any,
    text: str | None,
    force: bool,
) -> None:
    """Keep a page's Output schema only when it names other outputs than the folder's default."""
    if not isinstance(output, dict) or not isinstance(output.get("properties"), dict):
        return
    default = registry.shared_output_schema(target_dir)
    if set(output["properties"]) == set(default.get("properties", {})):
        return
    path = target.with_name(target.name[: -len(".json")] + OUTPUT_SUFFIX)
    _write_new(path, text or json.dumps(output, indent=2, ensure_ascii=False), force)
    echo_safe(f"added its output schema: {path}")
