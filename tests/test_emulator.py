"""Conformance of the emulator, over real sockets, with a plain httpx client."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client.emulator import Emulator, parse_fault

from .conftest import FUSIONX, INPAINT, idle, png_bytes, wait_for


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    # Jobs take no time of their own: tests that need one queued or running hold it there.
    with Emulator(workers=1, job_seconds=0, render=False, retry_after=1) as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    emu.set_faults([])
    idle(emu)
    with httpx.Client(
        base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture(scope="module")
def image_url(emu: Emulator) -> str:
    return emu.upload(png_bytes(), "red.png")


def _inputs(url: str, **extra: Any) -> dict[str, Any]:
    return {"99_text": "a dream", "110_image": url, "112_image": url, **extra}


def _submit(http: httpx.Client, url: str, **extra: Any) -> str:
    response = http.post(f"/v1/models/{INPAINT}", json=_inputs(url, **extra))
    assert response.status_code == 200, response.text
    return str(response.json()["request_id"])


def _finish(http: httpx.Client, request_id: str) -> dict[str, Any]:
    def done() -> Any:
        body = http.get(f"/v1/requests/{request_id}/status").json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return dict(wait_for(done))


def test_submit_status_result_and_download(
    http: httpx.Client, emu: Emulator, image_url: str
) -> None:
    emu.hold("running")
    response = http.post(f"/v1/models/{INPAINT}", json=_inputs(image_url))
    body = response.json()
    assert set(body) == {"request_id", "status_url", "result_url", "cancel_url"}
    assert body["status_url"].endswith(f"/v1/requests/{body['request_id']}/status")
    early = http.get(f"/v1/requests/{body['request_id']}/result").json()
    assert early["status"] in ("in_queue", "in_progress")
    assert early["output"] is None
    emu.release()
    assert _finish(http, body["request_id"])["status"] == "completed"
    result = http.get(body["result_url"]).json()
    assert result["status"] == "completed"
    assert result["error"] is None
    assert result["created_at"] <= result["finished_at"]
    video = httpx.get(result["output"]["video"])
    assert video.status_code == 200
    assert int(video.headers["Content-Length"]) == len(video.content) > 100


def test_missing_and_wrong_key_are_401_with_error_body(emu: Emulator) -> None:
    missing = httpx.get(f"{emu.base_url}/v1/requests/x/status")
    wrong = httpx.get(
        f"{emu.base_url}/v1/requests/x/status", headers={"Authorization": "Bearer nope"}
    )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error_code"] == 400004
    assert "nope" not in wrong.text


def test_unknown_model_is_bad_model_id(http: httpx.Client) -> None:
    response = http.post("/v1/models/acme/none", json={})
    assert response.status_code == 400
    assert response.json()["error_code"] == 400001


def test_invalid_input_is_422_with_detail_and_creates_no_job(
    http: httpx.Client, emu: Emulator, image_url: str
) -> None:
    jobs = emu.stats()["jobs"]
    response = http.post(
        f"/v1/models/{INPAINT}", json=_inputs(image_url, **{"96_steps": 4, "x": 1})
    )
    assert response.status_code == 422
    body = response.json()
    kinds = {tuple(d["loc"]): d["kind"] for d in body["detail"]}
    assert kinds == {("x",): "unknown", ("96_steps",): "minimum"}
    assert emu.stats()["jobs"] == jobs


def test_queue_positions_then_progress(http: httpx.Client, emu: Emulator, image_url: str) -> None:
    emu.hold()
    ids = [_submit(http, image_url, **{"96_noise_seed": i}) for i in range(3)]
    states = [http.get(f"/v1/requests/{i}/status").json() for i in ids]
    assert [s["status"] for s in states] == ["in_queue"] * 3
    assert [s["queue_position"] for s in states] == [0, 1, 2]
    emu.release("queued")  # the one worker starts the first job, which stays running
    wait_for(lambda: emu.status(ids[0]) == "in_progress")
    first, second = (http.get(f"/v1/requests/{i}/status").json() for i in ids[:2])
    assert "queue_position" not in first
    assert second["status"] == "in_queue" and second["queue_position"] == 0
    emu.release()
    assert [_finish(http, i)["status"] for i in ids] == ["completed"] * 3


def test_cancel_queued_then_running_is_not_cancellable(
    http: httpx.Client, emu: Emulator, image_url: str
) -> None:
    emu.hold("running")
    running = _submit(http, image_url, **{"96_noise_seed": 101})
    queued = _submit(http, image_url, **{"96_noise_seed": 102})
    wait_for(lambda: emu.status(running) == "in_progress")
    cancelled = http.post(f"/v1/requests/{queued}/cancel").json()
    assert cancelled == {"request_id": queued, "status": "cancelled", "outcome": "cancelled"}
    refused = http.post(f"/v1/requests/{running}/cancel").json()
    assert refused["outcome"] == "not_cancellable"
    emu.release()
    assert _finish(http, running)["status"] == "completed"
    assert http.get(f"/v1/requests/{queued}/status").json()["status"] == "cancelled"


def test_held_jobs_move_only_when_released(
    http: httpx.Client, emu: Emulator, image_url: str
) -> None:
    emu.hold("queued")
    request_id = _submit(http, image_url, **{"96_noise_seed": 201})
    assert emu.stats()["held"] == ["queued"]
    # The worker took the job from the queue and waits at the gate: still queued, position 0.
    assert http.get(f"/v1/requests/{request_id}/status").json()["queue_position"] == 0
    emu.hold("running")
    emu.release("queued")
    wait_for(lambda: emu.status(request_id) == "in_progress")
    assert emu.stats()["held"] == ["running"]
    # However long it is held, a running job does not end (job_seconds is 0 here).
    assert emu.status(request_id) == "in_progress"
    emu.release("running")
    assert _finish(http, request_id)["status"] == "completed"


def test_hold_and_release_over_http(http: httpx.Client, emu: Emulator, image_url: str) -> None:
    assert http.post("/_emulator/hold").json() == {"held": ["queued", "running"]}
    assert http.post("/_emulator/release", json={"stages": ["queued"]}).json() == {
        "held": ["running"]
    }
    wrong = http.post("/_emulator/hold", json={"stages": ["paused"]})
    assert wrong.status_code == 400 and "queued and running" in wrong.json()["error_message"]
    assert http.post("/_emulator/release").json() == {"held": []}
    with pytest.raises(ValueError, match="unknown stage 'paused'"):
        emu.hold("paused")


def test_unfetchable_input_fails_the_job(http: httpx.Client, emu: Emulator) -> None:
    request_id = _submit(http, f"{emu.base_url}/_emulator/uploads/none--missing.png")
    assert _finish(http, request_id)["status"] == "failed"
    result = http.get(f"/v1/requests/{request_id}/result").json()
    assert "cannot fetch input 110_image" in result["error"]["error_message"]
    local = _submit(http, "start.png", **{"96_noise_seed": 7})
    assert _finish(http, local)["status"] == "failed"


def test_unknown_request_is_404001(http: httpx.Client) -> None:
    response = http.get("/v1/requests/not-a-request/result")
    assert response.status_code == 404
    assert response.json()["error_code"] == 404001


def test_request_ids_expire(image_url: str) -> None:
    with Emulator(job_seconds=0, render=False, request_ttl=0.2) as emu:
        url = emu.upload(png_bytes(), "a.png")
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as http:
            request_id = _submit(http, url)
            _finish(http, request_id)
            time.sleep(0.4)
            assert http.get(f"/v1/requests/{request_id}/status").json()["error_code"] == 404001


def test_list_and_one_model(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()["models"]
    assert {m["model_id"] for m in models} == {FUSIONX, INPAINT}
    assert [
        m["model_id"] for m in http.get("/v1/models", params={"search": "inpaint"}).json()["models"]
    ] == [INPAINT]
    one = http.get(f"/v1/models/{INPAINT}").json()
    assert one["input_schema"]["properties"]["96_cfg"]["type"] == "float"  # verbatim


def test_stats_count_duplicates_and_endpoints(
    http: httpx.Client, emu: Emulator, image_url: str
) -> None:
    before = emu.stats()
    for _ in range(2):
        _submit(http, image_url, **{"96_noise_seed": 555})
    stats = http.get("/_emulator/stats").json()
    assert stats["submissions"] - before["submissions"] == 2
    assert stats["jobs"] - before["jobs"] == 2
    assert stats["duplicate_payloads"] - before["duplicate_payloads"] == 1
    assert stats["requests"]["submit"] - before["requests"]["submit"] == 2


def test_downloads_support_ranges(http: httpx.Client, image_url: str) -> None:
    request_id = _submit(http, image_url, **{"96_noise_seed": 9})
    _finish(http, request_id)
    url = http.get(f"/v1/requests/{request_id}/result").json()["output"]["video"]
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-"})
    assert part.status_code == 206
    assert part.content == whole[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(whole) - 1}/{len(whole)}"


# -- faults ---------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_both_retry_after_forms(
    http: httpx.Client, emu: Emulator
) -> None:
    emu.set_faults(["rate_limit:status=1"])
    forms = set()
    for _ in range(12):
        response = http.get("/v1/requests/x/status")
        assert response.status_code == 429
        value = response.headers["Retry-After"]
        forms.add("seconds" if value.isdigit() else "date")
        if not value.isdigit():
            assert email.utils.parsedate_to_datetime(value) is not None
    assert forms == {"seconds", "date"}


def test_server_error_is_5xx(http: httpx.Client, emu: Emulator) -> None:
    emu.set_faults(["server_error:status=1"])
    codes = {http.get("/v1/requests/x/status").status_code for _ in range(20)}
    assert codes <= {500, 502, 503}
    assert len(codes) > 1


def test_drop_closes_without_answer(http: httpx.Client, emu: Emulator) -> None:
    emu.set_faults(["drop:status=@1"])
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/requests/x/status")
    assert http.get("/v1/requests/x/status").status_code == 404


def test_lost_response_creates_the_job(http: httpx.Client, emu: Emulator, image_url: str) -> None:
    emu.set_faults(["lost_response=@1"])
    jobs = emu.stats()["jobs"]
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(f"/v1/models/{INPAINT}", json=_inputs(image_url, **{"96_noise_seed": 77}))
    assert emu.stats()["jobs"] == jobs + 1


def test_slow_delays_the_answer(http: httpx.Client, emu: Emulator) -> None:
    emu.config.slow_seconds = 0.5
    emu.set_faults(["slow:status=@1"])
    started = time.monotonic()
    http.get("/v1/requests/x/status")
    assert time.monotonic() - started >= 0.5


def test_error_200_carries_an_error_body(http: httpx.Client, emu: Emulator) -> None:
    emu.set_faults(["error_200:status=@1"])
    response = http.get("/v1/requests/x/status")
    assert response.status_code == 200
    assert "error_code" in response.json()


def test_truncate_cuts_a_download_midway(http: httpx.Client, emu: Emulator, image_url: str) -> None:
    request_id = _submit(http, image_url, **{"96_noise_seed": 31})
    _finish(http, request_id)
    url = http.get(f"/v1/requests/{request_id}/result").json()["output"]["video"]
    emu.set_faults(["truncate=@1"])
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    assert httpx.get(url).status_code == 200


def test_fault_specs_are_checked() -> None:
    assert parse_fault("server_error:status,result=@1,3").schedule == {1, 3}
    for bad, why in [
        ("nope=0.1", "unknown fault kind"),
        ("rate_limit=2", "between 0 and 1"),
        ("truncate:status=1", "cannot hit"),
        ("rate_limit", "must look like"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_fault(bad)


def test_faults_are_repeatable_with_a_seed() -> None:
    from runcomfy_client.emulator import FaultPlan

    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(["server_error=0.5"], seed=seed)
        return [plan.hit("server_error", "status") for _ in range(40)]

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)


# -- real media -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "inputs", "expected"),
    [
        (
            FUSIONX,
            {"602_widthx602_height": "480x720 (2:3)", "602_num_frames": 81, "609_frame_rate": 12},
            (480, 720, 81, 12),
        ),
        (
            INPAINT,
            {"111_widthx111_height": "720x480 (3:2)", "111_length": 141, "159_frame_rate": 24},
            (720, 480, 141, 24),
        ),
    ],
)
def test_rendered_video_has_requested_geometry(
    tmp_path: Path, model_id: str, inputs: dict[str, Any], expected: tuple[int, int, int, int]
) -> None:
    import av

    with Emulator(job_seconds=0) as emu:
        url = emu.upload(png_bytes(size=(300, 200)), "p.png")
        images = {"608_image": url} if model_id == FUSIONX else {"110_image": url, "112_image": url}
        prompt = "600_prompt" if model_id == FUSIONX else "99_text"
        with httpx.Client(
            base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}
        ) as http:
            request_id = http.post(
                f"/v1/models/{model_id}", json={prompt: "p", **images, **inputs}
            ).json()["request_id"]
            _finish(http, request_id)
            video_url = http.get(f"/v1/requests/{request_id}/result").json()["output"]["video"]
            path = tmp_path / "v.mp4"
            path.write_bytes(httpx.get(video_url).content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height, frames, int(stream.average_rate)) == expected
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"


def test_cli_emulator_prints_listening_line() -> None:
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from runcomfy_client.cli import main; main()",
            "emulator",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"listening on http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/_emulator/stats").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_emulator_hosts_schemas_from_flag_and_env(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .conftest import write_schema

    schema = {"type": "object", "properties": {"prompt": {"type": "string"}}}
    write_schema(tmp_path / "flag", "acme/from-flag/text-to-image", schema)
    write_schema(tmp_path / "env", "acme/from-env/text-to-speech", schema)
    env = {**os.environ, "RUNCOMFY_SCHEMA_PATH": str(tmp_path / "env")}
    env.pop("RUNCOMFY_API_KEY", None)
    command = [sys.executable, "-m", "runcomfy_client.cli", "--schemas", str(tmp_path / "flag")]
    proc = subprocess.Popen(
        [*command, "emulator", "--no-render"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("listening on ")
        listed = httpx.get(
            f"{base}/v1/models", headers={"Authorization": "Bearer emulator-key"}
        ).json()
        kinds = {m["model_id"]: m["categories"][-1] for m in listed["models"]}
        assert kinds["acme/from-flag/text-to-image"] == "image"
        assert kinds["acme/from-env/text-to-speech"] == "audio"
        assert FUSIONX in kinds  # the bundled schemas too
    finally:
        proc.terminate()
        proc.wait(10)
