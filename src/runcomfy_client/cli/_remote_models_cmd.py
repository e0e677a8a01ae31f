"""The API's catalog on the command line: ``models --remote`` and ``categories``."""

from __future__ import annotations

from typing import Any

import click

from .._model_info import ModelInfo
from .._registry import Registry
from ._app import cli, echo_json
from ._context import client_from, registry_from


def local_state(registry: Registry, info: ModelInfo) -> tuple[str | None, str | None]:
    """``(state, file)``: whether a local schema exists for the model and matches the
    published one (``same``, ``differs``), or ``(None, None)`` when there is none."""
    if info.model_id not in registry:
        return None, None
    source = registry.source(info.model_id)
    try:
        local = registry.get(info.model_id).raw
    except Exception:  # noqa: BLE001 - a broken local file simply does not match
        return "differs", str(source)
    if info.input_schema is None:
        return "exists", str(source)
    return ("same" if dict(local) == dict(info.input_schema) else "differs"), str(source)


def remote_models(
    ctx: click.Context,
    *,
    search: str | None,
    category: str | None,
    kind: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List the API's catalog, page by page, with each model's price and local copy."""
    registry: Registry = registry_from(ctx)
    rows: list[dict[str, Any]] = []
    with client_from(ctx) as client:
        for info in client.catalog(
            search=search, category=category, kind=kind, include_schema=True, limit=limit
        ):
            state, source = local_state(registry, info)
            rows.append({**info.as_dict(), "local": state, "local_file": source})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no published model matches", err=True)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("model id", "name", "categories", "price", "local"):
        table.add_column(column, no_wrap=column == "model id")
    for row in rows:
        cells = (
            row["model_id"],
            row["display_name"] or "",
            ", ".join(row["categories"]),
            row["price"],
            row["local"] or "-",
        )
        table.add_row(*(Text(cell) for cell in cells))  # server text: never rich markup
    console = Console(soft_wrap=False)
    if not console.is_terminal:  # piped: one line per model, never folded at 80 columns
        console = Console(soft_wrap=False, width=240)
    console.print(table)
    differing = sum(1 for row in rows if row["local"] == "differs")
    missing = sum(1 for row in rows if row["local"] is None)
    click.echo(
        f"{len(rows)} models; {missing} not local, {differing} differ from the local schema "
        "(`runcomfy-client schema sync` fetches them)",
        err=True,
    )


@cli.command("categories")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def categories_command(ctx: click.Context, as_json: bool) -> None:
    """List the catalog's categories (for `models --remote --category C`)."""
    with client_from(ctx) as client:
        names = client.categories()
    if as_json:
        echo_json(names)
        return
    for name in names:
        click.echo(name)
