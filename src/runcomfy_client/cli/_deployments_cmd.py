"""``deployments list|get|create|update|delete|enable|disable``: Serverless deployments."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .._deployments import CREATE_DEFAULTS
from ._app import cli, echo_json
from ._context import client_from
from ._job_output import echo_safe
from ._jobs_cmd import json_option
from ._terminal import terminal_safe

if TYPE_CHECKING:
    from .._deployments import Deployment


@cli.group("deployments")
def deployments_group() -> None:
    """Your Serverless API deployments: ComfyUI workflows running on RunComfy.

    Uses RUNCOMFY_API_KEY (or --api-key-file) and RUNCOMFY_SERVERLESS_BASE_URL (default
    https://api.runcomfy.net).
    """


def _cell(value: object) -> str:
    """A server's string for one line or one column: controls, newlines and tabs escaped."""
    return terminal_safe(str(value)).replace("\n", "\\n").replace("\t", "\\t")


def _show(deployment: Deployment, as_json: bool) -> None:
    if as_json:
        echo_json(deployment.as_dict())
        return
    record = deployment.as_dict()
    payload = record.pop("payload", None)
    readme = record.pop("readme", None)
    record["hardware"] = ", ".join(deployment.hardware)
    width = max(len(k) for k in record)
    for key, value in record.items():
        if value is not None and value != "":
            click.echo(f"{key:<{width}}  {_cell(value)}")
    if payload is not None:
        workflow = payload["workflow_api_json"] or {}
        click.echo(f"{'workflow':<{width}}  {len(workflow)} nodes (workflow_api_json)")
        overrides = payload["overrides"] or {}
        shown = ", ".join(
            _cell(f"{node}.{name}")
            for node, entry in overrides.items()
            for name in (entry.get("inputs", {}) if isinstance(entry, dict) else {})
        )
        click.echo(f"{'overrides':<{width}}  {shown or '(none)'}")
        if payload["object_info_url"]:
            click.echo(f"{'object_info_url':<{width}}  {_cell(payload['object_info_url'])}")
    if readme:
        click.echo("")
        echo_safe(readme.rstrip())  # markdown: its lines kept, controls escaped


payload_option = click.option(
    "--payload", is_flag=True, help="Include the workflow, its default overrides, object_info_url."
)
readme_option = click.option("--readme", is_flag=True, help="Include the deployment's README.")


@deployments_group.command("list")
@click.option("--id", "ids", multiple=True, help="Only this deployment id (repeatable).")
@payload_option
@readme_option
@json_option
@click.pass_context
def list_command(
    ctx: click.Context, ids: tuple[str, ...], payload: bool, readme: bool, as_json: bool
) -> None:
    """List your deployments: id, name, status, hardware, instances, workflow version."""
    with client_from(ctx) as client:
        found = client.deployments.list(ids=list(ids), payload=payload, readme=readme)
    if as_json:
        echo_json([d.as_dict() for d in found])
        return
    if not found:
        click.echo("no deployments", err=True)
        return
    rows = [("id", "name", "status", "enabled", "hardware", "instances", "version")]
    rows += [
        (
            _cell(d.id),
            _cell(d.name),
            _cell(d.status or ""),
            {True: "yes", False: "no", None: ""}[d.is_enabled],
            _cell(", ".join(d.hardware)),
            f"{_count(d.min_instances)}-{_count(d.max_instances)}",
            _cell(d.workflow_version or ""),
        )
        for d in found
    ]
    # Plain columns, never cut: ids are copied from here.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


@deployments_group.command("get")
@click.argument("deployment_id")
@payload_option
@readme_option
@json_option
@click.pass_context
def get_command(
    ctx: click.Context, deployment_id: str, payload: bool, readme: bool, as_json: bool
) -> None:
    """Show one deployment (--payload: its workflow and default overrides too)."""
    with client_from(ctx) as client:
        _show(client.deployments.get(deployment_id, payload=payload, readme=readme), as_json)


_F = TypeVar("_F", bound=Callable[..., Any])
# The settings create and update share: flag, setting, type, help. Defaults are the library's.
_SETTINGS_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--hardware", "hardware", str, "The GPU SKU, e.g. AMPERE_24, AMPERE_48, ADA_80."),
    ("--min-instances", "min_instances", int, "Instances kept warm (billed while idle if > 0)."),
    ("--max-instances", "max_instances", int, "Most instances running at once."),
    ("--queue-size", "queue_size", int, "Queued jobs per instance before another starts."),
    ("--keep-warm", "keep_warm_duration_in_seconds", int, "Seconds an idle instance is kept."),
)


