"""The jinja2 side: the wrapper module of a model, package ``__init__`` files, the index.

Templates receive schema text only as data, and emit it only through the ``py`` (``repr``) and
``doc`` (escaped docstring) filters; identifiers are checked before they reach a template.
"""

from __future__ import annotations

import ast
import keyword
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from runcomfy_client._docs import field_summary
from runcomfy_client._registry import ModelSchema

from ._literals import docstring, py_literal

__all__ = ["RUN_OPTIONS", "render_index", "render_model", "render_package"]

# Keywords `run` takes besides the fields, in order, with what the docstring says of each.
RUN_OPTIONS: Mapping[str, str] = {
    "timeout": "Whole-job deadline in seconds (None: wait as long as it takes).",
    "cancel_on_timeout": "Cancel the job at the deadline if it is still queued.",
    "on_status": "Called with each new status (Queued, InProgress, ...).",
    "download_to": "Folder to save the outputs in; the result's ``files`` lists them.",
    "on_progress": "Called with download progress while saving outputs.",
}
_WIDTH = 96


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runcomfy_codegen", "templates"),
        autoescape=False,  # noqa: S701 - the output is Python, not HTML; see the filters
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py_literal
    env.filters["doc"] = docstring
    return env


def identifier(name: str) -> str:
    """``name`` if it is a plain, non-keyword Python identifier (else ValueError)."""
    if not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise ValueError(f"{name!r} is not usable as a Python identifier")
    return name


