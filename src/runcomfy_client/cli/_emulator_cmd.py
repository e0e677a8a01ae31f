"""``runcomfy-client emulator``: serve the local emulator in the foreground."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from types import FrameType

import click

from ._app import cli


@cli.command("emulator")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any but loopback needs --api-key (a key of its own).",
)
@click.option("--port", default=0, type=int, help="Port (default: a free one).")
@click.option("--workers", default=2, type=click.IntRange(1), show_default=True)
@click.option(
    "--job-seconds",
    default=3.0,
    type=click.FloatRange(0),
    show_default=True,
    help="Shortest time a job runs.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="Inject a fault: rate_limit, server_error, drop, lost_response, slow, truncate, "
    "error_200, webhook_duplicate, webhook_reorder, webhook_drop, created_then_503, forbidden; "
    "RATE 0-1 or @N,M for exact requests; KIND:ENDPOINT=... to aim it (submit, status, result, "
    "cancel; deployment_submit, deployment_status, ... for the Serverless API's); "
    "outage=AT+SECONDS fails "
    "every request for SECONDS from AT seconds after start (repeatable).",
)
@click.option(
    "--answer",
    "answers",
    multiple=True,
    metavar="SWITCH",
    help="Answer in another dialect RunComfy is known to use: succeeded, canceled, "
    "null_errors, cancellation_requested, detail_lists (repeatable).",
)
@click.option("--seed", default=0, type=int, show_default=True, help="Seed for fault choices.")
@click.option(
    "--api-key",
    default=None,
    help="Key to accept (default: RUNCOMFY_API_KEY, else the public emulator-key on loopback).",
)
@click.option(
    "--request-ttl",
    default=3600.0,
    type=float,
    show_default=True,
    help="Seconds a finished request id stays known.",
)
@click.option("--no-render", is_flag=True, help="Return a tiny stand-in clip (load tests).")
@click.option(
    "--deployment",
    "deployments",
    multiple=True,
    metavar="NAME=WORKFLOW:OBJECT_INFO",
    help="Serve a ComfyUI workflow (API format) with its object_info.json as the Serverless "
    "deployment NAME (repeatable).",
)
@click.option(
    "--output-bytes",
    type=click.IntRange(1),
    help="Pad every output to this many bytes (large-download tests; still a playable MP4).",
)
@click.option(
    "--allow-private-inputs",
    is_flag=True,
    help="Also fetch inputs from private, loopback and link-local addresses (local tests).",
)
@click.option(
    "--fetch-timeout",
    default=10.0,
    type=click.FloatRange(0, min_open=True),
    show_default=True,
    help="Seconds one input may take to fetch, in all.",
)
@click.option(
    "--catalog",
    "catalog_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve this catalog instead of the schema folders: a JSON list of model records "
    "(model_id, display_name, categories, kind, base_price_usd, price_unit, pricing_note, "
    "input_schema), read again whenever the file is replaced.",
)
@click.option(
    "--balance",
    type=click.FloatRange(0),
    metavar="USD",
    help="The account's balance: once jobs have cost this much, submits answer HTTP 402.",
)
@click.pass_context
def emulator_command(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    job_seconds: float,
    faults: tuple[str, ...],
    answers: tuple[str, ...],
    seed: int,
    api_key: str | None,
    request_ttl: float,
    no_render: bool,
    deployments: tuple[str, ...],
    output_bytes: int | None,
    allow_private_inputs: bool,
    fetch_timeout: float,
    catalog_file: str | None,
    balance: float | None,
) -> None:
    """Serve a local emulator of the RunComfy Model API (and Serverless API) until interrupted.

    It hosts the models of --schemas, RUNCOMFY_SCHEMA_PATH and the bundled schemas (or those
    of --catalog), listing each with its sidecar's record: display name, categories, price.
    """
    from .._extras import require_extra

    require_extra("emulator", "runcomfy-client emulator")  # before aiohttp's own ImportError
    from ..emulator import (
        Emulator,
        check_answers,
        parse_deployment_spec,
        parse_fault,
    )

    try:
        parsed = [parse_fault(f) for f in faults]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        served = [parse_deployment_spec(d) for d in deployments]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--deployment") from None
    try:
        switches = check_answers(answers)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--answer") from None
    root = ctx.find_root().obj or {}
    try:
        emu = Emulator(
            host=host,
            port=port,
            api_key=api_key or os.environ.get("RUNCOMFY_API_KEY") or None,
            workers=workers,
            job_seconds=job_seconds,
            faults=parsed,
            seed=seed,
            request_ttl=request_ttl,
            render=not no_render,
            output_bytes=output_bytes,
            allow_private_inputs=allow_private_inputs,
            fetch_timeout=fetch_timeout,
            schema_dirs=root.get("schema_dirs", ()),
            deployments=served,
            answers=switches,
            catalog_file=catalog_file,
            balance=balance,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", RuntimeWarning)
        emu.start()
    for warning in said:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(f"listening on {emu.base_url}")
    for name, deployment_id in emu.deployments.items():
        click.echo(f"deployment {name}: {deployment_id}")
    sys.stdout.flush()
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
