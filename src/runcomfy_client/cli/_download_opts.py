"""The download options shared by ``run``, ``result`` and ``batch``.

They are remembered on the root context as they are parsed (``expose_value=False``), and
``client_from`` builds the client's ``DownloadPolicy`` from them: no command has to pass them on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._download_policy import DEFAULT_MAX_BYTES, RUNCOMFY_OUTPUT_HOSTS, DownloadPolicy

__all__ = ["download_options", "download_policy", "parse_size"]

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_KEY = "download_options"

F = TypeVar("F", bound=Callable[..., Any])


def parse_size(text: str) -> int:
    """Bytes from ``2G``, ``500M``, ``1.5GiB`` or ``1048576`` (K, M, G, T: powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 2G, 1048576)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError(f"{text!r} is not a positive size")
    return size


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    root = ctx.find_root()
    root.ensure_object(dict)
    root.obj.setdefault(_KEY, {})[param.name] = value


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        _remember(ctx, param, None)
        return
    try:
        _remember(ctx, param, parse_size(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _specs() -> list[tuple[list[str], dict[str, Any]]]:
    default = DEFAULT_MAX_BYTES // 1024**3
    hosts = " ".join(repr(h) for h in RUNCOMFY_OUTPUT_HOSTS)
    return [
        (
            ["--max-download-size", "max_download_size"],
            {
                "metavar": "SIZE",
                "callback": _size,
                "help": f"Refuse an output file larger than SIZE (e.g. 500M, 4G; default "
                f"{default}G).",
            },
        ),
        (
            ["--download-host", "download_hosts"],
            {
                "metavar": "PATTERN",
                "multiple": True,
                "callback": _remember,
                "help": "Download outputs only from hosts matching PATTERN (repeatable; "
                f"'*.example.com' also matches example.com). RunComfy's own: {hosts}.",
            },
        ),
        (
            ["--allow-private-downloads", "allow_private"],
            {
                "is_flag": True,
                "callback": _remember,
                "help": "Allow output URLs on private, link-local or loopback addresses "
                "(a media server on your own network).",
            },
        ),
    ]


def download_option_list() -> list[click.Option]:
    """The options themselves (for commands built from a list of parameters)."""
    return [click.Option(decls, expose_value=False, **kw) for decls, kw in _specs()]


def download_options(command: F) -> F:
    """Decorator: add the download options to a command."""
    for decls, kw in reversed(_specs()):
        command = click.option(*decls, expose_value=False, **kw)(command)
    return command


def download_policy(ctx: click.Context) -> DownloadPolicy | None:
    """The policy the command line asked for; None when no download option was given."""
    obj = ctx.find_root().obj or {}
    given = obj.get(_KEY) or {}
    hosts = tuple(given.get("download_hosts") or ()) or None
    size = given.get("max_download_size")
    private = bool(given.get("allow_private"))
    if hosts is None and size is None and not private:
        return None
    return DownloadPolicy(
        max_bytes=size if size is not None else DEFAULT_MAX_BYTES,
        allowed_hosts=hosts,
        allow_private=private,
    )
