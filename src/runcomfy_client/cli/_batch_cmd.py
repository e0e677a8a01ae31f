"""``runcomfy-client batch FILE.jsonl``: many jobs, resumable from a journal."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import _errors as e
from .._journal import STATES
from ._app import cli, echo_json
from ._context import client_from, registry_from
from ._display import choose_mode
from ._download_opts import download_options
from ._exit import EXIT_CODES_HELP, INTERRUPTED, JOB_FAILED
from ._job_output import money
from ._terminal import terminal_safe

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from .._throttle import AdaptiveLimit
    from ..batch import Batch, LineProblem, LineResult

# Counts are shown in the journal's order of states (lines skipped as invalid never run).
_SHOWN = tuple(state for state in STATES if state != "invalid")


class _Counts:
    """Live per-state counts, fed by the batch's state callback, shown by the progress bar,
    with the pause on new submits while one is running (the bar formats it at every refresh)."""

    def __init__(self, states: dict[int, str], limit: AdaptiveLimit | None = None) -> None:
        self.states = dict(states)
        self.limit = limit

    def __format__(self, spec: str) -> str:
        return self.text()

    def update(self, line: int, state: str) -> None:
        self.states[line] = state

    def text(self) -> str:
        totals: dict[str, int] = {}
        for state in self.states.values():
            totals[state] = totals.get(state, 0) + 1
        text = "  ".join(f"{s} {totals[s]}" for s in _SHOWN if totals.get(s))
        pause = self.limit.pause_left() if self.limit is not None else 0.0
        if pause >= 0.5:
            text += f"  new submits paused {pause:.0f} s (Retry-After)"
        return text


@cli.command("batch", epilog=EXIT_CODES_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the outputs: one subfolder per line (its id, else line-<n>).",
)
@click.option("--model", "model", help="Model id for lines that do not name one.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Jobs in flight at most (fewer for a while after the API answers 429).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SQLite journal (default: beside the output folder, OUT.batch.sqlite).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Deadline per job. Still queued then: cancelled; running: re-attached next time.",
)
@click.option("--skip-invalid", is_flag=True, help="Run the valid lines even if some are not.")
@click.option(
    "--resubmit-uncertain",
    is_flag=True,
    help="Submit again the lines whose earlier submit may have reached the API "
    "(a duplicate job is possible; the journal counts them).",
)
@click.option(
    "--upload-to",
    "upload_to",
    metavar="URI",
    help="Upload local media files here first (s3://BUCKET[/PREFIX], 'inline' or 'emulator'). "
    "Also RUNCOMFY_UPLOAD_TO.",
)
@click.option(
    "--allow-any-file",
    "allow_any_file",
    is_flag=True,
    help="Upload local files even when their content is not media of the field's kind.",
)
@click.option(
    "--max-cost",
    "max_cost",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Never submit a line whose estimated cost (from the model's published price) would "
    "take what was spent plus what is in flight past USD; then stop submitting and let the "
    "jobs in flight finish. Counts the costs of earlier runs of the same journal.",
)
@download_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON report on stdout and nothing else."
)
@click.pass_context
def batch_command(
    ctx: click.Context,
    file: Path,
    out: Path,
    model: str | None,
    concurrency: int,
    journal: Path | None,
    timeout: float | None,
    skip_invalid: bool,
    resubmit_uncertain: bool,
    upload_to: str | None,
    allow_any_file: bool,
    max_cost: float | None,
    as_json: bool,
) -> None:
    """Run every line of FILE (JSON Lines) as a job; run it again to resume.

    \b
    Each line is a JSON object: the job's inputs by readable name or wire key, its "model"
    (unless --model), and an optional "id" naming its output folder, e.g.
      {"id": "fox", "model": "community/wan-2-2/fun-inpaint", "prompt": "a fox", ...}

    Every line is validated first; nothing is submitted unless all are valid (or
    --skip-invalid). The journal records each line before and after its submit, so a crash or
    Ctrl-C never makes the same line be paid for twice: the next run re-attaches submitted
    jobs, downloads only missing files, and reports lines whose submit was cut off as uncertain.
    """
    from ..batch import Batch, check_batch  # the engine (and sqlite3) load for this verb only
    from ..uploaders import upload_target_from_env

    upload_to = upload_to or upload_target_from_env()
    registry = registry_from(ctx)
    lines, problems = check_batch(
        file, registry=registry, model=model, uploads=upload_to is not None
    )
    if problems and not skip_invalid:
        raise e.BatchInputError(problems)
    for problem in problems:
        click.echo(f"skipped: {problem}", err=True)
    batch = Batch(
        lines,
        out,
        journal=journal,
        concurrency=concurrency,
        timeout=timeout,
        resubmit_uncertain=resubmit_uncertain,
        max_cost=max_cost,
    )
    mode = choose_mode(as_json)
    counts = _Counts(dict.fromkeys((ln.line for ln in lines), "pending"), batch.limit)
    if mode == "plain":
        batch.limit.on_pause = lambda seconds: click.echo(
            f"the API answered 429: new submits paused for {seconds:.0f} s (its Retry-After, "
            f"at most {batch.limit.max_pause:g} s)",
            err=True,
        )
    batch.on_state = counts.update
    try:
        asyncio.run(_run(ctx, batch, upload_to, allow_any_file, mode, counts))
    except e.BatchStorageError as exc:
        raise _with_every_unrecorded(exc) from None
    except KeyboardInterrupt:
        click.echo(
            f"interrupted: the journal {batch.journal_path} knows every line's state; "
            "run the same command again to resume (submitted jobs are re-attached, "
            "nothing is submitted twice)",
            err=True,
        )
        ctx.exit(INTERRUPTED)
    if batch.uncertain_found and not as_json:
        click.echo(
            f"{len(batch.uncertain_found)} line(s) were cut off while being submitted by an "
            "earlier run: their jobs may exist, so they were not submitted again "
            "(--resubmit-uncertain to do so)",
            err=True,
        )
    report = batch.report()
    _summarise(report, problems, batch, as_json)
    if batch.stop_reason is not None and not as_json:
        left = [r.line for r in report if r.state == "pending"]
        click.echo(
            f"stopped submitting: {batch.stop_reason}. {len(left)} line(s) left unsubmitted "
            f"({_numbers(left)}); the jobs in flight ran to their end. Run the same command "
            "again to submit them (with a higher --max-cost, or once the balance is topped up).",
            err=True,
        )
    # Lines skipped on request (--skip-invalid) are reported, not failures of the run.
    if any(r.state != "downloaded" for r in report):
        ctx.exit(JOB_FAILED)


async def _run(
    ctx: click.Context,
    batch: Batch,
    upload_to: str | None,
    allow_any_file: bool,
    mode: str,
    counts: _Counts,
) -> None:
    client = client_from(ctx, asynchronous=True)
    client.allow_any_file = allow_any_file
    if upload_to:
        from ..uploaders import uploader_from_uri

        client.uploader = uploader_from_uri(upload_to, base_url=client.base_url)
    progress, task = _start_progress(mode, len(batch.lines))
    if progress is not None and task is not None:
        live, bar = progress, task

        def show(line: int, state: str) -> None:  # every change, not only finished lines
            counts.update(line, state)
            live.update(bar, counts=counts)

        batch.on_state = show
    try:
        async with client:
            async for result in batch.run(client):
                if progress is not None and task is not None:
                    progress.update(task, advance=1, counts=counts)
                elif mode == "plain":
                    click.echo(_line_text(result), err=True)
    finally:
        if progress is not None:
            progress.stop()


def _start_progress(mode: str, total: int) -> tuple[Progress | None, TaskID | None]:
    if mode != "live":
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
        console=Console(stderr=True),
    )
    progress.start()
    return progress, progress.add_task("batch", total=total, counts="")


def _with_every_unrecorded(exc: e.BatchStorageError) -> e.BatchStorageError:
    """The error, naming also the jobs whose ids failed to be recorded after it was raised
    (submits on the wire when the batch stopped): no paid job's id is lost."""
    said = str(exc)
    late = {n: rid for n, rid in exc.unrecorded.items() if rid not in said}
    if not late:
        return exc
    ids = ", ".join(f"line {n}: {rid}" for n, rid in sorted(late.items()))
    return e.BatchStorageError(
        f"{said}. These jobs were created too but not recorded ({ids}): a resume reports "
        "their lines as uncertain and does not submit them again",
        unrecorded=exc.unrecorded,
    )


