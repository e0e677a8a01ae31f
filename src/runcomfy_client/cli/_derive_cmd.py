"""``schema derive``: a model schema for your own ComfyUI workflow (a Serverless deployment)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .. import _errors as e
from .._comfy import MAX_COMFY_FILE_BYTES
from .._derive import DEPLOYMENTS_FOLDER, Derived, binding_path, changes, derive, read_binding
from .._overlay import Overlay, Target, parse_targets
from .._registry import load_json
from ._catalog import schema_group
from ._context import client_from, registry_from
from ._job_output import echo_safe
from ._schema_add_cmd import _target_folder, _write_new, hint_schema_folder


def _targets(values: tuple[str, ...]) -> list[Target] | None:
    if not values:
        return None
    try:
        return parse_targets(",".join(values))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expose") from None


def _load(path: Path) -> Any:
    """A workflow, object_info or overlay file (SchemaError names the file, line and column)."""
    return load_json(path, limit=MAX_COMFY_FILE_BYTES, what="a ComfyUI file")


class _Source:
    """What a schema is derived from: a workflow, its object_info and the deployment's defaults."""

    def __init__(
        self,
        workflow: Any,
        object_info: Any,
        *,
        workflow_file: str,
        object_info_file: str,
        deployment_id: str | None = None,
        default_overrides: Any = None,
        name: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.object_info = object_info
        self.workflow_file = workflow_file
        self.object_info_file = object_info_file
        self.deployment_id = deployment_id
        self.default_overrides = default_overrides if isinstance(default_overrides, dict) else None
        self.name = name


def _from_files(workflow: Path, object_info: Path, deployment_id: str | None) -> _Source:
    return _Source(
        _load(workflow),
        _load(object_info),
        workflow_file=str(workflow),
        object_info_file=str(object_info),
        deployment_id=deployment_id,
    )


@schema_group.command("derive")
@click.argument("deployment_id", required=False)
@click.option(
    "--workflow",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The workflow in API format (workflow_api.json); default: the deployment's.",
)
@click.option(
    "--object-info",
    "object_info",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="ComfyUI's node definitions (object_info.json); default: the deployment's.",
)
@click.option(
    "--expose",
    multiple=True,
    metavar="NODE.INPUT,...",
    help="Inputs to offer, e.g. 6.text,31.seed (repeatable). Default: the deployment's default "
    "overrides, else every value input of the workflow.",
)
@click.option(
    "--overlay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON overlay: rename, retitle, narrow ranges, mark required, hide, fuse width/height.",
)
@click.option("--name", help="Schema name: the model id becomes deployments/NAME.")
@click.option(
    "--schemas",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Schema folder to write into (default: the first user schema folder, else ./schemas).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 listing what changed since the schema was derived.",
)
@click.option("--force", is_flag=True, help="Replace a derived schema that exists.")
@click.pass_context
def schema_derive_command(
    ctx: click.Context,
    deployment_id: str | None,
    workflow: Path | None,
    object_info: Path | None,
    expose: tuple[str, ...],
    overlay: Path | None,
    name: str | None,
    folder: Path | None,
    check: bool,
    force: bool,
) -> None:
    """Derive a schema for a ComfyUI workflow, stored as deployments/NAME.

    From DEPLOYMENT_ID (its workflow, default overrides and object_info, fetched with your API
    key; NAME defaults to the deployment's name), or from local files: --workflow (API format)
    and --object-info. Then `describe deployments/NAME`, typed codegen and validation work on it
    as on any model. Lint warnings are printed; nothing is written when the workflow, the
    exposed inputs or the overlay cannot be used.
    """
    targets = _targets(expose)
    if deployment_id is None and (workflow is None or object_info is None):
        raise click.UsageError("give DEPLOYMENT_ID, or both --workflow and --object-info")
    if workflow is not None and object_info is not None:
        source = _from_files(workflow, object_info, deployment_id)
    else:
        assert deployment_id is not None
        source = _from_deployment(ctx, deployment_id, workflow, object_info)
    name = name or source.name
    if not name:
        raise click.UsageError("--name is required: the schema is stored as deployments/NAME")
    target_dir = _target_folder(ctx, folder)
    path = target_dir / DEPLOYMENTS_FOLDER / f"{name}.json"
    if check:
        _check(ctx, source, name, path, targets, overlay)
        return
    parsed_overlay = Overlay.parse(_load(overlay), file=str(overlay)) if overlay else None
    derived = _derive(source, name, path, targets, parsed_overlay, overlay)
    for warning in derived.warnings:
        echo_safe(f"warning: {warning}", err=True)  # names from the workflow: maybe a server's
    _write_new(path, derived.schema_text(), force)
    _write_new(binding_path(path), derived.binding_text(), True)
    fields = derived.model.fields
    echo_safe(f"derived {derived.model_id}: {path} ({len(fields)} fields)")
    for f in fields:
        flag = " (required)" if f.required else ""
        echo_safe(f"  {f.name} ({f.key}): {f.type_name}{flag}")
    hint_schema_folder(registry_from(ctx), target_dir)


def _derive(
    source: _Source,
    name: str,
    path: Path,
    targets: list[Target] | None,
    overlay: Overlay | None,
    overlay_file: Path | None,
) -> Derived:
    return derive(
        source.workflow,
        source.object_info,
        name=name,
        expose=targets,
        default_overrides=source.default_overrides,
        overlay=overlay,
        deployment_id=source.deployment_id,
        workflow_file=source.workflow_file,
        object_info_file=source.object_info_file,
        overlay_file=str(overlay_file) if overlay_file else None,
        schema_path=path,
    )


def _check(
    ctx: click.Context,
    source: _Source,
    name: str,
    path: Path,
    targets: list[Target] | None,
    overlay_file: Path | None,
) -> None:
    """Derive again as the stored binding says (unless told otherwise) and compare."""
    if not path.is_file():
        click.echo(f"{path} does not exist: derive it first (without --check)", err=True)
        ctx.exit(1)
    stored = load_json(path)
    binding = read_binding(path) or {}
    if targets is None and isinstance(binding.get("expose"), list):
        targets = parse_targets(binding["expose"])
    if overlay_file is not None:
        overlay = Overlay.parse(_load(overlay_file), file=str(overlay_file))
    elif isinstance(binding.get("overlay"), dict):
        overlay = Overlay.parse(binding["overlay"], file=f"{binding_path(path)} (overlay)")
    else:
        overlay = None
    if source.default_overrides is None and isinstance(binding.get("default_overrides"), dict):
        source.default_overrides = binding["default_overrides"]
    if source.deployment_id is None and isinstance(binding.get("deployment_id"), str):
        source.deployment_id = binding["deployment_id"]
    try:
        fresh = _derive(source, name, path, targets, overlay, overlay_file)
        found = changes(stored if isinstance(stored, dict) else {}, binding, fresh)
    except e.SchemaError as exc:
        found = [f"it can no longer be derived: {exc.reason}"]
    if not found:
        click.echo(f"{path}: up to date with {source.workflow_file}")
        return
    for line in found:
        echo_safe(f"changed: {line}", err=True)
    click.echo(
        f"{path} is out of date ({len(found)} changes); derive it again with --force",
        err=True,
    )
    ctx.exit(1)


def _from_deployment(
    ctx: click.Context, deployment_id: str, workflow: Path | None, object_info: Path | None
) -> _Source:
    """The deployment's payload and object_info (a local file given for either is used)."""
    with client_from(ctx) as client:
        deployment = client.deployments.get(deployment_id, payload=True)
        payload = deployment.payload
        flow: Any = (
            _load(workflow) if workflow else (payload.workflow_api_json if payload else None)
        )
        if flow is None:
            raise e.ResponseDecodeError(
                f"deployment {deployment_id} came without its workflow_api_json; give --workflow"
            )
        info = _load(object_info) if object_info else client.deployments.object_info(deployment)
    where = f"deployment {deployment.name} ({deployment.id})"
    return _Source(
        flow,
        info,
        workflow_file=str(workflow) if workflow else f"{where}: workflow_api_json",
        object_info_file=str(object_info) if object_info else f"{where}: object_info",
        deployment_id=deployment.id,
        default_overrides=payload.overrides if payload else None,
        name=_schema_name(deployment.name) or None,
    )


def _schema_name(name: str) -> str:
    """A deployment's name as one model-id segment: ``My Flow v2`` -> ``My-Flow-v2``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
