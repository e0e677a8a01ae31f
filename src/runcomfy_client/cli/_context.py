"""What every command builds from the group's options: the registry, the API key, the client.

Built once per invocation and kept on the root context (``--schemas``, ``--api-key-file``,
``--base-url``, the download options), so each schema is compiled and the key file read once.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, overload

import click

from .._keys import KeyFile, read_key_file

if TYPE_CHECKING:
    from .._client import AsyncClient, Client
    from .._registry import Registry

__all__ = [
    "API_KEY_FILE_ENV",
    "CLI_MISSING_KEY",
    "client_from",
    "read_api_key",
    "registry_from",
    "root_options",
]

API_KEY_FILE_ENV = "RUNCOMFY_API_KEY_FILE"
# What the CLI tells someone with no key: its own ways, not the library's api_key=.
CLI_MISSING_KEY = (
    "set RUNCOMFY_API_KEY (or RUNCOMFY_API_TOKEN / RUNCOMFY_TOKEN), give a file with "
    "--api-key-file PATH (or RUNCOMFY_API_KEY_FILE), or pipe it in with --api-key-file -"
)


def root_options(ctx: click.Context) -> dict[str, object]:
    """The group's options and what was built from them (empty outside the group)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, dict) else {}


def read_api_key(obj: dict[str, object]) -> KeyFile | None:
    """The key from ``--api-key-file`` (or RUNCOMFY_API_KEY_FILE; ``-`` for stdin), read once
    per invocation and checked; None when neither is given (the environment's key is used).

    Keys never go on the command line (shell history, ``ps``); a file or a pipe keeps them out.
    """
    if "api_key" in obj:
        known = obj["api_key"]
        return known if isinstance(known, KeyFile) else None
    option = obj.get("api_key_file")
    path = (option if isinstance(option, str) else None) or os.environ.get(API_KEY_FILE_ENV)
    found = None
    if path:
        read = read_key_file(path)
        label = "--api-key-file" if option else API_KEY_FILE_ENV
        source = f"{label} (stdin)" if path == "-" else f"{label} {path}"
        found = KeyFile(read.key, source, read.warning)
        if read.warning:
            click.echo(f"warning: {read.warning}", err=True)
    obj["api_key"] = found
    return found


def registry_from(ctx: click.Context) -> Registry:
    """The command's registry: built once per invocation, so each schema is compiled once."""
    from .._registry import Registry

    obj = ctx.find_root().obj
    if not isinstance(obj, dict):
        return Registry()
    registry = obj.get("registry")
    if not isinstance(registry, Registry):
        folders = obj.get("schema_dirs") or ()
        registry = obj["registry"] = Registry([str(f) for f in folders])
    return registry


@overload
def client_from(ctx: click.Context, *, asynchronous: Literal[False] = False) -> Client: ...
@overload
def client_from(ctx: click.Context, *, asynchronous: Literal[True]) -> AsyncClient: ...
def client_from(ctx: click.Context, *, asynchronous: bool = False) -> Client | AsyncClient:
    """A Client (or AsyncClient) configured from the environment and the group's options."""
    from .._client import AsyncClient, Client
    from .._protocol import check_base_url
    from ._download_opts import download_policy

    obj = root_options(ctx)
    key = read_api_key(obj)
    given = obj.get("base_url")
    base_url = given if isinstance(given, str) and given else None
    if base_url:
        check_base_url(base_url, "--base-url")  # its errors name the option
    cls = AsyncClient if asynchronous else Client
    client = cls(
        api_key=key.key if key else None,
        base_url=base_url,
        registry=registry_from(ctx),
        downloads=download_policy(ctx),
    )
    settings = client._settings
    client._settings = settings.relabel(
        key_source=key.source if key else settings.key_source,
        base_url_source="--base-url" if base_url else settings.base_url_source,
        missing_key_help=CLI_MISSING_KEY,
    )
    return client
