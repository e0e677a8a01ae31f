"""ARCHITECTURE.md stays true: every module is placed in a layer, imports point down, flows do no I/O.

Imports are read from the source (ast), including imports inside functions (a lazy import is
still a dependency); imports under ``if TYPE_CHECKING:`` are annotations only and not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import runcomfy_client

PACKAGE = Path(runcomfy_client.__file__).parent
ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "ARCHITECTURE.md"

# The layers of ARCHITECTURE.md, lowest first. A module may import its own layer and lower ones.
LAYERS: dict[str, set[str]] = {
    "rules": {
        "_errors", "_types", "_not_given", "_version", "_retry", "_naming", "_problem", "_keys",
        "_model_ids", "_output_kind", "_schema_limits", "_sidecar", "_media_files",
        "_media_inputs", "_extras", "_throttle", "_polling_memory",
    },
    "schemas": {
        "_dialect", "_schema_files", "_schema_store", "_registry", "_validation", "_file_checks",
        "_docs", "_model_docs", "_model_info", "_pricing", "_pages", "_comfy", "_derive",
        "_overlay", "_overrides",
    },
    "protocol": {
        "_protocol", "_waiting", "_polling", "_remote_catalog", "_download_policy",
    },
    "flows": {"_flow", "_lifecycle", "_download_flow", "_deployments", "_deployment_jobs"},
    "drivers": {"_drivers", "_budget", "_download", "_fast_get", "_tls"},
    "doors": {
        "_core", "_client", "batch", "_journal", "_out_folder", "typed", "webhooks", "uploaders",
        "_sync", "pytest_plugin", "__init__",
    },
    "cli": {"cli", "__main__"},
}  # fmt: skip
ORDER = list(LAYERS)
# The flows and the protocol decide; they never touch the network, the event loop or the clock
# except through effects (a default clock function may be named, never slept on).
NO_IO = LAYERS["protocol"] | LAYERS["flows"]
IO_MODULES = {"socket", "asyncio", "selectors", "subprocess"}  # ssl: its exceptions are read


def _layer_of(module: str) -> str:
    top = module.split(".", maxsplit=1)[0]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    raise AssertionError(f"{module} is in no layer: place it in ARCHITECTURE.md and LAYERS")


def _modules() -> dict[str, Path]:
    """Every module of the package but the emulator's (checked by test_emulator_independence)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] == "emulator":
            continue
        found[".".join(rel.parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``."""
    kept: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        kept.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return kept


def _imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(package modules imported, other top-level modules imported) by ``module``."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    ours: set[str] = set()
    others: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name.startswith("runcomfy_client."):
                    ours.add(name.removeprefix("runcomfy_client."))
                elif name != "runcomfy_client":
                    others.add(name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name.startswith("runcomfy_client."):
                    ours.add(name.removeprefix("runcomfy_client."))
                elif name == "runcomfy_client":
                    ours.add("__init__")
                else:
                    others.add(name.split(".")[0])
                continue
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                ours.add(".".join([*base, node.module]))
            else:
                for alias in node.names:
                    candidate = ".".join([*base, alias.name])
                    is_module = (PACKAGE / Path(*candidate.split("."))).with_suffix(".py")
                    ours.add(candidate if is_module.is_file() else ".".join(base) or "__init__")
    return ours, others


def test_every_module_is_named_in_architecture_md() -> None:
    text = ARCHITECTURE.read_text()
    missing = [
        name
        for name in _modules()
        if "." not in name and name not in {"__main__"} and f"`{name}`" not in text
    ]
    assert not missing, f"ARCHITECTURE.md does not name {missing}"
    assert "`cli/`" in text and "`emulator/`" in text


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, path in _modules().items():
        here = ORDER.index(_layer_of(module))
        for imported in _imports(module, path)[0]:
            if imported.split(".")[0] == "emulator":
                continue
            there = ORDER.index(_layer_of(imported))
            if there > here:
                upward.append(f"{module} ({ORDER[here]}) imports {imported} ({ORDER[there]})")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_flows_and_protocol_do_no_io() -> None:
    found = []
    for module, path in _modules().items():
        if module not in NO_IO:
            continue
        ours, others = _imports(module, path)
        found += [f"{module} imports {name}" for name in sorted(others & IO_MODULES)]
        found += [f"{module} imports {name}" for name in sorted(ours & LAYERS["drivers"])]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "sleep":
                found.append(f"{module} line {node.lineno}: {ast.unparse(node)}")
    assert not found, "I/O in a module that must only decide:\n" + "\n".join(found)


def test_the_checks_see_a_violation() -> None:
    """The import reader finds lazy imports and skips TYPE_CHECKING ones (else the tests above
    could pass by reading nothing)."""
    ours, others = _imports("_client", PACKAGE / "_client.py")
    assert "_lifecycle" in ours and "httpx" in others
    ours, others = _imports("_drivers", PACKAGE / "_drivers.py")
    assert "_flow" in ours and "_download" in ours  # imported inside a method
    assert "asyncio" in others  # imported inside a method, not only under TYPE_CHECKING
