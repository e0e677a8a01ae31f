"""Hostile schemas through the generator: the output compiles, imports, and runs nothing injected.

Schema text (keys, titles, descriptions, enum values, defaults) is drawn from quoting tricks,
template delimiters and code that would leave a mark on disk if it ever ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcomfy_client import SchemaError
from runcomfy_codegen import generate
from runcomfy_codegen._literals import docstring, py_literal

from .fuzzing import examples

MARK = "PWNED_MARK"
# Each, if pasted raw into Python or a template, would create the file MARK in the cwd.
PAYLOADS = [
    f"__import__('pathlib').Path('{MARK}').touch()",
    f"'); __import__('pathlib').Path('{MARK}').touch(); ('",
    f'"); __import__("pathlib").Path("{MARK}").touch(); ("',
    f'"""\n__import__("pathlib").Path("{MARK}").touch()\n"""',
    f"'''\n__import__('pathlib').Path('{MARK}').touch()\n'''",
    f"\\\"\"\"; __import__('pathlib').Path('{MARK}').touch() #",
    f"{{{{ ''.__class__ }}}}{{% raw %}}{{# x #}}{{{{ cycler.__init__.__globals__.os.system('touch {MARK}') }}}}",
    f"\n# comment\nimport pathlib; pathlib.Path('{MARK}').touch()\n",
    "\\",
    "\\\\\\",
    '"',
    "'''\"\"\"",
    "\x00\x1b\u2028\u2029\r\n\t",
    "é ∑ 𝔘 😀",
    "",
    # Names that would clash with the generated code's own: pydantic attributes, our methods,
    # the wrappers' parameters.
    "Model Config",
    "Schema",
    "to_payload",
    "Client",
    "Timeout",
    "download to",
    "Input",
]

hostile_text = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(alphabet=st.sampled_from(list("\"'\\{}%#\n\r\t x(;)_:.")), max_size=12),
    st.text(max_size=8),
)


@st.composite
def hostile_schemas(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=4))
    properties: dict[str, Any] = {}
    for index in range(count):
        key = f"{index}_" + draw(hostile_text)
        kind = draw(st.sampled_from(["string", "integer", "float", "boolean", "enum"]))
        prop: dict[str, Any] = {
            "title": draw(hostile_text),
            "description": draw(hostile_text),
        }
        if kind == "enum":
            prop["type"] = "string"
            prop["enum"] = draw(st.lists(hostile_text, min_size=1, max_size=3, unique=True))
            prop["default"] = prop["enum"][0]
        else:
            prop["type"] = kind
            if kind == "string":
                prop["default"] = draw(hostile_text)
        properties[key] = prop
    required = draw(st.lists(st.sampled_from(sorted(properties)), unique=True, max_size=2))
    return {
        "type": "object",
        "title": draw(hostile_text),
        "description": draw(hostile_text),
        "required": required,
        "properties": properties,
    }


CHECK = textwrap.dedent(
    """
    import importlib, json, pathlib, sys
    index = importlib.import_module("fuzz_models")
    for model_id, name in index.MODELS.items():
        module = importlib.import_module(name)
        published = json.loads(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"))
        assert module.SCHEMA == published, "SCHEMA differs from the file"
        assert module.MODEL_ID == model_id
        docs = [module.run.__doc__, module.submit.__doc__, module.__doc__]
        assert all(isinstance(doc, str) for doc in docs)
        assert set(module.Input.model_fields) == {f.name for f in module.MODEL.schema.fields}
    print("ok")
    """
)


@settings(
    max_examples=examples(30, quick=4),  # each one imports its module in a new Python
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schema=hostile_schemas())
def test_hostile_schemas_generate_inert_importable_code(
    tmp_path_factory: Any, schema: dict[str, Any]
) -> None:
    root: Path = tmp_path_factory.mktemp("fuzz")
    schema_file = root / "schemas" / "fuzz" / "model.json"
    schema_file.parent.mkdir(parents=True)
    schema_file.write_text(json.dumps(schema), encoding="utf-8")
    refused: SchemaError | None = None
    try:
        generate(root / "schemas", root / "out", "fuzz_models")
    except SchemaError as exc:
        refused = exc
    if refused is not None:
        # Refusing is allowed, but only with a message naming the file.
        assert "model.json" in str(refused)
        return
    assert not (root / MARK).exists() and not Path(MARK).exists()
    for path in (root / "out").rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(schema_file)],
        cwd=root,
        env={"PYTHONPATH": str(root / "out"), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (root / MARK).exists(), "code from the schema ran on import"


@given(text=st.one_of(st.sampled_from(PAYLOADS), st.text()))
def test_docstring_and_literal_round_trip_any_text(text: str) -> None:
    import ast

    assert ast.literal_eval(docstring(text)) == text
    assert ast.literal_eval(py_literal(text)) == text
    assert ast.literal_eval(py_literal({"k": [text, 1, 2.5, None, True]})) == {
        "k": [text, 1, 2.5, None, True]
    }