def _numbers(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:10])
    return f"lines {shown}{', ...' if len(lines) > 10 else ''}" if lines else "none"


_money = money  # the one spelling of an amount (also run, wait, result)


def _line_text(result: LineResult) -> str:
    where = ", ".join(str(p) for p in result.files) or result.error or ""
    cost = f"  {_money(result.cost)}" if result.cost is not None else ""
    return terminal_safe(
        f"line {result.line} {result.name}  {result.state}{cost}  {where}".rstrip()
    )


def total_cost(report: Sequence[LineResult]) -> tuple[float, int]:
    """The reported costs' sum, and how many lines reported one."""
    costs = [r.cost for r in report if r.cost is not None]
    return round(sum(costs), 6), len(costs)


def _summarise(
    report: Sequence[LineResult], problems: Sequence[LineProblem], batch: Batch, as_json: bool
) -> None:
    totals: dict[str, int] = {}
    for result in report:
        totals[result.state] = totals.get(result.state, 0) + 1
    if problems:
        totals["invalid"] = len({p.line for p in problems})
    if as_json:
        spent, costed = total_cost(report)
        data: dict[str, Any] = {
            "journal": str(batch.journal_path),
            "out": str(batch.out_dir),
            "counts": totals,
            "cost": {"total": spent, "lines": costed, "max_cost": batch.max_cost},
            "stopped": batch.stop_reason,
            "unsubmitted": [r.line for r in report if r.state == "pending"],
            "lines": [r.as_dict() for r in report],
            "invalid": [{"line": p.line, "error": p.message} for p in problems],
        }
        echo_json(data)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False)
    # The cost column only when the API reported a cost for some line.
    costed = any(result.cost is not None for result in report)
    columns = ("line", "id", "state", "request id", *(("cost",) if costed else ()), "files / error")
    for column in columns:
        table.add_column(column, overflow="fold")
    for result in report:
        files = "\n".join(str(p) for p in result.files)
        detail = files if result.state == "downloaded" else (result.error or files)
        cells = [str(result.line), result.name, result.state, result.request_id or ""]
        cells += [_money(result.cost)] if costed else []
        # Cells as Text: an error from the server is shown, never read as rich markup.
        table.add_row(*(Text(terminal_safe(cell)) for cell in (*cells, detail)))
    console = Console(soft_wrap=False)
    if not console.is_terminal:  # piped: do not fold ids and paths at 80 columns
        console = Console(soft_wrap=False, width=240)
    console.print(table)
    summary = ", ".join(f"{count} {state}" for state, count in totals.items())
    spent, costed = total_cost(report)
    money = f"; cost ${spent:.2f} ({costed} lines reported one)" if costed else ""
    console.print(
        f"{len(report)} lines: {summary}{money}; journal {batch.journal_path}",
        markup=False,
        highlight=False,
    )
