"""``schema sync``: a schema folder kept equal to the API's catalog; ``--check`` for CI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import _errors as e
from .._sync import Selection, SyncEntry, sync_folder
from ._app import echo_json
from ._catalog import schema_group
from ._context import client_from, registry_from
from ._display import choose_mode
from ._schema_add_cmd import _target_folder, hint_schema_folder

if TYPE_CHECKING:
    from rich.status import Status


def _entry_line(entry: SyncEntry, *, check: bool, prune: bool) -> str:
    """``changed  acme/x: price $0.05 per output -> $0.06 per output; new field seed``."""
    text = f"{entry.change:<9}{entry.model_id}"
    if entry.details:
        text += ": " + "; ".join(entry.details)
    if entry.change == "removed" and not check:
        text += " (deleted)" if prune else " (kept: --prune deletes it)"
    return text


@schema_group.command("sync")
@click.argument("model_ids", nargs=-1)
@click.option("--search", metavar="TEXT", help="Sync the models whose id or name has TEXT.")
@click.option("--category", metavar="C", help="Sync the models of category C.")
@click.option("--kind", metavar="K", help="Sync the models of kind K (e.g. model).")
@click.option("--all", "everything", is_flag=True, help="Sync the whole catalog.")
@click.option(
    "--schemas",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to sync (default: the first user schema folder, else ./schemas).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 listing the models added, changed or removed since the last "
    "sync (for CI).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete local schemas the catalog no longer lists (only in this folder; never "
    "bundled ones, never schemas derived from workflows).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report and nothing else.")
@click.pass_context
def schema_sync_command(
    ctx: click.Context,
    model_ids: tuple[str, ...],
    search: str | None,
    category: str | None,
    kind: str | None,
    everything: bool,
    folder: Path | None,
    check: bool,
    prune: bool,
    as_json: bool,
) -> None:
    """Fetch published schemas into a schema folder: MODEL_ID..., --search, --category, --all.

    Each schema is written verbatim (as `schema add` does), with a sidecar beside it holding
    the catalog record: display name, categories, kind, price and output kind. Files whose
    content did not change are left untouched, so `make generate` re-renders only what changed.
    A schema the runtime cannot use is reported and skipped. Models the catalog no longer lists
    are reported as removed (deleted with --prune).
    """
    try:
        selection = Selection(model_ids, search, category, kind, everything)
    except e.ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    if check and prune:
        raise click.UsageError("--check writes nothing: drop --prune, or --check")
    target = _target_folder(ctx, folder)
    registry = registry_from(ctx)
    mode = choose_mode(as_json)
    with client_from(ctx) as client, _Progress(mode) as progress:

        def show(entry: SyncEntry) -> None:
            progress.advance()
            if entry.change in ("added", "changed", "unusable"):
                progress.say(_entry_line(entry, check=check, prune=prune))

        report = sync_folder(
            client,
            target,
            selection,
            check=check,
            prune=prune,
            output_schema=registry.shared_output_schema(target),
            on_entry=show,
        )
        for entry in report.of("removed"):  # known once every page was read
            progress.say(_entry_line(entry, check=check, prune=prune))
    if as_json:
        echo_json(report.as_dict())
    else:
        for problem in report.problems:
            click.echo(f"skipped a record: {problem}", err=True)
        click.echo(report.summary())
        if report.written:
            hint_schema_folder(registry, target)
    if check and report.drifted:
        if not as_json:
            click.echo(
                f"{target} differs from the catalog: run the same command without --check to "
                "update it",
                err=True,
            )
        ctx.exit(1)


class _Progress:
    """How many models were compared (a spinner on a terminal); result lines above it."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.count = 0
        self._status: Status | None = None

    def __enter__(self) -> _Progress:
        if self.mode == "live":
            from rich.console import Console

            self._status = Console(stderr=True).status("fetching the catalog...")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def advance(self) -> None:
        self.count += 1
        if self._status is not None:
            self._status.update(f"{self.count} models compared")

    def say(self, text: str) -> None:
        """A result line on stdout (not with --json); above the spinner on a terminal."""
        if self._status is not None:
            self._status.console.print(text, markup=False, highlight=False, soft_wrap=True)
        elif self.mode != "quiet":
            click.echo(text)
