"""The emulator is a second reading of the API: it must not judge requests with client code.

Every module of the emulator package, and everything they import from runcomfy_client in
turn, is read for its imports; none may reach the client's validation, naming, dialect,
registry, protocol or client modules. The only client modules it may use are pure and shared
on purpose: the output kind rule (also behind ``describe``), where schema files live, and the
sidecar file format (a JSON object beside a schema, read without judging anything).
"""

from __future__ import annotations

import ast
from pathlib import Path

import runcomfy_client

PACKAGE = Path(runcomfy_client.__file__).parent
# The pytest plugin hands out clients pointed at the emulator: it is the one place allowed
# to import the client, and the server never imports it.
EXEMPT = {"runcomfy_client.emulator.pytest_plugin"}
ALLOWED = {
    "runcomfy_client._output_kind",
    "runcomfy_client._schema_files",
    "runcomfy_client._sidecar",
}


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / rel / "__init__.py", (PACKAGE / rel).with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path) -> set[str]:
    """The runcomfy_client modules one module imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            # `from . import _x` imports a module too.
            found |= {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    return {m for m in found if m == "runcomfy_client" or m.startswith("runcomfy_client.")}


def _reachable() -> dict[str, str]:
    """Every runcomfy_client module the emulator reaches, with who imported it first."""
    start = [
        f"runcomfy_client.emulator.{p.stem}" if p.stem != "__init__" else "runcomfy_client.emulator"
        for p in (PACKAGE / "emulator").glob("*.py")
    ]
    seen = {name: "(emulator)" for name in start if name not in EXEMPT}
    todo = list(seen)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        assert path is not None, name
        for imported in _imports(name, path):
            if imported not in seen and imported not in EXEMPT:
                seen[imported] = name
                todo.append(imported)
    return seen


def test_the_emulator_imports_no_client_code() -> None:
    reached = _reachable()
    outside = {
        module: by
        for module, by in reached.items()
        if not module.startswith("runcomfy_client.emulator")
        and module not in ALLOWED
        # The package itself is only the namespace the emulator lives in.
        and module != "runcomfy_client"
    }
    assert outside == {}, f"the emulator imports client modules: {outside}"
    assert "runcomfy_client._output_kind" in reached  # the rule really is shared


def test_the_check_finds_forbidden_imports(tmp_path: Path) -> None:
    # The walker itself must see a relative import of a client module (a test that can fail).
    source = tmp_path / "probe.py"
    source.write_text("from .. import _validation\nfrom .._registry import Registry\n")
    found = _imports("runcomfy_client.emulator.probe", source)
    assert {"runcomfy_client._validation", "runcomfy_client._registry"} <= found
