"""A deployment's jobs: how the Serverless API's answers read, its faults, and the job handle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client import (
    AuthenticationError,
    BadRequestError,
    Client,
    InputValidationError,
    PermissionDeniedError,
    ServerError,
    SubmissionUncertainError,
)
from runcomfy_client._deployment_jobs import (
    inference_call,
    job_call,
    merge_overrides,
    read_cancel,
    read_result,
    read_status,
)
from runcomfy_client._types import Cancelled, Ended, InProgress, Queued
from runcomfy_client.emulator import Emulator

from .conftest import wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
T2I = f"lighthouse={SAMPLES / 'text-to-image.json'}:{SAMPLES / 'object_info.json'}"
KEY = "sk-secret-456"

OUTPUTS = {
    "9": {
        "images": [
            {"filename": "a.png", "subfolder": "", "type": "output", "url": "https://x.test/a.png"}
        ]
    },
    "60": {
        "gifs": [{"filename": "v.mp4", "format": "video/h264-mp4", "url": "https://x.test/v.mp4"}],
        "text": [["a caption, not a file"]],
    },
}


# -- reading the Serverless API's answers ------------------------------------------------------


def test_status_reads_queue_position_instance_and_a_completed_that_is_only_ended() -> None:
    queued = read_status({"status": "in_queue", "queue_position": 3}, "r1")
    assert isinstance(queued, Queued) and queued.queue_position == 3
    running = read_status({"status": "in_progress", "instance_id": "inst-7"}, "r1")
    assert isinstance(running, InProgress) and running.instance_id == "inst-7"
    assert running.queue_position is None
    # "completed" is said for failed jobs too: not done until the result says how it ended.
    ended = read_status({"status": "completed", "instance_id": "inst-7"}, "r1")
    assert isinstance(ended, Ended) and not ended.done
    assert isinstance(read_status({"status": "canceled"}, "r1"), Cancelled)
    assert isinstance(read_status({"status": "cancelled"}, "r1"), Cancelled)


def test_result_flattens_node_keyed_outputs_to_files() -> None:
    result = read_result({"status": "succeeded", "outputs": OUTPUTS}, "r1")
    assert result.status == "completed" and result.error is None
    assert [(f.node, f.channel, f.filename) for f in result.output.files] == [
        ("9", "images", "a.png"),
        ("60", "gifs", "v.mp4"),
    ]
    assert result.urls == ["https://x.test/v.mp4", "https://x.test/a.png"]  # videos first
    assert result.video == "https://x.test/v.mp4"
    assert [f.url for f in result.output.by_node("9")] == ["https://x.test/a.png"]
    assert result.as_dict()["output"] == OUTPUTS  # the JSON document keeps the nodes


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"status": "failed", "error": [{"errorCode": 500001, "error": "OOM"}]}, "failed"),
        ({"status": "canceled", "outputs": None}, "cancelled"),
        ({"status": "in_progress"}, "in_progress"),
        ({"status": "mystery", "outputs": OUTPUTS}, "completed"),
        ({"status": "mystery", "error": ["it broke"]}, "failed"),
    ],
)
def test_result_statuses_by_the_one_table(body: dict[str, Any], status: str) -> None:
    result = read_result(body, "r1")
    assert result.status == status
    if status == "failed":
        assert result.error is not None and result.error.message in ("OOM", "it broke")


def test_a_failed_jobs_error_list_reads_with_its_code() -> None:
    result = read_result(
        {"status": "failed", "error": [{"errorCode": 500001, "error": "CUDA out of memory"}]}, "r"
    )
    assert result.error is not None
    assert (result.error.code, result.error.message) == (500001, "CUDA out of memory")


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"status": "cancellation_requested"}, "cancellation_requested"),
        ({"status": "canceled"}, "cancelled"),
        ({"status": "cancelled"}, "cancelled"),
        ({"status": "not_cancellable"}, "not_cancellable"),
        ({"status": "completed"}, "not_cancellable"),
        ({"status": "succeeded"}, "not_cancellable"),
        ({}, "cancellation_requested"),
    ],
)
def test_cancel_outcomes(body: dict[str, Any], outcome: str) -> None:
    assert read_cancel(body, "r1").outcome == outcome


def test_calls_name_the_deployment_and_are_retried_or_not() -> None:
    submit = inference_call("https://api.test", "d1", overrides={}, model_id="deployments/x")
    assert submit.is_submit and submit.kind == "submit" and submit.model_id == "deployments/x"
    status = job_call("https://api.test", "d1", "r1", "status")
    assert status.persistent and status.kind == "status"


def test_inputs_and_raw_overrides_merge_and_a_clash_is_refused_by_name() -> None:
    compiled = {"6": {"inputs": {"text": "a cat"}}}
    merged = merge_overrides(compiled, {"3": {"inputs": {"seed": 7}}}, "deployments/x")
    assert merged == {"6": {"inputs": {"text": "a cat"}}, "3": {"inputs": {"seed": 7}}}
    assert compiled == {"6": {"inputs": {"text": "a cat"}}}  # not changed in place
    with pytest.raises(InputValidationError) as caught:
        merge_overrides(compiled, {"6": {"inputs": {"text": "a dog"}}}, "deployments/x")
    assert "overrides.6.inputs.text" in str(caught.value) and "'a dog'" in str(caught.value)
    with pytest.raises(InputValidationError, match="<node id>"):
        merge_overrides({}, {"6": "text"}, "deployments/x")


# -- error codes, by code alone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401001, AuthenticationError),
        (403003, PermissionDeniedError),
        (422001, BadRequestError),
        (500001, ServerError),
    ],
)
def test_serverless_codes_map_even_under_another_http_status(
    code: int, error: type[Exception]
) -> None:
    answers = {"error_code": code, "error_message": "no", "detail": [{"loc": ["x"], "msg": "y"}]}
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, json=answers)))
    client = Client(
        api_key=KEY, serverless_base_url="https://api.test", http_client=http, max_retries=0
    )
    with pytest.raises(error) as caught:
        client.deployments.get("d1")
    assert "  - x: y" in str(caught.value)


# -- the emulator's Serverless faults, over real sockets -----------------------------------------


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(deployments=[T2I], job_seconds=0.01, api_key=KEY) as emulator:
        yield emulator


def _client(emu: Emulator) -> Client:
    return Client(api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url)


def _jobs(emu: Emulator) -> dict[str, Any]:
    return httpx.get(f"{emu.base_url}/_emulator/serverless/stats").json()  # type: ignore[no-any-return]


def test_created_then_503_makes_a_job_and_the_submit_is_not_sent_again(emu: Emulator) -> None:
    emu.set_faults(["created_then_503:deployment_submit=@1"])
    deployment = emu.deployments["lighthouse"]
    with _client(emu) as client, pytest.raises(SubmissionUncertainError) as caught:
        client._send(inference_call(client.serverless_base_url, deployment, overrides={}))
    assert "NOT resubmitted" in str(caught.value) and emu.deployments["lighthouse"] in str(
        caught.value
    )
    stats = _jobs(emu)
    assert stats["submissions"] == 1  # one request, and a job that will run and be paid for
    assert sum(stats["states"].values()) == 1


def test_status_faults_are_retried_on_the_serverless_endpoints(emu: Emulator) -> None:
    emu.set_faults(["server_error:deployment_status=@1", "drop:deployment_result=@1"])
    deployment = emu.deployments["lighthouse"]
    with _client(emu) as client:
        answer = client._send(inference_call(client.serverless_base_url, deployment, overrides={}))
        rid = answer["request_id"]
        status = client._send(job_call(client.serverless_base_url, deployment, rid, "status"))
        assert status["request_id"] == rid
        result = wait_for(
            lambda: (
                body
                if (
                    body := client._send(
                        job_call(client.serverless_base_url, deployment, rid, "result")
                    )
                )["status"]
                == "succeeded"
                else None
            ),
            timeout=60,
        )
        assert read_result(result, rid).output.by_node("9")
    faults = emu.stats()["faults"]
    assert faults.get("server_error") == 1 and faults.get("drop") == 1


def test_bad_overrides_get_422001_with_detail_field_by_field(emu: Emulator) -> None:
    deployment = emu.deployments["lighthouse"]
    bad = {"6": {"inputs": {"txt": "x"}}, "3": {"inputs": {"steps": "many"}}, "99": {"inputs": {}}}
    with _client(emu) as client, pytest.raises(BadRequestError) as caught:
        client._send(inference_call(client.serverless_base_url, deployment, overrides=bad))
    error = caught.value
    assert error.error_code == 422001 and error.status_code == 422
    lines = str(error).splitlines()[1:]
    assert any("6" in line and "txt" in line for line in lines), lines
    assert any("3" in line and "steps" in line for line in lines), lines
    assert any("99" in line for line in lines), lines
    assert _jobs(emu)["states"] == {}  # nothing was queued
