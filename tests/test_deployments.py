"""Serverless deployments: the library (sync and async), the CLI, errors, and derive by id."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from runcomfy_client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConfigurationError,
    InputValidationError,
    InsufficientBalanceError,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RetryPolicy,
    SubmissionUncertainError,
)
from runcomfy_client._deployment_jobs import inference_call, job_call, output_files
from runcomfy_client._derive import read_binding
from runcomfy_client._overrides import compile_overrides
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import png_bytes, wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
T2I = f"lighthouse={SAMPLES / 'text-to-image.json'}:{SAMPLES / 'object_info.json'}"
I2V = f"wan={SAMPLES / 'image-to-video.json'}:{SAMPLES / 'object_info.json'}"
KEY = "sk-secret-123"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(deployments=[T2I, I2V], job_seconds=0.01, api_key=KEY) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    with Client(api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url) as c:
        yield c


def served(emu: Emulator) -> set[str]:
    with Client(api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url) as c:
        return {d.id for d in c.deployments.list()}


# -- the library, against the emulator --------------------------------------------------------


def test_list_get_and_object_info(client: Client, emu: Emulator) -> None:
    found = client.deployments.list()
    assert {d.name for d in found} >= {"lighthouse", "wan"}
    assert all(d.payload is None and d.readme is None for d in found)
    wan = client.deployments.get(emu.deployments["wan"], payload=True, readme=True)
    assert wan.name == "wan" and wan.hardware == ("AMPERE_48",) and wan.is_enabled is True
    assert wan.payload is not None
    assert wan.payload.workflow_api_json == json.loads(
        (SAMPLES / "image-to-video.json").read_text()
    )
    assert wan.readme is not None and wan.readme.startswith("# wan")
    info = client.deployments.object_info(wan)
    assert info == json.loads((SAMPLES / "object_info.json").read_text())
    only = client.deployments.list(ids=[emu.deployments["lighthouse"]])
    assert [d.name for d in only] == ["lighthouse"]


def test_create_update_enable_disable_delete(client: Client, emu: Emulator) -> None:
    wan = client.deployments.get(emu.deployments["wan"])
    assert wan.workflow_id is not None
    created = client.deployments.create(
        name="wan-small", workflow_id=wan.workflow_id, workflow_version="v1", max_instances=2
    )
    assert created.name == "wan-small" and created.hardware == ("AMPERE_48",)
    assert (created.min_instances, created.max_instances, created.queue_size) == (0, 2, 1)
    # The API refuses a PATCH without the name: the current one is carried over.
    updated = client.deployments.update(created.id, max_instances=3, hardware="AMPERE_24")
    assert (updated.name, updated.max_instances, updated.hardware) == (
        "wan-small",
        3,
        ("AMPERE_24",),
    )
    assert client.deployments.disable(created.id).is_enabled is False
    assert client.deployments.enable(created.id).is_enabled is True
    renamed = client.deployments.update(created.id, name="wan-tiny")
    assert renamed.name == "wan-tiny"
    client.deployments.delete(created.id)
    with pytest.raises(NotFoundError):
        client.deployments.get(created.id)
    assert created.id not in served(emu)


async def test_async_client_has_the_same_deployments(emu: Emulator) -> None:
    async with AsyncClient(
        api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url
    ) as client:
        found = await client.deployments.list(payload=True)
        wan = next(d for d in found if d.name == "wan")
        assert wan.payload is not None and wan.payload.object_info_url
        assert (await client.deployments.object_info(wan.id))["LoadImage"]["display_name"]
        assert wan.workflow_id is not None
        created = await client.deployments.create(
            name="async-one", workflow_id=wan.workflow_id, workflow_version="v1"
        )
        assert (await client.deployments.disable(created.id)).is_enabled is False
        await client.deployments.delete(created.id)
        with pytest.raises(NotFoundError):
            await client.deployments.get(created.id)


def test_bad_settings_are_refused_before_anything_is_sent(client: Client, emu: Emulator) -> None:
    before = served(emu)
    with pytest.raises(InputValidationError) as caught:
        client.deployments.create(
            name="",
            workflow_id="w",
            workflow_version="v1",
            hardware=["AMPERE_24", "AMPERE_48"],
            min_instances=2,
            max_instances=1,
            queue_size=-1,
        )
    text = str(caught.value)
    assert "deployment settings" in text
    assert "name: " in text and "queue_size: -1 is below the minimum 0" in text
    assert "exactly one hardware SKU" in text and "below min_instances 2" in text
    with pytest.raises(ValueError, match="nothing to update"):
        client.deployments.update(emu.deployments["wan"])
    with pytest.raises(ValueError, match="deployment id"):
        client.deployments.get("  ")
    assert served(emu) == before


def test_server_side_refusal_shows_detail_field_by_field(client: Client) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.deployments.create(name="x", workflow_id="no-such-flow", workflow_version="v1")
    assert caught.value.error_code == 422001
    assert "workflow_version: workflow no-such-flow has no version 'v1'" in str(caught.value)


def test_serverless_base_url_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_SERVERLESS_BASE_URL", "http://127.0.0.1:9/")
    assert Client(api_key="k").serverless_base_url == "http://127.0.0.1:9"
    monkeypatch.delenv("RUNCOMFY_SERVERLESS_BASE_URL")
    assert Client(api_key="k").serverless_base_url == "https://api.runcomfy.net"
    with pytest.raises(ConfigurationError, match="plain http"):
        Client(api_key="k", serverless_base_url="http://api.example.com")


# -- errors and retries, with scripted answers -----------------------------------------------


def scripted(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.Client(transport=httpx.MockTransport(record))
    client = Client(
        api_key=KEY,
        serverless_base_url="https://api.test",
        retry=RetryPolicy(backoff_base=0.001, backoff_max=0.002),
        http_client=http,
    )
    return client, seen


@pytest.mark.parametrize(
    ("status", "code", "error", "words"),
    [
        (401, 401001, AuthenticationError, "Unauthorized"),
        (403, 403003, PermissionDeniedError, "not yours"),
        (404, 404001, NotFoundError, "not found"),
        (402, 10001, InsufficientBalanceError, "funds"),
        (403, 10002, PermissionDeniedError, "deployments enable"),
        (404, 10003, NotFoundError, "was deleted"),
    ],
)
def test_error_codes_map_into_the_error_tree(
    status: int, code: int, error: type[Exception], words: str
) -> None:
    messages = {401001: "Unauthorized", 403003: "not yours", 404001: "not found"}
    body = {"error_code": code, "error_message": messages.get(code, "funds / disabled")}
    client, _ = scripted(lambda request: httpx.Response(status, json=body))
    with pytest.raises(error) as caught:
        client.deployments.get("d1")
    assert words in str(caught.value) and KEY not in str(caught.value)


def test_422001_detail_is_listed_field_by_field() -> None:
    detail = [
        {"loc": ["body", "overrides", "6", "inputs", "txt"], "msg": "no input 'txt'"},
        {"loc": ["body", "overrides", "3", "inputs", "steps"], "msg": "not an integer"},
    ]
    body = {"error_code": 422001, "error_message": "Validation Error", "detail": detail}
    client, _ = scripted(lambda request: httpx.Response(422, json=body))
    with pytest.raises(BadRequestError) as caught:
        client.deployments.update("d1", name="x")
    assert str(caught.value).splitlines()[1:3] == [
        "  - overrides.6.inputs.txt: no input 'txt'",
        "  - overrides.3.inputs.steps: not an integer",
    ]
    assert caught.value.detail == detail


def test_reads_are_retried_but_a_create_whose_answer_was_lost_is_not() -> None:
    answers = iter([httpx.Response(500, json={"error_code": 500001, "error_message": "oops"})])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json=[{"id": "d1", "name": "one"}]))

    client, seen = scripted(flaky)
    assert [d.name for d in client.deployments.list(ids=["d1"], payload=True)] == ["one"]
    assert len(seen) == 2
    assert seen[0].url.params.get_list("includes") == ["payload"]
    assert seen[0].url.params.get_list("ids") == ["d1"]

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, seen = scripted(lost)
    with pytest.raises(SubmissionUncertainError) as caught:
        client.deployments.create(name="one", workflow_id="w", workflow_version="v1")
    assert len(seen) == 1  # never sent twice
    assert "creating deployment 'one'" in str(caught.value) and "deployments list" in str(
        caught.value
    )

    # A 503 came after the request was read: it may have been acted on (issue 15's rule for
    # every request that must not be sent twice). Only a 429 is certain to have done nothing.
    busy = iter([httpx.Response(503, json={"error_code": 500001, "error_message": "busy"})])
    client, seen = scripted(
        lambda r: next(busy, httpx.Response(200, json={"id": "d2", "name": "x"}))
    )
    with pytest.raises(SubmissionUncertainError):
        client.deployments.create(name="x", workflow_id="w", workflow_version="v1")
    assert len(seen) == 1
    limited = iter([httpx.Response(429, json={"error_code": 429001, "error_message": "slow"})])
    client, seen = scripted(
        lambda r: next(limited, httpx.Response(200, json={"id": "d2", "name": "x"}))
    )
    assert client.deployments.create(name="x", workflow_id="w", workflow_version="v1").id == "d2"
    assert len(seen) == 2  # a 429 created nothing: safe to send again


def test_object_info_link_elsewhere_gets_no_api_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/d1"):
            url = "https://storage.example.com/info.json?sig=abc"
            return httpx.Response(
                200, json={"id": "d1", "name": "n", "payload": {"object_info_url": url}}
            )
        return httpx.Response(200, json={"KSampler": {}})

    client, seen = scripted(answer)
    assert client.deployments.object_info("d1") == {"KSampler": {}}
    assert str(seen[1].url) == "https://storage.example.com/info.json?sig=abc"
    assert "authorization" not in seen[1].headers
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_hostile_records_are_refused_by_name() -> None:
    from runcomfy_client import ResponseDecodeError

    for body in ([{"name": "no id"}], {"not": "a list"}, ["text"]):
        client, _ = scripted(lambda request, b=body: httpx.Response(200, json=b))
        with pytest.raises(ResponseDecodeError):
            client.deployments.list()


# -- the command line -------------------------------------------------------------------------


def cli_run(emu: Emulator, args: list[str], **env: str) -> Result:
    environment = {
        "RUNCOMFY_API_KEY": KEY,
        "RUNCOMFY_SERVERLESS_BASE_URL": emu.base_url,
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_SCHEMA_PATH": "",
        **env,
    }
    return CliRunner().invoke(cli, args, env=environment)


def test_cli_deployments_verbs(emu: Emulator) -> None:
    listed = cli_run(emu, ["deployments", "list"])
    assert listed.exit_code == 0 and "lighthouse" in listed.stdout and "AMPERE_48" in listed.stdout
    records = json.loads(cli_run(emu, ["deployments", "list", "--json"]).stdout)
    assert {r["name"] for r in records} >= {"lighthouse", "wan"}
    assert all({"id", "name"} <= set(r) for r in records)

    wan_id = emu.deployments["wan"]
    shown = cli_run(emu, ["deployments", "get", wan_id, "--payload"])
    assert shown.exit_code == 0 and "12 nodes" in shown.stdout and "object_info_url" in shown.stdout
    wan = json.loads(cli_run(emu, ["deployments", "get", wan_id, "--json"]).stdout)

    created = cli_run(
        emu,
        ["deployments", "create", "--name", "cli-one", "--workflow-id", wan["workflow_id"],
         "--workflow-version", "v1", "--max-instances", "2", "--json"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    new = json.loads(created.stdout)
    assert new["name"] == "cli-one" and new["max_instances"] == 2
    updated = json.loads(
        cli_run(emu, ["deployments", "update", new["id"], "--queue-size", "3", "--json"]).stdout
    )
    assert updated["queue_size"] == 3 and updated["name"] == "cli-one"
    disabled = cli_run(emu, ["deployments", "disable", new["id"]])
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    assert json.loads(cli_run(emu, ["deployments", "enable", new["id"], "--json"]).stdout)[
        "is_enabled"
    ]
    refused = cli_run(emu, ["deployments", "delete", new["id"]])
    assert refused.exit_code == 2 and "--yes" in refused.output
    deleted = cli_run(emu, ["deployments", "delete", new["id"], "--yes", "--json"])
    assert json.loads(deleted.stdout) == {"id": new["id"], "deleted": True}
    gone = cli_run(emu, ["deployments", "get", new["id"]])
    assert gone.exit_code == 4 and "not found" in gone.stderr

    nothing = cli_run(emu, ["deployments", "update", wan_id])
    assert nothing.exit_code == 2 and "nothing to update" in nothing.output
    bad = cli_run(emu, ["deployments", "create", "--name", "x", "--workflow-id", "w",
                        "--workflow-version", "v1", "--max-instances", "0"])  # fmt: skip
    assert bad.exit_code == 2 and "max_instances: 0 is below the minimum 1" in bad.stderr
    wrong_key = cli_run(emu, ["deployments", "list"], RUNCOMFY_API_KEY="nope")
    assert wrong_key.exit_code == 3 and "nope" not in wrong_key.output


# -- schema derive from a deployment id, then a job through the described protocol -------------


def test_derive_from_a_deployment_then_run_a_job_with_compiled_overrides(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    schemas = tmp_path / "schemas"
    wan_id = emu.deployments["wan"]
    result = cli_run(
        emu,
        ["schema", "derive", wan_id, "--overlay", str(SAMPLES / "image-to-video.overlay.json"),
         "--schemas", str(schemas)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = schemas / "deployments" / "wan.json"  # named after the deployment
    assert f"derived deployments/wan: {path}" in result.stdout
    binding = read_binding(path)
    assert binding is not None and binding["deployment_id"] == wan_id
    checked = cli_run(emu, ["schema", "derive", wan_id, "--schemas", str(schemas), "--check"])
    assert checked.exit_code == 0 and "up to date" in checked.stdout

    # A wrong input is refused locally, by name, with what is allowed; nothing is sent.
    model = Registry([schemas], use_env=False, include_bundled=False).get("deployments/wan")
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"prompt": "x", "number_of_frames": 50, "start_image": "a.png"})
    text = str(caught.value)
    assert "number_of_frames (30_length): 50 is not one of the allowed values" in text
    assert "17, 33, 49, 81" in text

    image = emu.upload(png_bytes(), "start.png")
    payload = model.validator.validate(
        {"start_image": image, "prompt": "waves", "resolution": "624x624", "number_of_frames": 17}
    )
    overrides = compile_overrides(model, payload)["overrides"]
    submitted = client._send(
        inference_call(client.serverless_base_url, wan_id, overrides=overrides)
    )
    request_id = submitted["request_id"]

    def ended() -> Any:
        body = client._send(job_call(client.serverless_base_url, wan_id, request_id, "result"))
        return body if body["status"] in ("succeeded", "failed") else None

    body = wait_for(ended, timeout=60)
    assert body["status"] == "succeeded", body
    (video,) = output_files(body["outputs"])
    assert (video.node, video.channel) == ("60", "gifs") and video.filename
    data = httpx.get(video.url).content
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (624, 624)


def test_deployment_job_calls_and_outputs_for_the_lifecycle() -> None:
    call = inference_call(
        "https://api.test",
        "d 1",
        overrides={"6": {"inputs": {"text": "x"}}},
        extra_data={"k": 1},
        webhook="https://me.example/hook?a=1&b=2",
        webhook_intermediate_status=True,
    )
    assert call.is_submit and call.method == "POST" and call.base_url == "https://api.test"
    url = httpx.URL("https://api.test" + call.path)
    assert url.path == "/prod/v1/deployments/d 1/inference"
    assert url.params["webhook"] == "https://me.example/hook?a=1&b=2"
    assert url.params["webhook_intermediate_status"] == "true"
    assert call.json == {"overrides": {"6": {"inputs": {"text": "x"}}}, "extra_data": {"k": 1}}
    cancel = job_call("https://api.test", "d1", "r/1", "cancel")
    assert (cancel.method, cancel.path, cancel.is_submit) == (
        "POST",
        "/prod/v1/deployments/d1/requests/r%2F1/cancel",
        False,
    )
    outputs = {
        "9": {
            "images": [
                {"filename": "a.png", "subfolder": "", "type": "output", "url": "https://x/a.png"}
            ]
        },
        "12": {"text": [["a caption"]], "gifs": [{"filename": "v.mp4", "url": "https://x/v.mp4"}]},
        "13": "garbage",
        "14": {"images": [{"url": "file:///etc/passwd"}, None, 3]},
    }
    files = output_files(outputs)
    assert [(f.node, f.channel, f.filename) for f in files] == [
        ("9", "images", "a.png"),
        ("12", "gifs", "v.mp4"),
    ]
    assert output_files(None) == ()
