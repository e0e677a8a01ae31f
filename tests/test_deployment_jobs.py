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
    DeadlineExceededError,
    InputValidationError,
    JobCancelledError,
    JobFailedError,
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
from runcomfy_client._types import Cancelled, Ended, Failed, InProgress, Queued
from runcomfy_client.emulator import Emulator

from .conftest import wait_for
from .scripted import Script, VirtualClock, ok, scripted, scripted_async
from .test_codegen import importable  # noqa: F401  (a fixture: a folder on sys.path)

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
    from runcomfy_client import PollingPolicy, PollingSettings

    # The emulator's jobs take hundredths of a second: poll at that pace, not RunComfy's 3 s.
    fast = PollingPolicy(PollingSettings.with_interval(0.05), learn=False)
    return Client(
        api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url, polling=fast
    )


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


# -- the job handle, on scripted answers and a virtual clock --------------------------------------

DEPLOYMENT = "dep-1"


@pytest.fixture(scope="module")
def derived_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema derived from the sample text-to-image workflow, bound to DEPLOYMENT."""
    import json

    from runcomfy_client._derive import derive
    from runcomfy_client._overlay import Overlay

    folder = tmp_path_factory.mktemp("schemas")
    path = folder / "deployments" / "lighthouse.json"
    path.parent.mkdir()
    overlay = Overlay.parse(json.loads((SAMPLES / "text-to-image.overlay.json").read_text()))
    derived = derive(
        json.loads((SAMPLES / "text-to-image.json").read_text()),
        json.loads((SAMPLES / "object_info.json").read_text()),
        name="lighthouse",
        overlay=overlay,
        deployment_id=DEPLOYMENT,
        schema_path=path,
    )
    path.write_text(derived.schema_text())
    path.with_name("lighthouse.info.json").write_text(derived.binding_text())
    return folder


def serverless_job(
    clock: VirtualClock,
    statuses: list[dict[str, Any]],
    ending: dict[str, Any] | None = None,
    **overrides: Any,
) -> Script:
    """A deployment's job whose status answers follow ``statuses`` (the last one repeats)."""
    seen = {"status": 0}
    final = ending or {"status": "succeeded", "outputs": OUTPUTS}

    def answer(kind: str, request: httpx.Request, now: float) -> Any:
        assert request.url.path.startswith(f"/prod/v1/deployments/{DEPLOYMENT}/"), request.url
        if kind in overrides:
            return overrides[kind](request, now)
        if kind == "inference":
            return ok({"request_id": "r1", "status_url": "s", "result_url": "r", "cancel_url": "c"})
        if kind == "status":
            index = min(seen["status"], len(statuses) - 1)
            seen["status"] += 1
            return ok({"request_id": "r1", **statuses[index]})
        if kind == "result":
            return ok({"request_id": "r1", **final})
        if kind == "cancel":
            return ok({"request_id": "r1", "status": "cancellation_requested"})
        raise AssertionError(kind)

    return Script(clock, answer)


def deployment_client(script: Script, folder: Path) -> Client:
    from runcomfy_client import Registry

    registry = Registry([folder], use_env=False, include_bundled=False)
    return scripted(script, registry=registry, serverless_base_url="https://api.test")


QUEUED = {"status": "in_queue", "queue_position": 2}
RUNNING = {"status": "in_progress", "instance_id": "inst-1"}
COMPLETED = {"status": "completed", "instance_id": "inst-1"}


def test_inputs_compile_to_overrides_and_the_job_is_followed_to_its_files(
    derived_dir: Path,
) -> None:
    clock = VirtualClock()
    script = serverless_job(clock, [QUEUED, RUNNING, COMPLETED])
    seen: list[Any] = []
    with deployment_client(script, derived_dir) as client:
        handle = client.submit(
            "deployments/lighthouse", {"prompt": "a lighthouse", "resolution": "1152x896 (9:7)"}
        )
        assert handle.model_id == "deployments/lighthouse"
        result = handle.wait(timeout=600, on_status=seen.append)
    assert script.body(0) == {
        "overrides": {
            "6": {"inputs": {"text": "a lighthouse"}},
            "5": {"inputs": {"width": 1152, "height": 896}},
        }
    }
    assert [type(s).__name__ for s in seen] == ["Queued", "InProgress", "Completed"]
    assert seen[0].queue_position == 2 and seen[1].instance_id == "inst-1"
    assert result.status == "completed" and result.output.by_node("60")[0].channel == "gifs"
    assert script.kinds() == ["inference", "status", "status", "status", "result", "result"]
    assert clock.now > 0  # it slept between checks, on the virtual clock only


