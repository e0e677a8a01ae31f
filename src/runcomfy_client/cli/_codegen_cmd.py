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
@click.pass_context
def codegen_command(
    ctx: click.Context, schemas: Path, out: Path, package: str, check: bool
) -> None:
    """Render typed wrappers (pydantic input classes, submit/run functions) from SCHEMAS."""
    from .._extras import require_extra

    # Before any schema is read: a missing generator must not look like a bad schema.
    require_extra("codegen", "runcomfy-client codegen")
    from runcomfy_codegen import generate

    report = generate(schemas, out, package, check=check)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if check:
        if report.out_of_date:
            for relative in report.out_of_date:
                click.echo(f"out of date: {out / relative}", err=True)
            click.echo(
                f"{len(report.out_of_date)} generated files are out of date; "
                "run `make generate` (or codegen without --check)",
                err=True,
            )
            ctx.exit(1)
        click.echo(f"{out / package}: up to date")
        return
    for relative in report.written:
        click.echo(f"wrote {out / relative}")
    for relative in report.removed:
        click.echo(f"removed {out / relative}")
    click.echo(
        f"{out / package}: {len(report.written)} written, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed"
    )
