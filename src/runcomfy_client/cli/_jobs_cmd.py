"""Verbs on a job that already exists: ``status``, ``wait``, ``result``, ``cancel`` (by id)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from .._types import Failed, JobStatus, Queued
from ._app import cli, echo_json
from ._download_opts import download_options
from ._exit import JOB_FAILED

API_KEY_FILE_ENV = "RUNCOMFY_API_KEY_FILE"


def read_api_key(source: str | None) -> str | None:
    """The API key from a file, or from stdin for ``-``; None when no source is given.

    Keys never go on the command line (shell history, ``ps``); a file or a pipe keeps them out.
    """
    if source is None:
        source = os.environ.get(API_KEY_FILE_ENV) or None
    if source is None:
        return None
    if source == "-":
        text = sys.stdin.readline()
    else:
        try:
            text = Path(source).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read the API key file {source}: {exc.strerror}",
                param_hint="--api-key-file",
            ) from None
    key = text.strip()
    if not key:
        raise click.BadParameter(f"{source} holds no API key", param_hint="--api-key-file")
    return key


def client_from(ctx: click.Context, *, asynchronous: bool = False) -> Any:
    """A Client (or AsyncClient) configured from the environment and the group's options."""
    from .._client import AsyncClient, Client
    from ._app import registry_from
    from ._download_opts import download_policy

    obj = ctx.find_root().obj or {}
    if "api_key" not in obj:
        obj["api_key"] = read_api_key(obj.get("api_key_file"))
    cls = AsyncClient if asynchronous else Client
    return cls(api_key=obj["api_key"], registry=registry_from(ctx), downloads=download_policy(ctx))


def status_record(status: JobStatus) -> dict[str, Any]:
    record: dict[str, Any] = {"request_id": status.request_id, "status": status.status}
    if isinstance(status, Queued):
        record["queue_position"] = status.position
    if isinstance(status, Failed):
        record["error"] = status.error
    return record


def status_line(status: JobStatus) -> str:
    extra = ""
    if isinstance(status, Queued) and status.position is not None:
        extra = f" (position {status.position})"
    elif isinstance(status, Failed) and status.error:
        extra = f": {status.error}"
    return f"{status.request_id}  {status.status}{extra}"


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout and nothing else."
)


@cli.command("status")
@click.argument("request_id")
@json_option
@click.pass_context
def status_command(ctx: click.Context, request_id: str, as_json: bool) -> None:
    """Show the current status of REQUEST_ID (queued with position, in progress, ...)."""
    with client_from(ctx) as client:
        status = client.status(request_id)
    if as_json:
        echo_json(status_record(status))
    else:
        click.echo(status_line(status))


@cli.command("wait")
@click.argument("request_id")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up after SECONDS (exit 6).")
@json_option
@click.pass_context
def wait_command(ctx: click.Context, request_id: str, timeout: float | None, as_json: bool) -> None:
    """Wait for REQUEST_ID to finish; print each status change, then the result's URLs."""

    def show(status: JobStatus) -> None:
        if not as_json:
            click.echo(status_line(status), err=True)

    with client_from(ctx) as client:
        result = client.wait(request_id, timeout=timeout, on_status=show, cancel_on_timeout=False)
    if as_json:
        echo_json(result.as_dict())
    else:
        for url in result.urls:
            click.echo(url)


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
@json_option
@click.pass_context
def result_command(
    ctx: click.Context, request_id: str, out: Path | None, timeout: float | None, as_json: bool
) -> None:
    """Fetch the result of REQUEST_ID; with --out, download its files."""
    files: list[Path] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    with client_from(ctx) as client:
        result = client.result(request_id)
        if out is not None and result.status == "completed":
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            files = result.download(out, timeout=left)
    if as_json:
        echo_json(dict(result.as_dict(), files=[str(p) for p in files]))
    else:
        click.echo(f"{result.request_id}  {result.status}")
        for url in result.urls:
            click.echo(url)
        for path in files:
            click.echo(f"saved {path}")
    if result.status in ("failed", "cancelled"):
        ctx.exit(JOB_FAILED)


@cli.command("cancel")
@click.argument("request_id")
@json_option
@click.pass_context
def cancel_command(ctx: click.Context, request_id: str, as_json: bool) -> None:
    """Cancel REQUEST_ID if it is still queued (a running job cannot be cancelled).

    When the API only accepts the cancellation, the job is followed until it ends.
    """
    with client_from(ctx) as client:
        outcome = client.cancel(request_id)
    if as_json:
        echo_json(
            {"request_id": outcome.request_id, "outcome": outcome.outcome, "status": outcome.status}
        )
    elif outcome.cancelled:
        click.echo(f"{request_id}  cancelled")
    elif outcome.accepted:
        click.echo(
            f"{request_id}  cancellation requested; the job had not ended yet (status "
            f"{outcome.status}); check with: runcomfy-client status {request_id}"
        )
    else:
        click.echo(
            f"{request_id}  not cancellable (status {outcome.status}); it will run to the end",
        )
    if not outcome.cancelled:
        ctx.exit(JOB_FAILED)