def test_completed_but_failed_is_a_failed_job_with_the_servers_error(derived_dir: Path) -> None:
    clock = VirtualClock()
    failed = {"status": "failed", "error": [{"errorCode": 500001, "error": "CUDA out of memory"}]}
    script = serverless_job(clock, [RUNNING, COMPLETED], failed)
    with deployment_client(script, derived_dir) as client:
        handle = client.submit("deployments/lighthouse", {"prompt": "x"})
        with pytest.raises(JobFailedError) as caught:
            handle.wait()
        assert "CUDA out of memory" in str(caught.value)
        assert caught.value.error_code == 500001
        now = handle.status()  # "completed" is settled by the result: it failed
        assert isinstance(now, Failed) and now.error is not None


def test_a_wrong_input_is_refused_locally_naming_node_input_value_and_allowed(
    derived_dir: Path,
) -> None:
    clock = VirtualClock()
    script = serverless_job(clock, [COMPLETED])
    with deployment_client(script, derived_dir) as client, pytest.raises(InputValidationError) as c:
        client.deployment(DEPLOYMENT).submit({"prompt": "x", "steps": 500})
    text = str(c.value)
    assert "steps (3_steps): 500" in text and "50" in text
    assert script.requests == []  # nothing sent


def test_submit_answered_5xx_is_uncertain_and_never_sent_again(derived_dir: Path) -> None:
    clock = VirtualClock()
    busy = lambda request, now: ok({"error_code": 500001, "error_message": "busy"}, 503)  # noqa: E731
    script = serverless_job(clock, [COMPLETED], inference=busy)
    with deployment_client(script, derived_dir) as client, pytest.raises(SubmissionUncertainError):
        client.run("deployments/lighthouse", {"prompt": "x"})
    assert script.kinds() == ["inference"]


def test_status_outage_is_retried_and_the_job_kept(derived_dir: Path) -> None:
    clock = VirtualClock()
    calls = {"n": 0}

    def flaky(request: httpx.Request, now: float) -> Any:
        calls["n"] += 1
        if calls["n"] <= 3:
            return httpx.ConnectError("down")
        return ok({"request_id": "r1", **COMPLETED})

    script = serverless_job(clock, [COMPLETED], status=flaky)
    with deployment_client(script, derived_dir) as client:
        result = client.deployment("deployments/lighthouse").run({"prompt": "x"}, timeout=600)
    assert result.status == "completed" and script.count("status") == 4


def test_deadline_while_queued_cancels_on_the_deployments_own_path(derived_dir: Path) -> None:
    clock = VirtualClock()
    cancelled = {"n": 0}

    def cancel(request: httpx.Request, now: float) -> Any:
        cancelled["n"] += 1
        return ok({"request_id": "r1", "status": "canceled"})

    script = serverless_job(clock, [QUEUED], cancel=cancel)
    with deployment_client(script, derived_dir) as client:
        handle = client.submit("deployments/lighthouse", {"prompt": "x"})
        with pytest.raises(DeadlineExceededError) as caught:
            handle.wait(timeout=30)
    assert caught.value.cancelled and cancelled["n"] == 1
    assert clock.now == pytest.approx(30, abs=5)


def test_cancelling_a_running_job_is_followed_to_cancelled(derived_dir: Path) -> None:
    clock = VirtualClock()
    state = {"cancelled": False}

    def status(request: httpx.Request, now: float) -> Any:
        return ok(
            {"request_id": "r1", "status": "canceled" if state["cancelled"] else "in_progress"}
        )

    def cancel(request: httpx.Request, now: float) -> Any:
        state["cancelled"] = True
        return ok({"request_id": "r1", "status": "cancellation_requested"})

    def result(request: httpx.Request, now: float) -> Any:
        return ok({"request_id": "r1", "status": "canceled" if state["cancelled"] else "x"})

    script = serverless_job(clock, [RUNNING], status=status, cancel=cancel, result=result)
    with deployment_client(script, derived_dir) as client:
        handle = client.deployment(DEPLOYMENT).attach("r1")  # re-attached by id
        assert handle.model_id == "deployments/lighthouse"
        assert isinstance(handle.status(), InProgress)
        outcome = handle.cancel()
        assert outcome.outcome == "cancelled" and outcome.cancelled
        with pytest.raises(JobCancelledError):
            handle.result()