def _settings_options(creating: bool) -> Callable[[_F], _F]:
    """Flags for a deployment's settings: create shows the defaults, update sends only those
    given."""

    def apply(command: _F) -> _F:
        for flag, key, kind, text in reversed(_SETTINGS_FLAGS):
            shown = f" [default: {CREATE_DEFAULTS[key]}]" if creating else ""  # type: ignore[literal-required]
            command = click.option(flag, key, type=kind, help=text + shown)(command)
        return click.option(
            "--workflow-version", required=creating, help="The workflow's version."
        )(command)

    return apply


@deployments_group.command("create")
@click.option("--name", required=True, help="The deployment's name.")
@click.option("--workflow-id", required=True, help="The cloud-saved workflow's id.")
@_settings_options(creating=True)
@json_option
@click.pass_context
def create_command(
    ctx: click.Context,
    /,
    name: str,
    workflow_id: str,
    workflow_version: str,
    as_json: bool,
    **settings: Any,
) -> None:
    """Deploy a cloud-saved workflow version. Never sent twice: if the answer is lost, check
    `deployments list` before creating it again."""
    with client_from(ctx) as client:
        created = client.deployments.create(
            name=name, workflow_id=workflow_id, workflow_version=workflow_version, **settings
        )
    if not as_json:
        click.echo(f"created deployment {_cell(created.id)}", err=True)
    _show(created, as_json)


@deployments_group.command("update")
@click.argument("deployment_id")
@click.option("--name", help="A new name.")
@_settings_options(creating=False)
@json_option
@click.pass_context
def update_command(
    ctx: click.Context, /, deployment_id: str, as_json: bool, **changes: Any
) -> None:
    """Change a deployment's settings (only those given)."""
    if all(value is None for value in changes.values()):
        flags = ", ".join(["--name", "--workflow-version", *(f[0] for f in _SETTINGS_FLAGS)])
        raise click.UsageError(f"nothing to update: give at least one of {flags}")
    with client_from(ctx) as client:
        _show(client.deployments.update(deployment_id, **changes), as_json)


def _switch(ctx: click.Context, deployment_id: str, enabled: bool, as_json: bool) -> None:
    with client_from(ctx) as client:
        changed = client.deployments.update(deployment_id, is_enabled=enabled)
    if not as_json:
        state = "enabled" if enabled else "disabled"
        click.echo(f"{_cell(changed.name)} ({_cell(changed.id)}): {state}")
        return
    _show(changed, as_json)


@deployments_group.command("enable")
@click.argument("deployment_id")
@json_option
@click.pass_context
def enable_command(ctx: click.Context, deployment_id: str, as_json: bool) -> None:
    """Let a deployment take jobs again."""
    _switch(ctx, deployment_id, True, as_json)


@deployments_group.command("disable")
@click.argument("deployment_id")
@json_option
@click.pass_context
def disable_command(ctx: click.Context, deployment_id: str, as_json: bool) -> None:
    """Pause a deployment: new jobs are refused (error 10002) until it is enabled."""
    _switch(ctx, deployment_id, False, as_json)


@deployments_group.command("delete")
@click.argument("deployment_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def delete_command(ctx: click.Context, deployment_id: str, yes: bool, as_json: bool) -> None:
    """Delete a deployment for good (its id then answers 10003)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("pass --yes to delete without a prompt")
        click.confirm(f"delete deployment {deployment_id} for good?", abort=True, err=True)
    with client_from(ctx) as client:
        client.deployments.delete(deployment_id)
    if as_json:
        echo_json({"id": deployment_id, "deleted": True})
    else:
        click.echo(f"deleted deployment {_cell(deployment_id)}")
