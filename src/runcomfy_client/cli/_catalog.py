"""Commands that describe what the registry knows: ``models``, ``describe``, ``schema check``."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .._dialect import describe_count, describe_range, show_value
from .._registry import MISSING, Field, ModelSchema
from ._app import cli, echo_json
from ._context import registry_from
from ._job_output import echo_safe


def _one_line(model: ModelSchema) -> str:
    # Published schemas are all titled "Input": that says nothing, so only a real description.
    text = model.description or ""
    return text.strip().splitlines()[0] if text.strip() else ""


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--remote",
    is_flag=True,
    help="List the API's catalog instead (id, name, categories, price, local copy).",
)
@click.option("--search", metavar="TEXT", help="With --remote: models whose id or name has TEXT.")
@click.option("--category", metavar="C", help="With --remote: models in category C.")
@click.option("--kind", metavar="K", help="With --remote: models of kind K (e.g. model).")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="With --remote: N at most.")
@click.pass_context
def models_command(
    ctx: click.Context,
    as_json: bool,
    remote: bool,
    search: str | None,
    category: str | None,
    kind: str | None,
    limit: int | None,
) -> None:
    """List the models whose schemas are known, with their required inputs.

    With --remote, list the API's catalog (every page), with each model's price and whether a
    local schema exists and matches the published one.
    """
    if remote:
        from ._remote_models_cmd import remote_models

        remote_models(
            ctx, search=search, category=category, kind=kind, limit=limit, as_json=as_json
        )
        return
    if search or category or kind or limit is not None:
        raise click.UsageError("--search, --category, --kind and --limit go with --remote")
    registry = registry_from(ctx)
    rows: list[dict[str, Any]] = []  # one JSON object per model
    for model_id in registry.model_ids():
        model = registry.get(model_id)
        rows.append(
            {
                "model_id": model_id,
                "description": _one_line(model),
                "required": [f.name for f in model.required],
                "source": str(model.path) if model.path else None,
                "bundled": model.bundled,
            }
        )
    if as_json:
        echo_json(rows)
        return
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("model id", no_wrap=True)
    table.add_column("required inputs")
    described = any(row["description"] for row in rows)
    if described:
        table.add_column("description")
    for row in rows:
        cells = [row["model_id"], ", ".join(row["required"])]
        table.add_row(*cells, *([row["description"]] if described else []))
    Console(soft_wrap=False).print(table)


def _validations(f: Field) -> list[dict[str, Any]]:
    """Every published rule, and whether the client checks it on local files."""
    found = f.schema.get("validations")
    checked = {(r.rule, r.value) for r in f.validations}
    rules = []
    for entry in found if isinstance(found, list) else []:
        if isinstance(entry, dict):
            rule, value = entry.get("validation_rule"), entry.get("validation_value")
            rules.append(
                {
                    "rule": rule,
                    "value": value,
                    "error": entry.get("validation_error"),
                    "checked": (rule, value) in checked,
                }
            )
    return rules


def field_record(f: Field) -> dict[str, Any]:
    """A field as ``describe --json`` prints it.

    ``default`` is null both for "no default" and for a published ``"default": null``:
    ``has_default`` tells them apart. ``media`` is the kind of file (for a list, of each
    element), ``media_rule`` the dialect rule that decided it (``x-media``, ``format``, ``name``).
    """
    return {
        "python_name": f.name,
        "wire_key": f.key,
        "type": f.type_name,
        "required": f.required,
        "default": None if f.default is MISSING else f.default,
        "has_default": f.has_default,
        "enum": list(f.enum) if f.enum is not None else None,
        "minimum": f.minimum,
        "maximum": f.maximum,
        "description": f.description or f.title,
        "media": f.media,
        "media_array": f.media_array,
        "media_rule": f.media_rule,
        "items": f.items,
        "min_items": f.min_items,
        "max_items": f.max_items,
        "validations": _validations(f),
    }


_RULE_WORDS = {"x-media": "x-media", "format": "format", "name": "name, as no format marks it"}


def _media_line(f: Field) -> str:
    if not f.media:
        return ""
    many = describe_count(f.min_items, f.max_items)
    what = (
        f"a list of {many + ' ' if many else ''}{f.media} URLs"
        if f.media_array
        else f"{f.media} URL"
    )
    return f", {what} (media by {_RULE_WORDS.get(f.media_rule or '', f.media_rule)})"


def _items_text(items: Any) -> str:
    """An array's element schema in one line: an object's fields with their types."""
    props = items.get("properties") if isinstance(items, dict) else None
    if isinstance(props, dict):
        fields = ", ".join(
            f"{name}: {sub.get('type', 'any') if isinstance(sub, dict) else 'any'}"
            for name, sub in props.items()
        )
        return "{" + fields + "}"
    kind = items.get("type") if isinstance(items, dict) else None
    return str(kind or "any")


@cli.command("describe")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of fields.")
@click.pass_context
def describe_command(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """Show every field of MODEL_ID: name, wire key, type, range or choices, server default."""
    model = registry_from(ctx).get(model_id)
    if as_json:
        echo_json([field_record(f) for f in model.fields])
        return
    echo_safe(f"{model.model_id}  ({model.path})")
    _record_lines(model)
    made = model.output()
    echo_safe(f"makes: {made.kind}, answered as {made.key!r} ({made.reason})")
    for heading, group in (("required", True), ("optional", False)):
        chosen = [f for f in model.fields if f.required == group]
        if not chosen:
            continue
        echo_safe(f"\n{heading}:")
        for f in chosen:
            echo_safe(f"  {f.name} ({f.key}): {f.type_name}{_media_line(f)}")
            if f.enum is not None:
                echo_safe("      one of: " + ", ".join(show_value(v) for v in f.enum))
            elif describe_range(f.schema):
                echo_safe(f"      allowed: {describe_range(f.schema)}")
            if f.items is not None and not f.media:
                echo_safe(f"      each item: {_items_text(f.items)}")
            if (f.min_items is not None or f.max_items is not None) and not f.media:
                echo_safe(f"      items: {describe_count(f.min_items, f.max_items)}")
            for rule in _validations(f):
                note = "" if rule["checked"] else " (not checked by the client)"
                shown = f"{rule['rule']} {show_value(rule['value'])}"
                error = f": {rule['error']}" if rule["error"] else ""
                echo_safe(f"      rule {shown}{error}{note}")
            if f.description:
                echo_safe(f"      {f.description}")
            if f.default is not MISSING:
                echo_safe(f"      server default: {show_value(f.default, 60)}")
    if model.warnings:
        echo_safe("\nlint warnings:")
        for warning in model.warnings:
            echo_safe(f"  {warning.key or '-'}: {warning.message}")


def _record_lines(model: ModelSchema) -> None:
    """The catalog record of the model's sidecar: name, categories, price; or how to get it."""
    info = model.info
    if info is None:
        echo_safe("price: unknown (no catalog record; `schema sync` fetches it)")
        return
    if info.display_name:
        echo_safe(f"name: {info.display_name}")
    if info.categories:
        echo_safe(f"categories: {', '.join(info.categories)}")
    if info.deployment is not None:
        deployment = info.deployment.get("deployment_id") or "none yet"
        echo_safe(f"deployment: {deployment} (schema derived from its workflow)")
    else:
        echo_safe(f"price: {info.price_line()}")


@cli.group("schema")
def schema_group() -> None:
    """Check and add model schemas."""


@schema_group.command("check")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--strict", is_flag=True, help="Fail on lint warnings too.")
@click.pass_context
def schema_check_command(ctx: click.Context, folders: tuple[str, ...], strict: bool) -> None:
    """Load every schema in FOLDERS (default: all known), print lint warnings, fail on errors."""
    from .. import _errors as e
    from .._registry import Registry

    registry = (
        Registry(folders, use_env=False, include_bundled=False) if folders else registry_from(ctx)
    )
    failures = 0
    warnings = 0
    ids = registry.model_ids()
    for model_id in ids:
        try:
            model = registry.get(model_id)
        except e.SchemaError as exc:
            failures += 1
            echo_safe(f"error: {exc}", err=True)
            continue
        for warning in model.warnings:
            warnings += 1
            echo_safe(f"warning: {warning}", err=True)
    echo_safe(f"{len(ids)} schemas checked: {failures} invalid, {warnings} lint warnings")
    if failures or (strict and warnings):
        ctx.exit(1)
