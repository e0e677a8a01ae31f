"""Fuzzing (hypothesis): hostile inputs, hostile schemas, and garbage from the server.

- Random inputs through validation: a payload or an InputValidationError whose every problem
  names a field and says what is wrong; never another exception.
- Random schema-like documents through the dialect and the naming rule: a usable model with
  unique Python names, or a SchemaError; never another exception.
- Random bytes, truncated JSON and odd statuses as API answers: a RunComfyError (or a result),
  never another exception and never a hang.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import math
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcomfy_client import (
    Client,
    InputValidationError,
    Registry,
    RetryPolicy,
    RunComfyError,
    SchemaError,
)
from runcomfy_client._registry import model_from_schema

from .conftest import FUSIONX, INPAINT
from .fuzzing import examples

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

REGISTRY = Registry(use_env=False)
FIELD_NAMES = [
    name
    for model_id in (FUSIONX, INPAINT)
    for f in REGISTRY.get(model_id).fields
    for name in (f.name, f.key)
]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model_id=st.sampled_from([FUSIONX, INPAINT]),
    inputs=st.dictionaries(
        st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12)), json_values, max_size=10
    ),
)
def test_validation_never_crashes_and_always_explains(
    model_id: str, inputs: dict[str, Any]
) -> None:
    validator = REGISTRY.validator(model_id)
    try:
        payload = validator.validate(inputs)
    except InputValidationError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.message.strip()
            assert problem.label.strip() and str(problem).startswith(problem.label + ": ")
        return
    # A pass: every value is JSON that the server can read (no NaN or infinities).
    json.dumps(payload, allow_nan=False)
    assert set(payload) <= {f.key for f in validator.model.fields}


@settings(max_examples=examples(100), deadline=None)
@given(inputs=json_values)
def test_inputs_that_are_not_a_mapping_are_refused_clearly(inputs: Any) -> None:
    if isinstance(inputs, dict):
        return
    with pytest.raises(InputValidationError, match="inputs must be a mapping"):
        REGISTRY.validator(FUSIONX).validate(inputs)


schema_keys = st.one_of(
    st.from_regex(r"\A[0-9]{1,3}_[a-z_]{1,10}\Z"),
    st.sampled_from(["class", "None", "type", "model_config", "schema", "123", "", "_", "é"]),
    st.text(max_size=10),
)
property_schemas = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["string", "integer", "number", "float", "boolean", "array", "object", "null", "colour"]
        )
        | st.lists(st.sampled_from(["string", "null", "integer"]), max_size=3),
        "title": st.text(max_size=15),
        "description": st.text(max_size=15),
        "default": json_values,
        "enum": st.lists(json_scalars, max_size=4),
        "minimum": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3)),
        "maximum": st.one_of(st.integers(), st.floats(allow_nan=False)),
        "x-python-name": st.text(max_size=10),
    },
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    properties=st.dictionaries(schema_keys, property_schemas | json_scalars, max_size=6),
    required=st.lists(schema_keys, max_size=3),
    top_type=st.sampled_from(["object", "array", None]),
)
def test_hostile_schemas_load_or_fail_with_a_schema_error(
    properties: dict[str, Any], required: list[str], top_type: str | None
) -> None:
    raw: dict[str, Any] = {"properties": properties, "required": required}
    if top_type is not None:
        raw["type"] = top_type
    try:
        model = model_from_schema("fuzz/model", raw)
    except SchemaError as error:
        assert str(error).strip()
        return
    names = [f.name for f in model.fields]
    assert len(names) == len(set(names))
    for name in names:
        assert name.isidentifier() and not keyword.iskeyword(name), name
    # And the validator compiles and judges an empty input without crashing.
    with contextlib.suppress(InputValidationError):
        model.validator.validate({})


ENDPOINT_CALLS = ["submit", "status", "result", "cancel"]
SECRET = "sk-fuzz-0d9c8b7a"
bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"request_id": ',
            b'{"request_id": "r", "status": "in_q',
            b"null",
            b"[]",
            b'"just a string"',
            b'{"error_code": "x"}',
            b'{"error_code": 400001}',
            b'{"status": 5, "request_id": ["no"]}',
            b'{"output": {"video": 7, "videos": "nope"}, "status": "completed"}',
            b'{"message": "gateway timeout"}',
            b"<html>502 Bad Gateway</html>",
            "\u00e9\u0000\ufffd".encode("utf-16"),
        ]
    ),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    call=st.sampled_from(ENDPOINT_CALLS),
    status=st.sampled_from(
        [200, 201, 202, 204, 301, 400, 401, 403, 404, 408, 422, 429, 500, 502, 503, 599]
    ),
    body=bodies,
    content_type=st.sampled_from(["application/json", "text/html", ""]),
)
def test_garbage_answers_give_a_clear_error_never_a_hang(
    call: str, status: int, body: bytes, content_type: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.Response(status, content=body, headers=headers)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    client = Client(
        api_key=SECRET, base_url="https://api.test", retry=RetryPolicy.none(), http_client=http
    )
    started = time.monotonic()
    try:
        if call == "submit":
            client.submit(FUSIONX, {"prompt": "p", "image": "https://x.test/a.png"})
        elif call == "status":
            client.status("r")
        elif call == "result":
            client.result("r")
        else:
            client.cancel("r", wait=0)  # following an accepted cancel is bounded: tested apart
    except RunComfyError as error:
        assert str(error).strip()
        assert SECRET not in str(error) and SECRET not in repr(error)
    finally:
        http.close()
    assert time.monotonic() - started < 5


class _CutStream(httpx.SyncByteStream):
    """Sends some bytes, then the connection drops if fewer than promised were sent."""

    def __init__(self, data: bytes, declared: int) -> None:
        self.data, self.declared = data, declared

    def __iter__(self) -> Any:
        if self.data:
            yield self.data
        if len(self.data) < self.declared:
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


@settings(max_examples=examples(60), deadline=None)
@given(data=st.binary(max_size=2048), missing=st.integers(min_value=0, max_value=64))
def test_cut_downloads_never_land_under_the_final_name(
    data: bytes, missing: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from runcomfy_client import DownloadError, Output, Result, RetryPolicy

    folder = tmp_path_factory.mktemp("dl")
    declared = len(data) + missing

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Length": str(declared)}
        return httpx.Response(200, headers=headers, stream=_CutStream(data, declared))

    http = httpx.Client(transport=httpx.MockTransport(answer))
    # A cut transfer is resumed after a backoff, for the outage budget (a file of a paid job is
    # not given up lightly); tiny ones keep 60 examples fast.
    quick = RetryPolicy(backoff_base=0.001, backoff_max=0.001, outage_budget=0.02)
    client = Client(api_key="k", base_url="https://api.test", http_client=http, retry=quick)
    result = Result("r", "completed", Output.from_body({"video": "https://cdn.test/v.mp4"}))
    try:
        [path] = client.download(result, folder)
        assert missing == 0 and path.read_bytes() == data
    except DownloadError as error:
        assert missing > 0 and "cdn.test" in str(error)
        assert not (folder / "v.mp4").exists()
    finally:
        http.close()
    assert [p.name for p in folder.iterdir() if p.name.endswith(".part")] == []


def test_nan_and_infinity_are_refused_for_number_fields() -> None:
    validator = REGISTRY.validator(INPAINT)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InputValidationError, match="guidance_scale"):
            validator.validate(
                {
                    "prompt": "p",
                    "start_image": "https://x/a.png",
                    "end_image": "https://x/b.png",
                    "guidance_scale": bad,
                }
            )
