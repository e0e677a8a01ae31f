"""Verbs on a job that already exists: ``status``, ``wait``, ``result``, ``cancel`` (by id)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click

from .. import _errors as e
from .._types import JobStatus, job_document
from ._app import cli, echo_json
from ._context import client_from
from ._display import retry_printer
from ._download_opts import download_options
from ._exit import JOB_FAILED
from ._job_output import (
    echo_cost,
    echo_safe,
    failure_document,
    failure_line,
    money,
    status_line,
)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else."
)
model_option = click.option(
    "--model",
    "model_id",
    metavar="MODEL_ID",
    help="Whose job it is, for a Serverless deployment's: deployments/NAME (its derived "
    "schema) or deployments/DEPLOYMENT_ID. Model API jobs need none.",
)


@cli.command("status")
@click.argument("request_id")
@model_option
@json_option
@click.pass_context
def status_command(
    ctx: click.Context, request_id: str, model_id: str | None, as_json: bool
) -> None:
    """Show the current status of REQUEST_ID (queued with position, in progress, ...)."""
    with client_from(ctx) as client:
        status = client.status(request_id, model_id=model_id)
    if as_json:
        echo_json(status.as_dict())
    else:
        click.echo(status_line(status))


@cli.command("wait")
@click.argument("request_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after SECONDS (exit 6).")
@model_option
@json_option
@click.pass_context
def wait_command(
    ctx: click.Context, request_id: str, timeout: float | None, model_id: str | None, as_json: bool
) -> None:
    """Wait for REQUEST_ID to finish; print each status change, then the result's URLs."""

    def show(status: JobStatus) -> None:
        if not as_json:
            click.echo(status_line(status), err=True)

    with client_from(ctx) as client:
        if not as_json:
            client.retry_listeners.append(retry_printer(lambda text: click.echo(text, err=True)))
        try:
            result = client.wait(
                request_id,
                timeout=timeout,
                on_status=show,
                cancel_on_timeout=False,
                model_id=model_id,
            )
        except e.JobError as exc:
            if as_json:  # the document first; the error line (stderr) and exit code follow
                echo_json(failure_document(exc))
            raise
    if as_json:
        echo_json(result.as_dict())
    else:
        echo_cost(result.cost)  # what the API charged (include_cost)
        for url in result.urls:
            echo_safe(url)


@cli.command("result")
@click.argument("request_id")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download the outputs into this folder.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Deadline for fetching the result and downloading its files.",
)
@download_options
@model_option
@json_option
@click.pass_context
def result_command(
    ctx: click.Context,
    request_id: str,
    out: Path | None,
    timeout: float | None,
    model_id: str | None,
    as_json: bool,
) -> None:
    """Fetch the result of REQUEST_ID; with --out, download its files (exit 1 if it failed)."""
    files: list[Path] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    with client_from(ctx) as client:
        try:
            result = client.result(request_id, model_id=model_id)
        except (e.JobFailedError, e.JobCancelledError) as exc:
            if as_json:
                echo_json(failure_document(exc))
            else:
                click.echo(failure_line(exc))
            ctx.exit(JOB_FAILED)
        if out is not None and result.status == "completed":
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            files = result.download(out, timeout=left)
    if as_json:
        echo_json(replace(result, files=tuple(files)).as_dict())
        return
    cost = f"  cost: {money(result.cost)}" if result.cost is not None else ""
    echo_safe(f"{result.request_id}  {result.status}{cost}")
    for url in result.urls:
        echo_safe(url)
    for path in files:
        echo_safe(f"saved {path}")


@cli.command("cancel")
@click.argument("request_id")
@model_option
@json_option
@click.pass_context
def cancel_command(
    ctx: click.Context, request_id: str, model_id: str | None, as_json: bool
) -> None:
    """Cancel REQUEST_ID if it is still queued (a Model API job cannot be cancelled once it
    runs; a Serverless deployment's can, with --model).

    When the API only accepts the cancellation, the job is followed until it ends. Exit 1
    when the job was not cancelled (it runs, or has already ended).
    """
    with client_from(ctx) as client:
        outcome = client.cancel(request_id, model_id=model_id)
    state = "cancelled" if outcome.cancelled else outcome.status
    if as_json:
        echo_json({**job_document(outcome.request_id, state), "outcome": outcome.outcome})
    elif outcome.cancelled:
        echo_safe(f"{request_id}  cancelled")
    elif outcome.accepted:
        echo_safe(
            f"{request_id}  cancellation requested; the job had not ended yet (status "
            f"{outcome.status}); check with: runcomfy-client status {request_id}"
        )
    elif state in ("completed", "failed", "cancelled"):
        echo_safe(f"{request_id}  not cancellable: it has already ended ({state})")
    else:
        echo_safe(
            f"{request_id}  not cancellable ({state or 'status unknown'}): it runs to the end"
        )
    if not outcome.cancelled:
        ctx.exit(JOB_FAILED)