def test_cancel_after_the_end_is_not_cancellable(derived_dir: Path) -> None:
    clock = VirtualClock()
    refused = lambda request, now: ok({"request_id": "r1", "status": "not_cancellable"})  # noqa: E731
    script = serverless_job(clock, [COMPLETED], cancel=refused)
    with deployment_client(script, derived_dir) as client:
        outcome = client.cancel("r1", model_id="deployments/lighthouse")
    assert outcome.outcome == "not_cancellable" and not outcome.accepted
    assert outcome.status == "completed"  # refused without a reason: the job's state says it


def test_raw_overrides_without_a_schema_and_webhook_query(derived_dir: Path) -> None:
    clock = VirtualClock()
    script = serverless_job(clock, [COMPLETED])
    with deployment_client(script, derived_dir) as client:
        jobs = client.deployment(DEPLOYMENT)
        handle = jobs.submit(
            {"prompt": "x"},
            overrides={"3": {"inputs": {"seed": 7}}},
            extra_data={"client": "test"},
            webhook="https://me.example/hook",
            webhook_intermediate_status=True,
        )
        assert handle.wait().status == "completed"
        with pytest.raises(InputValidationError, match="webhook"):
            jobs.submit({"prompt": "x"}, webhook="ftp://nope")
    sent = script.requests[0][2]
    assert sent.url.params["webhook"] == "https://me.example/hook"
    assert sent.url.params["webhook_intermediate_status"] == "true"
    body = script.body(0)
    assert body["overrides"]["3"] == {"inputs": {"seed": 7}}
    assert body["overrides"]["6"] == {"inputs": {"text": "x"}}
    assert body["extra_data"] == {"client": "test"}


def test_an_unbound_deployment_id_takes_raw_overrides_only(derived_dir: Path) -> None:
    clock = VirtualClock()
    script = serverless_job(clock, [COMPLETED])
    with deployment_client(script, derived_dir) as client:
        jobs = client.deployment("other-deployment")
        assert jobs.schema is None and jobs.model_id == "deployments/other-deployment"
        with pytest.raises(ValueError, match="no derived schema"):
            jobs.submit({"prompt": "x"})
        assert script.requests == []


async def test_async_client_runs_the_same_lifecycle(derived_dir: Path) -> None:
    from runcomfy_client import Registry

    clock = VirtualClock()
    script = serverless_job(clock, [QUEUED, RUNNING, COMPLETED])
    registry = Registry([derived_dir], use_env=False, include_bundled=False)
    client = scripted_async(script, registry=registry, serverless_base_url="https://api.test")
    async with client:
        handle = await client.deployment("deployments/lighthouse").submit({"prompt": "x"})
        statuses = [s async for s in handle.iter_status()]
        result = await handle.wait()
        again = await client.attach(handle.request_id, handle.model_id).result()
    assert [type(s).__name__ for s in statuses] == ["Queued", "InProgress", "Completed"]
    assert result.urls == again.urls == ["https://x.test/v.mp4", "https://x.test/a.png"]


# -- the command line, over real sockets to the emulator -------------------------------------------


def cli(emu: Emulator, args: list[str], schemas: Path | None = None) -> Any:
    from click.testing import CliRunner

    from runcomfy_client.cli import cli as app

    env = {
        "RUNCOMFY_API_KEY": KEY,
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_SERVERLESS_BASE_URL": emu.base_url,
        "RUNCOMFY_SCHEMA_PATH": str(schemas) if schemas else "",
        "RUNCOMFY_POLL_INTERVAL": "0.05",
    }
    return CliRunner().invoke(app, args, env=env)


@pytest.fixture(scope="module")
def slow_emu() -> Iterator[Emulator]:
    """Jobs held running until cancelled: the test decides, not a job's length."""
    with Emulator(deployments=[T2I], job_seconds=0.05, api_key=KEY, workers=1) as emulator:
        emulator.hold("running")
        yield emulator


