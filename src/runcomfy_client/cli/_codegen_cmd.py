"""``runcomfy-client codegen``: typed wrappers for a folder of schemas (the ``codegen`` extra)."""

from __future__ import annotations

from pathlib import Path

import click

from ._app import cli


def _package_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from runcomfy_codegen import check_package_name

    try:
        return check_package_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("codegen")
@click.option(
    "--schemas",
    "schemas",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of model schemas; a model's id is its path below it, without .json.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the package into (the package is OUT/PACKAGE).",
)
@click.option(
    "--package",
    default="runcomfy_models",
    show_default=True,
    callback=_package_name,
    help="Name of the generated package. Pick your own for your own schemas.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 listing every file that is not what would be written now.",
)
@click.option(
    "--docs",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write one Markdown page per model (fields, example calls) into this folder.",
)
@click.pass_context
def codegen_command(
    ctx: click.Context, schemas: Path, out: Path, package: str, check: bool, docs: Path | None
) -> None:
    """Render typed wrappers (pydantic input classes, submit/run functions) from SCHEMAS."""
    from .._extras import require_extra

    # Before any schema is read: a missing generator must not look like a bad schema.
    require_extra("codegen", "runcomfy-client codegen")
    from runcomfy_codegen import generate

    report = generate(schemas, out, package, check=check)
    changed_pages: list[Path] = []
    if docs is not None:
        from .._model_docs import pages_for, write_pages

        changed_pages = [
            docs / p for p in write_pages(pages_for(schemas, package), docs, check=check)
        ]
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if check:
        stale = [out / relative for relative in report.out_of_date] + changed_pages
        if stale:
            for path in stale:
                click.echo(f"out of date: {path}", err=True)
            click.echo(
                f"{len(stale)} generated files are out of date; "
                "run `make generate` (or codegen without --check)",
                err=True,
            )
            ctx.exit(1)
        click.echo(f"{out / package}: up to date")
        return
    for path in [*(out / relative for relative in report.written), *changed_pages]:
        click.echo(f"wrote {path}")
    for relative in report.removed:
        click.echo(f"removed {out / relative}")
    click.echo(
        f"{out / package}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed"
    )
