"""Optional features and the extras that install them, named in one place.

A feature whose packages are missing says which extra brings them, before it starts, instead
of failing later in a way that blames something else (a schema, an import deep inside).
"""

from __future__ import annotations

import importlib.util

from ._errors import MissingExtraError

__all__ = ["EXTRAS", "require_extra"]

# extra -> (module to import, the distribution that provides it)
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "codegen": (
        ("datamodel_code_generator", "datamodel-code-generator"),
        ("jinja2", "jinja2"),
        ("ruff", "ruff"),
    ),
    "emulator": (("aiohttp", "aiohttp"), ("av", "av"), ("numpy", "numpy"), ("PIL", "pillow")),
    "s3": (("boto3", "boto3"),),
}


def require_extra(extra: str, feature: str) -> None:
    """Raise MissingExtraError naming ``extra`` when a package ``feature`` needs is missing."""
    for module, distribution in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken or half-removed install
            found = False
        if not found:
            raise MissingExtraError(extra, feature, distribution)