def test_cli_runs_a_derived_deployment_and_its_job_verbs_take_model(
    emu: Emulator, tmp_path: Path
) -> None:
    import json

    schemas = tmp_path / "schemas"
    deployment = emu.deployments["lighthouse"]
    overlay = SAMPLES / "text-to-image.overlay.json"
    derived = cli(emu, ["schema", "derive", deployment, "--overlay", str(overlay),
                        "--schemas", str(schemas)])  # fmt: skip
    assert derived.exit_code == 0, derived.output
    out = tmp_path / "out"
    ran = cli(
        emu,
        ["run", "deployments/lighthouse", "--prompt", "a lighthouse", "--resolution", "1152x896",
         "--out", str(out), "--json"],
        schemas,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    document = json.loads(ran.stdout)
    assert document["status"] == "completed" and list(document["output"]) == ["9"]
    (saved,) = document["files"]
    assert Path(saved).read_bytes().startswith(b"\x89PNG")

    # A wrong value is refused locally, naming the field and its wire key: nothing is sent.
    before = _jobs(emu)["submissions"]
    bad = cli(emu, ["run", "deployments/lighthouse", "--prompt", "x", "--steps", "500"], schemas)
    assert bad.exit_code == 2 and "steps (3_steps)" in bad.output
    assert _jobs(emu)["submissions"] == before

    raw = tmp_path / "overrides.json"
    raw.write_text(json.dumps({"6": {"inputs": {"text": "raw"}}}))
    queued = cli(
        emu, ["run", "deployments/lighthouse", "--overrides", str(raw), "--no-wait"], schemas
    )
    assert queued.exit_code == 0, queued.output
    request_id = queued.stdout.split()[0]
    assert f"wait {request_id} --model deployments/lighthouse" in queued.stderr
    model = ["--model", "deployments/lighthouse"]
    waited = cli(emu, ["wait", request_id, *model, "--json"], schemas)
    assert waited.exit_code == 0 and json.loads(waited.stdout)["status"] == "completed"
    got = cli(emu, ["result", request_id, *model, "--out", str(tmp_path / "raw")], schemas)
    assert got.exit_code == 0 and "saved" in got.stdout
    status = cli(emu, ["status", request_id, *model], schemas)
    assert status.exit_code == 0 and "completed" in status.stdout
    ended = cli(emu, ["cancel", request_id, *model], schemas)
    assert ended.exit_code == 1 and "already ended (completed)" in ended.stdout
    # Without --model the id is asked of the Model API, which does not know it.
    lost = cli(emu, ["status", request_id], schemas)
    assert lost.exit_code != 0


def test_a_running_deployment_job_is_cancelled(slow_emu: Emulator) -> None:
    with _client(slow_emu) as client:
        jobs = client.deployment(slow_emu.deployments["lighthouse"])
        handle = jobs.submit(overrides={"6": {"inputs": {"text": "x"}}})
        seen = wait_for(lambda: isinstance(handle.status(), InProgress), timeout=30)
        assert seen
        running = handle.status()
        assert isinstance(running, InProgress) and running.instance_id
        outcome = handle.cancel()
        assert outcome.cancelled
        with pytest.raises(JobCancelledError):
            handle.wait(timeout=30)
    assert _jobs(slow_emu)["states"].get("canceled") == 1


def test_deployments_cli_escapes_control_characters(emu: Emulator) -> None:
    with _client(emu) as client:
        wan = client.deployments.get(emu.deployments["lighthouse"])
        assert wan.workflow_id is not None
        evil = client.deployments.create(
            name="evil\x1b[2J\x1b]0;pwned\x07", workflow_id=wan.workflow_id, workflow_version="v1"
        )
    try:
        for args in (["deployments", "list"], ["deployments", "get", evil.id]):
            shown = cli(emu, args)
            assert shown.exit_code == 0, shown.output
            assert "\x1b" not in shown.output and "\x07" not in shown.output
            assert "evil\\x1b[2J" in shown.output
    finally:
        with _client(emu) as client:
            client.deployments.delete(evil.id)


# -- the end to end: a workflow nobody wrote a schema for, to a downloaded video ------------

I2V = f"wan={SAMPLES / 'image-to-video.json'}:{SAMPLES / 'object_info.json'}"


def test_derive_then_typed_wrapper_then_downloaded_output_over_sockets(
    tmp_path: Path,
    importable: Path,  # noqa: F811
) -> None:
    import importlib
    import io

    import av

    from runcomfy_codegen import generate

    from .conftest import png_bytes

    schemas = tmp_path / "schemas"
    with Emulator(deployments=[I2V], job_seconds=0.01, api_key=KEY) as emu:
        deployment = emu.deployments["wan"]
        overlay = SAMPLES / "image-to-video.overlay.json"
        derived = cli(emu, ["schema", "derive", deployment, "--overlay", str(overlay),
                            "--schemas", str(schemas)])  # fmt: skip
        assert derived.exit_code == 0, derived.output
        report = generate(schemas, importable, "my_workflows")
        assert "my_workflows/deployments/wan.py" in report.written
        wan = importlib.import_module("my_workflows.deployments.wan")
        image = emu.upload(png_bytes(size=(96, 64)), "start.png")

        # The generated wrapper, with the derived schema in the client's schema folders.
        with Client(
            api_key=KEY,
            base_url=emu.base_url,
            serverless_base_url=emu.base_url,
            schema_dirs=[schemas],
        ) as client:
            result = wan.run(
                client,
                start_image=image,
                prompt="waves",
                resolution="624x624",
                number_of_frames=17,
                download_to=tmp_path / "out",
                timeout=120,
            )
        (video,) = result.files
        with av.open(io.BytesIO(video.read_bytes())) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (624, 624)
        assert [(f.node, f.channel) for f in result.output.files] == [("60", "gifs")]

        # Its typed Input, on a client that has no schema folder at all: by deployment id.
        with Client(api_key=KEY, base_url=emu.base_url, serverless_base_url=emu.base_url) as bare:
            typed = wan.Input(start_image=image, prompt="tide", number_of_frames=17)
            handle = bare.deployment(deployment).submit(typed)
            assert handle.model_id == f"deployments/{deployment}"
            done = handle.wait(timeout=120)
            assert done.video is not None and done.download(tmp_path / "bare")


def test_a_batch_runs_on_a_derived_deployment_schema(emu: Emulator, tmp_path: Path) -> None:
    import json

    schemas = tmp_path / "schemas"
    overlay = SAMPLES / "text-to-image.overlay.json"
    derived = cli(emu, ["schema", "derive", emu.deployments["lighthouse"], "--overlay",
                        str(overlay), "--schemas", str(schemas)])  # fmt: skip
    assert derived.exit_code == 0, derived.output
    lines = tmp_path / "prompts.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps({"id": f"p{i}", "prompt": f"a lighthouse, take {i}", "seed": i})
            for i in range(3)
        )
        + "\n"
    )
    out = tmp_path / "out"
    args = ["batch", str(lines), "--model", "deployments/lighthouse", "--out", str(out), "--json"]
    ran = cli(emu, args, schemas)
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    assert report["counts"] == {"downloaded": 3}
    for i in range(3):
        (png,) = (out / f"p{i}").iterdir()
        assert png.read_bytes().startswith(b"\x89PNG")
    submitted = _jobs(emu)["submissions"]
    again = cli(emu, args, schemas)  # resumed from the journal: nothing submitted again
    assert again.exit_code == 0 and json.loads(again.stdout)["counts"] == {"downloaded": 3}
    assert _jobs(emu)["submissions"] == submitted


