"""The jinja2 side: the wrapper module of a model, package ``__init__`` files, the index.

Templates receive schema text only as data, and emit it only through the ``py`` (``repr``) and
``doc`` (escaped docstring) filters; identifiers are checked before they reach a template.
"""

from __future__ import annotations

import keyword
import textwrap
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from runcomfy_client._docs import field_summary
from runcomfy_client._registry import DEFAULT_OUTPUT_SCHEMA, ModelSchema

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
    types: Mapping[str, str],
    type_imports: Mapping[str, frozenset[str]],
) -> tuple[str, list[str]]:
    """The wrapper module's source, and notes for the person generating (dropped options)."""
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
    fields = [
        {"name": identifier(f.name), "key": f.key, "type": types[f.key], "required": f.required}
        for f in model.fields
    ]
    field_docs = [(f.name, field_summary(f)) for f in model.fields]
    quoted = f"``{model.model_id}``"
    not_given = (
        "Keywords left ``NOT_GIVEN`` are not sent: the server's default applies. Invalid input "
        "raises ``InputValidationError`` (every problem at once) and nothing is sent."
    )
    wrapped_note = textwrap.wrap(not_given, width=_WIDTH)
    client_doc = [(client, "The client to send with.")]
    async_client_doc = [(client, "The async client to send with.")]
    option_docs = [(option, RUN_OPTIONS[option]) for option in run_options]
    context = {
        "header": header,
        "module_doc": _module_doc(model),
        "needs_os": "download_to" in run_options,
        "type_imports": sorted((module, sorted(names)) for module, names in type_imports.items()),
        "input_module": identifier(input_module),
        "uses_input_module": any("_input." in text for text in types.values()),
        "model_id": model.model_id,
        "schema": model.raw,
        "output_schema": (
            None
            if dict(model.output_schema) == dict(DEFAULT_OUTPUT_SCHEMA)
            else model.output_schema
        ),
        "client": client,
        "fields": fields,
        "run_options": run_options,
        "submit_doc": _function_doc(
            [f"Validate and submit one {quoted} job; return its handle at once.", *wrapped_note],
            client_doc + field_docs,
            "The RequestHandle: ``status()``, ``wait()``, ``cancel()``, ``result()``.",
        ),
        "run_doc": _function_doc(
            [f"Validate, submit and wait for one {quoted} job.", *wrapped_note],
            client_doc + field_docs + option_docs,
            "The finished job's result (raises JobFailedError / JobCancelledError otherwise).",
        ),
        "submit_async_doc": _function_doc(
            [f"Validate and submit one {quoted} job; return its handle at once.", *wrapped_note],
            async_client_doc + field_docs,
            "The AsyncRequestHandle: ``status()``, ``wait()``, ``cancel()``, ``result()``.",
        ),
        "run_async_doc": _function_doc(
            [f"Validate, submit and wait for one {quoted} job.", *wrapped_note],
            async_client_doc + field_docs + option_docs,
            "The finished job's result (raises JobFailedError / JobCancelledError otherwise).",
        ),
    }
    return str(_environment().get_template("model.py.j2").render(context)), notes


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
        "``Input`` is the pydantic model of its inputs (readable names, wire keys as aliases);",
        "``SCHEMA`` the published schema it was generated from.",
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
