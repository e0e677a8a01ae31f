"""``runcomfy-client run MODEL_ID``: one command per model, one flag per schema field.

Each model in the registry becomes a subcommand whose options are built from its schema (by the
runtime's naming rule and field descriptions), so ``run MODEL_ID --help`` documents that model.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import _errors as e
from .._docs import field_summary
from .._naming import cli_flag
from .._registry import Field, ModelSchema
from .._types import ErrorInfo, InProgress, JobStatus, Queued, Result, job_document
from ._app import cli, echo_json
from ._context import client_from, registry_from
from ._display import JobView, choose_mode
from ._download_opts import download_option_list
from ._exit import EXIT_CODES_HELP, INTERRUPTED
from ._inputs import gather_inputs
from ._job_output import echo_cost, echo_safe, failure_document

if TYPE_CHECKING:
    from .._client import Client, RequestHandle

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _common_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--set", "sets"],
            multiple=True,
            metavar="NAME=VALUE",
            help="Set a field by readable name or wire key (repeatable); "
            "VALUE is converted to the field's type.",
        ),
        click.Option(
            ["--input", "input_file"],
            metavar="FILE",
            help="Read inputs from a JSON object in FILE ('-' for stdin); "
            "--set and field flags override it.",
        ),
        click.Option(
            ["--out", "out"],
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("out"),
            show_default=True,
            help="Folder to save the outputs in.",
        ),
        click.Option(
            ["--no-wait", "no_wait"],
            is_flag=True,
            help="Submit, print the request id and return (follow it later with 'wait ID').",
        ),
        click.Option(
            ["--timeout", "timeout"],
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Deadline for the whole job. A job still queued then is cancelled (exit 1); "
            "a running one keeps running and its id is printed (exit 6).",
        ),
        click.Option(
            ["--upload-to", "upload_to"],
            metavar="URI",
            help="Upload local files given for media fields here first: "
            "s3://BUCKET[/PREFIX] (presigned URLs; needs the s3 extra), 'inline' (small files "
            "sent in the request as data: URIs) or 'emulator'. Also RUNCOMFY_UPLOAD_TO.",
        ),
        click.Option(
            ["--allow-any-file", "allow_any_file"],
            is_flag=True,
            help="Upload local files even when their content is not an image, video or audio "
            "of the field's kind (by default such files are refused, never uploaded).",
        ),
        click.Option(
            ["--json", "as_json"],
            is_flag=True,
            help="Print one JSON object (request_id, status, output, files) on stdout "
            "and nothing else.",
        ),
    ]


def _metavar(f: Field) -> str:
    kinds = f.type if isinstance(f.type, list) else [f.type or "any"]
    if f.enum is not None:
        return "CHOICE"
    if f.media:
        return "URL|FILE"
    if f.type in ("array", "object"):
        return "JSON"
    words = {"integer": "INTEGER", "number": "NUMBER", "string": "TEXT", "null": "null"}
    return "|".join(words.get(k, "JSON") for k in kinds)


def _field_options(
    model: ModelSchema, taken: set[str]
) -> tuple[list[tuple[click.Option, Field]], list[Field]]:
    """One option per field; fields whose flag would clash are left to ``--set``."""
    options: list[tuple[click.Option, Field]] = []
    unflagged: list[Field] = []
    for index, f in enumerate(model.fields):
        flag = cli_flag(f.name)
        negative = "--no-" + flag[2:]
        boolean = f.type == "boolean"
        wanted = {flag, negative} if boolean else {flag}
        if wanted & taken:
            unflagged.append(f)
            continue
        taken |= wanted
        text = field_summary(f)
        if f.media_array:
            text += (
                " Repeat the flag for each item (or give a JSON list); local files work with "
                "--upload-to."
            )
        elif f.media:
            text += " A local file works with --upload-to."
        elif f.type in ("array", "object"):
            text += " Give it as JSON."
        if f.dimensions:
            text += " WIDTHxHEIGHT (e.g. 720x480) picks the matching choice."
        text += f" Wire key: {f.key}."
        name = f"field_{index}"
        if boolean:
            option = click.Option([f"{flag}/{negative}", name], default=None, help=text)
        elif f.media_array:
            option = click.Option([flag, name], metavar=_metavar(f), multiple=True, help=text)
        else:
            option = click.Option([flag, name], metavar=_metavar(f), help=text)
        options.append((option, f))
    return options, unflagged


def model_command(model: ModelSchema) -> click.Command:
    """The ``run`` subcommand for one model."""
    common = _common_options()
    if _is_deployment(model):
        common += _deployment_options()
    downloads = download_option_list()
    taken = {opt for param in [*common, *downloads] for opt in param.opts} | {"--help", "-h"}
    options, unflagged = _field_options(model, taken)
    by_param = {option.name: f.key for option, f in options}
    epilog = EXIT_CODES_HELP
    if unflagged:
        names = ", ".join(f.label for f in unflagged)
        epilog = f"Set with --set only (their flags would clash): {names}.\n\n{epilog}"
    description = (model.description or "").strip()
    help_text = f"Run {model.model_id}: validate, submit, follow the job, save its outputs."
    if description:
        help_text += "\n\n" + description.splitlines()[0]
    if model.info is not None and model.info.price is not None:
        help_text += f"\n\nPrice: {model.info.price_line()}."

    def callback(**params: Any) -> None:
        flags = {
            by_param[name]: value
            for name, value in params.items()
            if name in by_param and value is not None and value != ()
        }
        common_values = {p.name: params[p.name] for p in common if p.name is not None}
        run_job(click.get_current_context(), model, flags, **common_values)

    return click.Command(
        model.model_id,
        params=[*(option for option, _ in options), *common, *downloads],
        callback=callback,
        help=help_text,
        epilog=epilog,
        short_help=_short(model),
        context_settings=_CONTEXT,
    )


def _short(model: ModelSchema) -> str:
    text = (model.description or "").strip()
    return text.splitlines()[0][:70] if text else ""


class _ModelCommands(click.Group):
    """``run``: a subcommand per model in the registry, built when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(registry_from(ctx).model_ids())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # An unknown id raises UnknownModelError (exit 4, with a did-you-mean hint).
        return model_command(registry_from(ctx).get(cmd_name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for model_id in self.list_commands(ctx):
            try:
                rows.append((model_id, _short(registry_from(ctx).get(model_id))))
            except e.SchemaError as exc:
                rows.append((model_id, f"(cannot be used: {exc})"))
        if rows:
            with formatter.section("Models"):
                formatter.write_dl(rows)


@cli.group("run", cls=_ModelCommands, context_settings=_CONTEXT, epilog=EXIT_CODES_HELP)
def run_group() -> None:
    """Run MODEL_ID: one flag per schema field; 'run MODEL_ID --help' lists them.

    \b
    Example:
      runcomfy-client run community/wan-2-2/fun-inpaint --prompt "a fox" \\
          --start-image https://.../a.png --end-image https://.../b.png --out out
    """


def _read_document(source: str, option: str = "--input") -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        message = f"cannot read {source}: {exc.strerror}"
        raise click.BadParameter(message, param_hint=option) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{source} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            param_hint=option,
        ) from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{source} must hold a JSON object", param_hint=option)
    return data


def _is_deployment(model: ModelSchema) -> bool:
    return model.info is not None and model.info.kind == "deployment"


def _job_ref(request_id: str, model: ModelSchema | None) -> str:
    """How the job verbs name this job: a deployment's needs its model id."""
    if model is not None and _is_deployment(model):
        return f"{request_id} --model {model.model_id}"
    return request_id


def _reattach_hint(request_id: str, out: Path, model: ModelSchema | None = None) -> str:
    ref = _job_ref(request_id, model)
    return (
        f"re-attach with: runcomfy-client wait {ref}  "
        f"(then: runcomfy-client result {ref} --out {out})"
    )


def _deployment_options() -> list[click.Parameter]:
    """What ``run deployments/NAME`` takes besides the derived schema's fields."""
    return [
        click.Option(
            ["--overrides", "overrides_file"],
            metavar="FILE",
            help='Raw overrides from a JSON file ({"<node id>": {"inputs": {...}}}; \'-\' '
            "for stdin), merged with the flags' (the same input set twice is refused). Given "
            "alone, no field is required: the file is sent as it is.",
        ),
        click.Option(
            ["--webhook", "webhook"],
            metavar="URL",
            help="RunComfy POSTs the job's final event here (with every state change too: "
            "--webhook-intermediate-status). See `runcomfy-client webhooks listen`.",
        ),
        click.Option(
            ["--webhook-intermediate-status", "webhook_intermediate_status"],
            is_flag=True,
            help="Also POST in_queue and in_progress events to --webhook.",
        ),
    ]


def run_job(
    ctx: click.Context,
    model: ModelSchema,
    flags: dict[str, Any],
    *,
    sets: Sequence[str],
    input_file: str | None,
    out: Path,
    no_wait: bool,
    timeout: float | None,
    upload_to: str | None,
    allow_any_file: bool,
    as_json: bool,
    overrides_file: str | None = None,
    webhook: str | None = None,
    webhook_intermediate_status: bool = False,
) -> None:
    """Validate everything, then submit, follow, download; map outcomes to exit codes."""
    document = _read_document(input_file) if input_file else None
    overrides = _read_document(overrides_file, "--overrides") if overrides_file else None
    client = _client(ctx, upload_to, allow_any_file)
    uploading = client.uploader is not None
    inputs = _inputs(model, document, sets, flags, uploading, raw=overrides is not None)
    view = JobView(choose_mode(as_json))
    client.retry_listeners.append(view.retrying)
    request_id: str | None = None
    stage = "submit"
    # --timeout covers the whole job: submit, wait and download.
    deadline = None if timeout is None else time.monotonic() + timeout

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    with client:
        try:
            with view:
                view.phase("uploading and submitting" if uploading else "submitting")
                handle = _submit(
                    client, model, inputs, overrides, webhook, webhook_intermediate_status
                )
                request_id = handle.request_id
                view.submitted(request_id)
                if no_wait:
                    view.close()
                    _print_submitted(_job_ref(request_id, model), as_json)
                    return
                stage = "wait"
                result = handle.wait(timeout=left(), on_status=view.status)
                stage = "download"
                files = client.download(result, out, on_progress=view.progress, timeout=left())
        except KeyboardInterrupt:
            view.close()
            _interrupted(ctx, client, view, request_id, stage, out, as_json, model)
        except e.JobError as exc:
            view.close()
            if as_json:
                echo_json(failure_document(exc))
            if isinstance(exc, e.DeadlineExceededError) and not exc.cancelled:
                click.echo(_reattach_hint(exc.request_id, out, model), err=True)
            raise
        except e.DownloadError as exc:
            view.close()
            _download_failed(exc, result, out, as_json, model)  # only the download raises this
            raise
    if as_json:
        echo_json(replace(result, files=tuple(files)).as_dict())
        return
    echo_cost(result.cost)  # what the API charged (include_cost)
    if not files:
        echo_safe(f"{result.request_id}  completed with no output files")
    for path in files:
        echo_safe(str(path))


def _client(ctx: click.Context, upload_to: str | None, allow_any_file: bool) -> Client:
    """The client, its uploader RUNCOMFY_UPLOAD_TO's unless --upload-to is given."""
    client = client_from(ctx)
    if upload_to:
        from ..uploaders import uploader_from_uri

        client.uploader = uploader_from_uri(upload_to, base_url=client.base_url)
    client.allow_any_file = allow_any_file
    return client


def _inputs(
    model: ModelSchema,
    document: dict[str, Any] | None,
    sets: Sequence[str],
    flags: dict[str, Any],
    uploads: bool,
    *,
    raw: bool,
) -> dict[str, Any] | None:
    """The inputs given; None for raw overrides given alone (sent as they are, no field
    required)."""
    if raw and document is None and not sets and not flags:
        return None
    return gather_inputs(model, document=document, sets=sets, flags=flags, uploads=uploads)


def _submit(
    client: Client,
    model: ModelSchema,
    inputs: dict[str, Any] | None,
    overrides: dict[str, Any] | None,
    webhook: str | None,
    intermediate: bool,
) -> RequestHandle:
    """A deployment's job (inputs compiled into overrides, merged with raw ones), else a Model
    API job."""
    if _is_deployment(model):
        return client.deployment(model).submit(
            inputs, overrides=overrides, webhook=webhook, webhook_intermediate_status=intermediate
        )
    assert inputs is not None
    return client.submit(model, inputs)


def _download_failed(
    exc: e.DownloadError, result: Result, out: Path, as_json: bool, model: ModelSchema
) -> None:
    """The job completed but its files were not saved: its document, and how to retry."""
    rid = result.request_id
    if as_json:
        error = ErrorInfo(None, str(exc))
        document = job_document(
            rid, "completed", output=result.output.raw, error=error, cost=result.cost
        )
        echo_json(document)
    click.echo(
        f"job {rid} completed but its files were not saved; download them "
        f"again with: runcomfy-client result {_job_ref(rid, model)} --out {out}",
        err=True,
    )


def _print_submitted(ref: str, as_json: bool) -> None:
    request_id = ref.split(" ", 1)[0]
    if as_json:
        echo_json(job_document(request_id, "in_queue"))
        return
    echo_safe(request_id)
    echo_safe(f"follow it with: runcomfy-client wait {ref}", err=True)


def _interrupted(
    ctx: click.Context,
    client: Any,
    view: JobView,
    request_id: str | None,
    stage: str,
    out: Path,
    as_json: bool,
    model: ModelSchema | None = None,
) -> None:
    """Ctrl-C: cancel a job that is still queued; otherwise say how to pick it up again."""
    model_id = model.model_id if model is not None else None
    # Even with --json the person pressing Ctrl-C is told what happened (on stderr).
    say: Callable[[str], None] = view.say if not as_json else lambda t: click.echo(t, err=True)
    last: JobStatus | None = view.last_status
    state = last.status if last is not None else "unknown"
    if request_id is None:
        say(
            "interrupted while submitting: the API may have created the job before the "
            "connection closed; check your RunComfy dashboard before submitting again"
        )
    elif stage == "download":
        state = "completed"
        say(
            f"interrupted during the download; job {request_id} completed. Download again "
            f"with: runcomfy-client result {_job_ref(request_id, model)} --out {out}"
        )
    elif last is None or isinstance(last, Queued):
        try:
            outcome = client.cancel(request_id, model_id=model_id)
        except (e.RunComfyError, KeyboardInterrupt):
            outcome = None
        if outcome is not None and outcome.cancelled:
            state = "cancelled"
            say(f"interrupted: job {request_id} was still queued and has been cancelled")
        else:
            state = "in_progress"
            say(
                f"interrupted: job {request_id} has started and cannot be cancelled; it will "
                f"run to the end. {_reattach_hint(request_id, out, model)}"
            )
    elif isinstance(last, InProgress):
        say(
            f"interrupted: job {request_id} is running and cannot be cancelled; it will run "
            f"to the end. {_reattach_hint(request_id, out, model)}"
        )
    else:
        say(
            f"interrupted: job {request_id} is {last.status}. Fetch it with: "
            f"runcomfy-client result {_job_ref(request_id, model)} --out {out}"
        )
    if as_json:
        echo_json(job_document(request_id, state, error=ErrorInfo(None, "interrupted")))
    ctx.exit(INTERRUPTED)
