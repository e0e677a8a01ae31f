"""The click group and error handling shared by every command."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import _errors as e
from .._version import __version__
from ._exit import EXIT_CODES_HELP, exit_code_for
from ._terminal import json_safe, terminal_safe

API_KEY_OPTION = (
    "--api-key is not an option, on purpose: a key on the command line is visible to other "
    "users (ps) and stays in your shell history. Set RUNCOMFY_API_KEY, give a file with "
    "--api-key-file PATH, or pipe it in with --api-key-file -"
)


def _explain_api_key(exc: click.NoSuchOption) -> click.UsageError:
    if exc.option_name.split("=", 1)[0] in ("--api-key", "--api-token", "--token"):
        return click.UsageError(API_KEY_OPTION, ctx=exc.ctx)
    return exc


class _Group(click.Group):
    """Turns the package's errors into a one-line message and the documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise _explain_api_key(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:  # in a subcommand's options
            raise _explain_api_key(exc) from None
        except e.RunComfyError as exc:
            click.echo(f"error: {terminal_safe(str(exc))}", err=True)
            ctx.exit(exit_code_for(exc))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(exit_code_for(KeyboardInterrupt()))


@click.group(
    cls=_Group, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="runcomfy-client")
@click.option(
    "--schemas",
    "schema_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Extra schema folder (repeatable), searched before RUNCOMFY_SCHEMA_PATH and the bundle.",
)
@click.option(
    "--api-key-file",
    metavar="PATH",
    help="Read the API key from PATH ('-' for stdin) instead of RUNCOMFY_API_KEY. "
    "Also RUNCOMFY_API_KEY_FILE. The key is never taken as an argument.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="The API's root URL (default: RUNCOMFY_BASE_URL, else the public API).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    schema_dirs: Sequence[str],
    api_key_file: str | None,
    base_url: str | None,
) -> None:
    """Run RunComfy models from their JSON Schemas: validate, submit, follow, download.

    Configuration: RUNCOMFY_API_KEY (also RUNCOMFY_API_TOKEN, RUNCOMFY_TOKEN, or
    --api-key-file), RUNCOMFY_BASE_URL (or --base-url), RUNCOMFY_SCHEMA_PATH; `config` shows
    what is in use. Polling: RUNCOMFY_POLL_INTERVAL (3 s; lower it for the emulator),
    RUNCOMFY_CACHE_DIR (where learned running times are kept), RUNCOMFY_NO_CACHE=1 (keep none).
    """
    ctx.ensure_object(dict)
    ctx.obj["schema_dirs"] = list(schema_dirs)
    ctx.obj["api_key_file"] = api_key_file
    ctx.obj["base_url"] = base_url


def echo_json(data: Any) -> None:
    import json

    sys.stdout.write(json_safe(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")


from . import (  # noqa: E402, F401  (register the commands)
    _batch_cmd,
    _catalog,
    _codegen_cmd,
    _config_cmd,
    _deployments_cmd,
    _derive_cmd,
    _emulator_cmd,
    _jobs_cmd,
    _remote_models_cmd,
    _run_cmd,
    _schema_add_cmd,
    _sync_cmd,
    _webhooks_cmd,
)