def _args_section(entries: Sequence[tuple[str, str]], indent: str) -> list[str]:
    lines = ["Args:"]
    for name, text in entries:
        lines += textwrap.wrap(
            f"{name}: {text}",
            width=_WIDTH,
            initial_indent="    ",
            subsequent_indent="        ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [f"    {name}:"]
    return [indent + line if line else line for line in lines]


def _function_doc(summary: Sequence[str], entries: Sequence[tuple[str, str]], returns: str) -> str:
    indent = "    "
    body = [summary[0], ""]
    body += [indent + line if line else "" for line in summary[1:]]
    if len(summary) > 1:
        body.append("")
    body += _args_section(entries, indent)
    body += ["", indent + "Returns:", indent + "    " + returns, indent]
    return "\n".join(body)


def render_model(
    model: ModelSchema,
    *,
    header: str,
    input_module: str,
    data_file: str,
    types: Mapping[str, str],
    type_imports: Mapping[str, frozenset[str]],
) -> tuple[str, list[str]]:
    """The wrapper module's source, and notes for the person generating (dropped options).

    The inputs are written once, as the documented ``Inputs`` TypedDict that ``submit``, ``run``
    and their async twins take as ``**inputs``; each enum is a named ``Literal`` alias.
    """
    names = {f.name for f in model.fields}
    client = "client" if "client" not in names else "client_"
    while client in names:
        client += "_"
    run_options = [option for option in RUN_OPTIONS if option not in names]
    notes = [
        f"{model.model_id}: field {option!r} hides run()'s option of that name; "
        "call submit() and use the handle's wait() and the result's download() instead"
        for option in RUN_OPTIONS
        if option in names
    ]
    aliases = _Aliases(taken=names | _MODULE_NAMES | {client})
    fields = [
        {
            "name": identifier(f.name),
            "type": aliases.named(f.name, types[f.key], f.title or f.name),
            "required": f.required,
            "doc": _attribute_doc(f"{field_summary(f)} Wire key: ``{f.key}``."),
        }
        for f in model.fields
    ]
    quoted = f"``{model.model_id}``"
    inputs_note = textwrap.wrap(
        "The inputs are keywords, described once in :class:`Inputs`. One left out is not sent: the "
        "server's default applies. Invalid input raises ``InputValidationError`` (every problem "
        "at once) and nothing is sent.",
        width=_WIDTH,
    )
    option_docs = [(option, RUN_OPTIONS[option]) for option in run_options]
    context = {
        "header": header,
        "module_doc": _module_doc(model),
        "needs_os": "download_to" in run_options,
        "type_imports": sorted((module, sorted(names)) for module, names in type_imports.items()),
        "input_module": identifier(input_module),
        "uses_input_module": any("_input." in text for text in types.values()),
        "model_id": model.model_id,
        "exports": sorted(
            ["MODEL", "MODEL_ID", "SCHEMA", "Input", "Inputs", *aliases.names, *_FUNCTIONS],
            key=lambda name: (0 if name.isupper() else 1 if name[0].isupper() else 2, name),
        ),  # isort's order (constants, classes, functions), as ruff wants __all__
        "aliases": aliases.entries,
        "any_required": any(f.required for f in model.fields),
        "inputs_doc": _class_doc(model),
        "data_file": data_file,
        "client": client,
        "fields": fields,
        "run_options": run_options,
        "submit_doc": _function_doc(
            [f"Validate and submit one {quoted} job; return its handle at once.", *inputs_note],
            [(client, "The client to send with.")],
            "The RequestHandle: ``status()``, ``wait()``, ``cancel()``, ``result()``.",
        ),
        "run_doc": _function_doc(
            [f"Validate, submit and wait for one {quoted} job.", *inputs_note],
            [(client, "The client to send with."), *option_docs],
            "The finished job's result (raises JobFailedError / JobCancelledError otherwise).",
        ),
        "submit_async_doc": _function_doc(
            [f"Validate and submit one {quoted} job; return its handle at once.", *inputs_note],
            [(client, "The async client to send with.")],
            "The AsyncRequestHandle: ``status()``, ``wait()``, ``cancel()``, ``result()``.",
        ),
        "run_async_doc": _function_doc(
            [f"Validate, submit and wait for one {quoted} job.", *inputs_note],
            [(client, "The async client to send with."), *option_docs],
            "The finished job's result (raises JobFailedError / JobCancelledError otherwise).",
        ),
    }
    return str(_environment().get_template("model.py.j2").render(context)), notes


_FUNCTIONS = ("run", "run_async", "submit", "submit_async")
# Names the wrapper module defines or imports: an enum alias never takes one of them.
_MODULE_NAMES = frozenset(
    {
        "MODEL", "MODEL_ID", "SCHEMA", "Input", "Inputs", "run", "run_async", "submit",
        "submit_async", "Any", "Final", "Literal", "TypeAlias", "Mapping", "Required",
        "TypedDict", "Unpack", "AsyncClient", "AsyncRequestHandle", "AsyncResult", "Client",
        "RequestHandle", "SyncResult", "ProgressCallback", "StatusCallback", "TypedModel", "os",
        "annotations", "_input",
    }
)  # fmt: skip


class _Aliases:
    """Named ``Literal`` aliases for the enums in field types (``Resolution = Literal[...]``)."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)
        self.names: list[str] = []
        self.entries: list[dict[str, str]] = []

    def named(self, field_name: str, type_text: str, title: str) -> str:
        """``type_text`` with each ``Literal[...]`` in it replaced by a new alias's name."""
        tree = ast.parse(type_text, mode="eval")
        base = "".join(part.capitalize() for part in field_name.split("_") if part) or "Choice"
        aliases = self

        class _Swap(ast.NodeTransformer):
            def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
                if isinstance(node.value, ast.Name) and node.value.id == "Literal":
                    name = aliases._fresh(base)
                    aliases.entries.append(
                        {
                            "name": name,
                            "type": ast.unparse(node),
                            "doc": f"The choices of ``{field_name}`` ({title}).",
                        }
                    )
                    return ast.Name(id=name, ctx=ast.Load())
                self.generic_visit(node)
                return node

        return ast.unparse(_Swap().visit(tree))

    def _fresh(self, base: str) -> str:
        name, number = base, 1
        while name in self.taken or not name.isidentifier() or keyword.iskeyword(name):
            number += 1
            name = f"{base}{number}"
        self.taken.add(name)
        self.names.append(name)
        return name


def _attribute_doc(text: str) -> str:
    """A field's docstring in the class body, wrapped (continuation lines indented)."""
    lines = textwrap.wrap(text, width=_WIDTH - 4, break_long_words=False, break_on_hyphens=False)
    if len(lines) <= 1:
        return text
    return "\n    ".join([*lines, ""])


def _class_doc(model: ModelSchema) -> str:
    lines = [
        f"The inputs of ``{model.model_id}``, by readable name.",
        "",
        "    Leave an input out and it is not sent: the server's default applies.",
        "    ",
    ]
    return "\n".join(lines)


def _module_doc(model: ModelSchema) -> str:
    lines = [f"Typed wrappers for ``{model.model_id}``: ``submit``, ``run`` and async twins.", ""]
    info = model.info
    if info is not None and info.deployment is None:
        said = [info.display_name or model.model_id]
        if info.categories:
            said.append(f"categories: {', '.join(info.categories)}")
        said.append(f"price: {info.price_line()}")
        lines += [*textwrap.wrap("; ".join(said) + ".", width=_WIDTH), ""]
    if model.description:
        lines += [*textwrap.wrap(" ".join(model.description.split()), width=_WIDTH), ""]
    lines += [
        "``Inputs`` lists and documents the inputs once; ``submit``, ``run`` and their async",
        "twins take them as keywords. ``Input`` is the pydantic model of the same inputs (readable",
        "names, wire keys as aliases); ``SCHEMA`` the published schema, loaded from the JSON file",
        "beside this module.",
        "",
    ]
    return "\n".join(lines)


def render_package(header: str, title: str, members: Sequence[str]) -> str:
    """An ``__init__.py`` for a folder of generated modules (documents what is inside)."""
    lines = [title, "", *(f"- ``{member}``" for member in members), ""]
    template = _environment().get_template("package.py.j2")
    return str(template.render(header=header, module_doc="\n".join(lines)))


def render_index(header: str, package: str, models: Mapping[str, str]) -> str:
    """The package root: ``MODELS`` (id -> module) and ``load(model_id)``."""
    example = next(iter(models.items()), ("vendor/model", f"{package}.vendor.model"))
    lines = [
        "Typed wrappers generated by runcomfy-client codegen, one module per model.",
        "",
        f"A model id maps to a module path: ``{example[0]}`` is",
        f"``{example[1]}``. ``MODELS`` lists them all;",
        "``load(model_id)`` imports one by id.",
        "",
    ]
    template = _environment().get_template("index.py.j2")
    return str(template.render(header=header, module_doc="\n".join(lines), models=dict(models)))
