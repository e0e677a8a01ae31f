"""Hostile schemas and model ids: nothing is fetched, nothing hangs, nothing crashes.

Each test reproduces one attack from the adversarial review: ``$ref``s to http and file URLs,
reference loops, deep nesting, huge numbers, backtracking patterns, ids with control
characters or no end. A refusal is always a SchemaError naming the file and JSON pointer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcomfy_client import InputValidationError, Registry, SchemaError
from runcomfy_client._registry import model_from_schema
from runcomfy_client._validation import compile_schema
from runcomfy_client.cli import cli

from .conftest import write_schema
from .fuzzing import examples


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared by the server's threads on purpose

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = json.dumps({"type": "string", "maxLength": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_server() -> Iterator[tuple[str, list[str]]]:
    _Counting.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counting.hits
    finally:
        server.shutdown()
        server.server_close()


def _schema(prop: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"text": prop}, **extra}


@pytest.mark.parametrize(
    "ref",
    ["{server}/schema.json", "file:///etc/passwd", "ftp://example.com/x.json", "other.json#/a"],
)
def test_a_ref_that_is_not_local_is_refused_with_file_and_pointer(
    ref: str, hostile_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = hostile_server
    path = write_schema(tmp_path, "acme/remote", _schema({"$ref": ref.format(server=url)}))
    with pytest.raises(SchemaError) as caught:
        Registry([tmp_path], use_env=False, include_bundled=False).get("acme/remote")
    assert caught.value.pointer == "/properties/text/$ref"
    assert str(path) in str(caught.value) and "not a local reference" in str(caught.value)
    added = CliRunner().invoke(
        cli,
        [
            "schema",
            "add",
            "acme/remote",
            "--from-file",
            str(path),
            "--schemas",
            str(tmp_path / "o"),
        ],
    )
    assert added.exit_code == 2 and "/properties/text/$ref" in added.stderr
    assert not (tmp_path / "o").exists()
    assert hits == []


def test_codegen_refuses_a_remote_ref_with_file_and_pointer(tmp_path: Path) -> None:
    pytest.importorskip("datamodel_code_generator")
    from runcomfy_codegen import generate

    write_schema(tmp_path / "s", "acme/remote", _schema({"$ref": "https://example.com/x.json"}))
    with pytest.raises(SchemaError) as caught:
        generate(tmp_path / "s", tmp_path / "out", "hostile_models")
    assert caught.value.pointer == "/properties/text/$ref"
    assert not (tmp_path / "out").exists()


def test_validation_never_retrieves_a_reference(
    hostile_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, hits = hostile_server
    secret = tmp_path / "secret.json"
    secret.write_text('{"const": "the secret content"}')
    for ref in (f"{url}/x.json", secret.as_uri()):
        compiled = compile_schema(_schema({"$ref": ref}))
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any refusal; never a fetch
            list(compiled.iter_errors({"text": "x"}))
        assert "the secret content" not in str(caught.value)
    assert hits == []


def test_local_refs_work_and_validate_through() -> None:
    model = model_from_schema(
        "acme/local",
        {
            "type": "object",
            "$defs": {"scale": {"type": "number", "maximum": 2}},
            "properties": {"scale": {"$ref": "#/$defs/scale"}},
        },
    )
    with pytest.raises(InputValidationError, match="3 is above the maximum 2"):
        model.validator.validate({"scale": 3})


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        (
            {
                "type": "object",
                "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                "properties": {"x": {"$ref": "#/$defs/a"}},
            },
            "/$ref",
        ),
        ({"type": "object", "$ref": "#", "properties": {}}, "/$ref"),
        (
            {"type": "object", "properties": {"x": {"$ref": "#/$defs/nowhere"}}},
            "/properties/x/$ref",
        ),
    ],
)
def test_a_reference_loop_or_a_dangling_reference_is_refused(
    schema: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        model_from_schema("acme/loop", schema)
    assert caught.value.pointer is not None and caught.value.pointer.endswith(pointer)


def test_a_recursive_schema_through_values_is_fine_and_deep_values_are_a_problem() -> None:
    model = model_from_schema(
        "acme/tree",
        {
            "type": "object",
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                }
            },
            "properties": {"tree": {"$ref": "#/$defs/node"}},
        },
    )
    assert model.validator.validate({"tree": {"kids": [{"kids": []}]}})
    deep: dict[str, Any] = {"kids": []}
    for _ in range(5000):
        deep = {"kids": [deep]}
    with pytest.raises(InputValidationError, match="nested too deeply"):
        model.validator.validate({"tree": deep})


def test_deep_nesting_huge_numbers_and_huge_files_are_refused(tmp_path: Path) -> None:
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        nested = {"type": "array", "items": nested}
    cases = {
        "deep": json.dumps(_schema(nested)),
        "deeper-than-json": '{"type": "object", "properties": {"a": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}",
        "digits": '{"type": "object", "properties": {"a": {"type": "integer", "maximum": 1'
        + "0" * 5000
        + "}}}",
        "big": json.dumps(_schema({"type": "string", "description": "x" * (5 * 1024 * 1024)})),
    }
    for name, text in cases.items():
        write_schema(tmp_path, f"acme/{name}", text)
    registry = Registry([tmp_path], use_env=False, include_bundled=False)
    messages = {}
    for name in cases:
        with pytest.raises(SchemaError) as caught:
            registry.get(f"acme/{name}")
        messages[name] = str(caught.value)
    assert "nested more than 64 levels" in messages["deep"]
    assert "nested too deeply" in messages["deeper-than-json"]
    assert "not usable JSON" in messages["digits"]
    assert "larger than 4 MiB" in messages["big"]
    checked = CliRunner().invoke(cli, ["schema", "check", str(tmp_path)])
    assert checked.exit_code == 1 and "4 invalid" in checked.stdout


def test_a_backtracking_pattern_cannot_stall_validation() -> None:
    model = model_from_schema(
        "acme/pattern",
        _schema({"type": "string", "pattern": "^(a|a)*$"}),
    )
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"text": "a" * 40 + "!"})
    assert "could not be checked against the pattern '^(a|a)*$' within 0.1 s" in str(caught.value)
    assert model.validator.validate({"text": "aaaa"}) == {"text": "aaaa"}
    with pytest.raises(InputValidationError, match="does not match the pattern"):
        model.validator.validate({"text": "b"})


@pytest.mark.parametrize(
    ("model_id", "why"),
    [
        ("acme/model\n", "control or invisible character"),
        ("acme/" + "m" * 5000, "characters long"),
        ("acme/a:b", "cannot be part of a file name"),
        ("acme/ padded", "starts or ends with a space"),
        ("../escape", "starts with '.'"),
    ],
)
def test_schema_add_refuses_an_unusable_model_id(model_id: str, why: str, tmp_path: Path) -> None:
    source = write_schema(tmp_path, "s", {"type": "object", "properties": {}})
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["schema", "add", model_id, "--from-file", str(source), "--schemas", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "is not a model id" in result.stderr and why in result.stderr
    assert not out.exists()


def test_a_schema_file_whose_name_is_not_a_model_id_is_refused_by_the_registry(
    tmp_path: Path,
) -> None:
    write_schema(tmp_path, "acme/bell\x07", {"type": "object", "properties": {}})
    registry = Registry([tmp_path], use_env=False, include_bundled=False)
    with pytest.raises(SchemaError, match="not a usable model id"):
        registry.get("acme/bell\x07")
    assert model_from_schema("minimax/Hailuo Video 01 Live", {"type": "object", "properties": {}})


# -- fuzzing: hostile structure never escapes as anything but SchemaError ---------------------


_refs = st.sampled_from(
    [
        "#",
        "#/",
        "#/properties",
        "#/$defs/a",
        "#/$defs/b",
        "#/properties/x",
        "#a",
        "http://x/y",
        "",
        "#/%24defs/a",
    ]
)
_schemas = st.recursive(
    st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=5)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "$ref",
                    "type",
                    "allOf",
                    "not",
                    "items",
                    "$defs",
                    "a",
                    "b",
                    "x",
                    "properties",
                    "$anchor",
                ]
            ),
            st.one_of(children, _refs),
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas)
def test_any_structure_loads_or_is_refused_as_a_schema_error(body: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"x": body},
        "$defs": {"a": body, "b": {"$ref": "#/$defs/a"}},
    }
    try:
        model = model_from_schema("acme/fuzz", schema)
    except SchemaError:
        return
    # What loads validates without recursing for ever or fetching anything.
    _, problems = model.validator.check({"x": [1, {"a": "b"}]})
    assert all(p.message for p in problems)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(
                [
                    "--url https://model-api.runcomfy.net/v1/models/a/b \\\n",
                    "--url https://model-api.runcomfy.net/v1/models/",
                    "--data '{",
                    "\n{",
                    '"type": "object", "properties": {',
                    "}",
                    "\n",
                    '"output": {',
                ]
            ),
        ),
        max_size=30,
    )
)
def test_any_page_text_gives_a_page_or_a_schema_error(parts: list[str]) -> None:
    from runcomfy_client._pages import parse_api_page

    try:
        page = parse_api_page("".join(parts))
    except SchemaError:
        return
    assert page.input_schema["type"] == "object"
