"""Formatting generated sources with ruff, the same way in every environment.

ruff runs ``--isolated`` with the settings spelled out here, so neither the user's nor this
project's configuration changes the bytes; one call formats a whole staging folder.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["format_sources"]

LINE_LENGTH = 100


def _ruff(*args: str, cwd: Path) -> None:
    command = [sys.executable, "-m", "ruff", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"ruff {args[0]} failed on generated code:\n{done.stdout}{done.stderr}")


def format_sources(sources: Mapping[str, str], first_party: list[str]) -> dict[str, str]:
    """Sort imports and format every source (relative path -> text); returns the new texts."""
    if not sources:
        return {}
    settings = [
        "--isolated",
        "--line-length",
        str(LINE_LENGTH),
        "--target-version",
        "py310",
    ]
    isort = [
        "--config",
        f"lint.isort.known-first-party = {sorted(first_party)!r}".replace("'", '"'),
    ]
    with tempfile.TemporaryDirectory(prefix="runcomfy-codegen-") as tmp:
        root = Path(tmp)
        for relative, text in sources.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        # Imports first (datamodel-code-generator does not sort them), then layout.
        _ruff("check", *settings, *isort, "--select", "I", "--fix", "--quiet", ".", cwd=root)
        _ruff("format", *settings, "--quiet", ".", cwd=root)
        return {relative: (root / relative).read_text(encoding="utf-8") for relative in sources}
