"""``runcomfy-client config``: the settings in use and which source chose each (never the key)."""

from __future__ import annotations

import os
from typing import Any

import click

from .._keys import KEY_ENVS
from ._app import cli, echo_json
from ._context import API_KEY_FILE_ENV, CLI_MISSING_KEY, client_from

KEY_ORDER = ("--api-key-file", API_KEY_FILE_ENV, *KEY_ENVS)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_context
def config_command(ctx: click.Context, as_json: bool) -> None:
    """Show the settings in use and where each comes from.

    The API key is looked up in this order: --api-key-file, RUNCOMFY_API_KEY_FILE,
    RUNCOMFY_API_KEY, RUNCOMFY_API_TOKEN, RUNCOMFY_TOKEN. Only its source and last 4
    characters are shown, never the key.
    """
    with client_from(ctx) as client:
        settings = client._settings
        retry = client.retry
        polling = client.polling
    key = settings.api_key
    data: dict[str, Any] = {
        "api_key": {
            "source": settings.key_source or None,
            "hint": key.hint() if key else None,
            "order": list(KEY_ORDER),
        },
        "base_url": {"value": settings.base_url, "source": settings.base_url_source},
        "timeouts": {"submit": settings.submit_timeout.read, "other": settings.timeout.read},
        "outage_budget": retry.outage_budget,
        "schema_path": os.environ.get("RUNCOMFY_SCHEMA_PATH") or None,
        "polling": {
            "interval": polling.settings.interval,
            "cache": str(polling.memory.path) if polling.memory.path else None,
        },
    }
    if as_json:
        echo_json(data)
        return
    found = f"from {settings.key_source} ({key.hint()})"
    rows = [
        ("api key", found if key else f"not set: {CLI_MISSING_KEY}"),
        ("", "looked up in order: " + ", ".join(KEY_ORDER)),
        ("base url", f"{settings.base_url} (from {settings.base_url_source})"),
        (
            "timeouts",
            f"submit {settings.submit_timeout.read:g} s, other calls {settings.timeout.read:g} s",
        ),
        ("outage budget", f"{retry.outage_budget:g} s (a job's calls are retried this long)"),
        ("schema path", data["schema_path"] or "(RUNCOMFY_SCHEMA_PATH not set)"),
        (
            "polling",
            f"at most every {polling.settings.interval:g} s on average; learned running times "
            + (
                f"kept in {polling.memory.path}"
                if polling.memory.path
                else "kept in this process only (RUNCOMFY_NO_CACHE, or a server on loopback)"
            ),
        ),
    ]
    for name, value in rows:
        click.echo(f"{name:<14}{value}")