def test_webhooks_from_client_submits_converge_with_polling_by_the_client() -> None:
    """Jobs submitted with webhook=; duplicated, reordered and dropped deliveries; the jobs
    whose final event never came are polled with client.status: one final state per job."""
    import threading

    from runcomfy_client.webhooks import PendingJob, Reconciler, WebhookEvent, WebhookInbox, serve

    finals: list[WebhookEvent] = []
    inbox = WebhookInbox(on_final=finals.append)
    server = serve(inbox)
    hook = f"http://127.0.0.1:{server.server_address[1]}/runcomfy"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    faults = ["webhook_duplicate=0.3", "webhook_reorder=0.3", "webhook_drop=0.5"]
    try:
        with (
            Emulator(
                deployments=[T2I], job_seconds=0.01, workers=4, faults=faults, seed=5, api_key=KEY
            ) as emu,
            _client(emu) as client,
        ):
            jobs = client.deployment(emu.deployments["lighthouse"])
            handles = [
                jobs.submit(
                    overrides={"3": {"inputs": {"seed": i}}},
                    webhook=hook,
                    webhook_intermediate_status=True,
                )
                for i in range(12)
            ]
            for handle in handles:
                inbox.track(handle.request_id, deployment_id=jobs.deployment_id)
            for handle in handles:
                assert handle.wait(timeout=60).status == "completed"

            def settled() -> bool:
                stats = _jobs(emu)
                delivered = stats["webhook_delivered"] + stats["webhook_failed"]
                expected = (
                    stats["webhook_events"] - stats["webhook_dropped"] + stats["webhook_duplicated"]
                )
                return stats["webhook_events"] == 3 * len(handles) and delivered == expected

            wait_for(settled, timeout=60)  # a ceiling for a loaded machine, not a wait

            def poll(job: PendingJob) -> Any:
                model_id = f"deployments/{job.deployment_id}"
                return client.status(job.request_id, model_id=model_id).raw

            Reconciler(inbox, poll, after=0).run_once()
            stats = _jobs(emu)
    finally:
        server.shutdown()
        server.server_close()
    assert stats["webhook_dropped"] and stats["webhook_duplicated"]
    assert sorted(e.request_id for e in finals) == sorted(h.request_id for h in handles)
    assert all(e.status == "completed" for e in finals) and inbox.pending() == []
    assert {e.source for e in finals} == {"webhook", "poll"}  # some by each way
