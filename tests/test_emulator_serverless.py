"""The emulator's Serverless API over real sockets: deployments, overrides, jobs, webhooks."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runcomfy_client.emulator import Emulator, parse_deployment_spec
from runcomfy_client.webhooks import Delivery, WebhookInbox, serve

from .conftest import png_bytes, wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
T2I = f"lighthouse={SAMPLES / 'text-to-image.json'}:{SAMPLES / 'object_info.json'}"
I2V = f"wan={SAMPLES / 'image-to-video.json'}:{SAMPLES / 'object_info.json'}"
# Small outputs, so rendering takes no time to speak of.
SMALL_VIDEO = {"30": {"inputs": {"width": 96, "height": 64, "length": 5}}}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(deployments=[T2I, I2V], job_seconds=0.05, workers=2) as emulator:
        yield emulator


def api(emu: Emulator) -> httpx.Client:
    return httpx.Client(
        base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=30
    )


def run_job(http: httpx.Client, deployment_id: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(f"/prod/v1/deployments/{deployment_id}/inference", json=body)
    assert answer.status_code == 200, answer.text
    urls = answer.json()

    def ended() -> dict[str, Any] | None:
        result = http.get(urls["result_url"]).json()
        return result if result["status"] in ("succeeded", "failed", "canceled") else None

    return wait_for(ended, timeout=60)  # type: ignore[no-any-return]


# -- deployments ------------------------------------------------------------------------------


def test_served_deployments_are_listed_with_payload_and_object_info(emu: Emulator) -> None:
    ids = emu.deployments
    assert set(ids) == {"lighthouse", "wan"}
    assert ids == {d.name: d.deployment_id for d in map(parse_deployment_spec, [T2I, I2V])}
    with api(emu) as http:
        listed = http.get("/prod/v2/deployments").json()
        assert isinstance(listed, list)  # a bare array, as the real API answers
        assert {d["name"] for d in listed} == {"lighthouse", "wan"}
        assert all("payload" not in d for d in listed)
        one = http.get(
            "/prod/v2/deployments",
            params=[("ids", ids["wan"]), ("includes", "payload"), ("includes", "readme")],
        ).json()
        assert [d["id"] for d in one] == [ids["wan"]]
        payload = one[0]["payload"]
        assert payload["workflow_api_json"] == json.loads(
            (SAMPLES / "image-to-video.json").read_text()
        )
        assert payload["overrides"] == {}
        assert one[0]["readme"].startswith("# wan")
        info = http.get(payload["object_info_url"]).json()
        assert info == json.loads((SAMPLES / "object_info.json").read_text())
        got = http.get(f"/prod/v2/deployments/{ids['lighthouse']}").json()
        assert got["is_enabled"] is True and got["hardware"] == ["AMPERE_48"]


def test_create_update_disable_delete(emu: Emulator) -> None:
    with api(emu) as http:
        wan = http.get(f"/prod/v2/deployments/{emu.deployments['wan']}").json()
        settings = {
            "name": "wan-copy",
            "workflow_id": wan["workflow_id"],
            "workflow_version": "v1",
            "hardware": ["AMPERE_24"],
            "min_instances": 0,
            "max_instances": 2,
            "queue_size": 1,
            "keep_warm_duration_in_seconds": 30,
        }
        created = http.post("/prod/v2/deployments", json=settings).json()
        new_id = created["id"]
        assert created["name"] == "wan-copy" and created["max_instances"] == 2

        bad = http.post(
            "/prod/v2/deployments",
            json={**settings, "hardware": ["A", "B"], "max_instances": 0, "workflow_version": 3},
        )
        assert bad.status_code == 422 and bad.json()["error_code"] == 422001
        where = {tuple(p["loc"]) for p in bad.json()["detail"]}
        assert where == {
            ("body", "hardware"),
            ("body", "max_instances"),
            ("body", "workflow_version"),
        }
        unknown = http.post("/prod/v2/deployments", json={**settings, "workflow_version": "v9"})
        assert unknown.status_code == 422 and "no version 'v9'" in unknown.text

        nameless = http.patch(f"/prod/v2/deployments/{new_id}", json={"max_instances": 3})
        assert nameless.status_code == 422 and "name is required" in nameless.text
        paused = http.patch(
            f"/prod/v2/deployments/{new_id}", json={"name": "wan-copy", "is_enabled": False}
        ).json()
        assert paused["is_enabled"] is False
        refused = http.post(f"/prod/v1/deployments/{new_id}/inference", json={"overrides": {}})
        assert refused.status_code == 403 and refused.json()["error_code"] == 10002

        assert http.delete(f"/prod/v2/deployments/{new_id}").json()["status"] == "deleted"
        assert http.get(f"/prod/v2/deployments/{new_id}").json()["error_code"] == 404001
        gone = http.post(f"/prod/v1/deployments/{new_id}/inference", json={"overrides": {}})
        assert gone.json()["error_code"] == 10003
        assert new_id not in {d["id"] for d in http.get("/prod/v2/deployments").json()}


def test_the_key_is_checked(emu: Emulator) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = httpx.get(f"{emu.base_url}/prod/v2/deployments", headers=headers)
        assert answer.status_code == 401 and answer.json()["error_code"] == 401001
    unknown = api(emu).get("/prod/v2/deployments/nope")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == 404001


# -- overrides --------------------------------------------------------------------------------


def test_bad_overrides_are_refused_with_detail_and_nothing_is_queued(emu: Emulator) -> None:
    deployment = emu.deployments["lighthouse"]
    overrides = {
        "99": {"inputs": {"text": "x"}},  # no such node
        "6": {"inputs": {"txt": "x"}},  # no such input
        "3": {"inputs": {"steps": "many", "cfg": 500, "sampler_name": "magic", "model": "m"}},
        "5": {"inputs": {"width": 1024.5}},
    }
    with api(emu) as http:
        before = http.get("/_emulator/serverless/stats").json()["states"]
        answer = http.post(
            f"/prod/v1/deployments/{deployment}/inference", json={"overrides": overrides}
        )
        assert answer.status_code == 422
        body = answer.json()
        assert body["error_code"] == 422001
        found = {tuple(p["loc"][2:]): p["msg"] for p in body["detail"]}
        assert found.keys() == {
            ("99",),
            ("6", "inputs", "txt"),
            ("3", "inputs", "steps"),
            ("3", "inputs", "cfg"),
            ("3", "inputs", "sampler_name"),
            ("3", "inputs", "model"),
            ("5", "inputs", "width"),
        }
        assert "not an integer" in found[("3", "inputs", "steps")]
        assert "above the maximum 100" in found[("3", "inputs", "cfg")]
        assert "is a link" in found[("3", "inputs", "model")]
        missing = http.post(f"/prod/v1/deployments/{deployment}/inference", json={})
        assert missing.status_code == 422 and "overrides is required" in missing.text
        image = http.post(
            f"/prod/v1/deployments/{emu.deployments['wan']}/inference",
            json={"overrides": {"10": {"inputs": {"image": "data:image/png;base64,@@@"}}}},
        )
        assert image.status_code == 422 and "malformed base64" in image.text
        assert http.get("/_emulator/serverless/stats").json()["states"] == before


# -- jobs and outputs ------------------------------------------------------------------------


def test_text_to_image_job_outputs_a_png_under_its_save_node(emu: Emulator) -> None:
    from PIL import Image

    with api(emu) as http:
        result = run_job(
            http,
            emu.deployments["lighthouse"],
            {"overrides": {"6": {"inputs": {"text": "a red boat"}}, "3": {"inputs": {"seed": 5}}}},
        )
        assert result["status"] == "succeeded", result
        (item,) = result["outputs"]["9"]["images"]
        assert set(item) == {"filename", "subfolder", "type", "url"}
        assert item["filename"].endswith(".png") and item["type"] == "output"
        data = http.get(item["url"]).content
        assert Image.open(io.BytesIO(data)).format == "PNG"


def test_image_to_video_job_uses_the_data_uri_image_and_outputs_an_mp4(emu: Emulator) -> None:
    import av

    image = "data:image/png;base64," + base64.b64encode(png_bytes((10, 200, 30))).decode()
    overrides = {**SMALL_VIDEO, "10": {"inputs": {"image": image}}}
    with api(emu) as http:
        result = run_job(http, emu.deployments["wan"], {"overrides": overrides})
        assert result["status"] == "succeeded", result
        (item,) = result["outputs"]["60"]["gifs"]  # VHS reports videos under "gifs"
        assert item["filename"].endswith(".mp4")
        video = http.get(item["url"]).content
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.width, stream.height, len(frames)) == (96, 64, 5)
        # The start image's colour is in the video: the data: URI was decoded and used.
        r, g, _ = frames[0].to_image().resize((1, 1)).getpixel((0, 0))
        assert g > 120 and r < 90


def test_a_whole_workflow_sent_inline_runs_instead(emu: Emulator) -> None:
    inline = json.loads((SAMPLES / "text-to-image.json").read_text())
    inline["9"]["class_type"] = "PreviewImage"
    with api(emu) as http:
        result = run_job(http, emu.deployments["wan"], {"workflow_api_json": inline})
        assert list(result["outputs"]) == ["9"]


def test_status_while_queued_running_and_done_then_cancel(tmp_path: Path) -> None:
    with Emulator(deployments=[T2I], job_seconds=0, workers=1) as emu, api(emu) as http:
        emu.hold("running")  # the first job runs until cancelled, the second waits behind it
        deployment = emu.deployments["lighthouse"]
        first = http.post(
            f"/prod/v1/deployments/{deployment}/inference", json={"overrides": {}}
        ).json()
        second = http.post(
            f"/prod/v1/deployments/{deployment}/inference", json={"overrides": {}}
        ).json()
        running = wait_for(
            lambda: (s := http.get(first["status_url"]).json())["status"] == "in_progress" and s,
            timeout=60,
        )
        assert running["instance_id"].startswith("instance-")
        queued = http.get(second["status_url"]).json()
        assert queued["status"] == "in_queue" and queued["queue_position"] == 0

        # Cancel works on a queued job and on a running one.
        for job in (second, first):
            answer = http.post(job["cancel_url"]).json()
            assert answer == {"request_id": job["request_id"], "status": "cancellation_requested"}
            assert http.get(job["status_url"]).json()["status"] == "canceled"
            result = http.get(job["result_url"]).json()
            assert result["status"] == "canceled" and result["outputs"] is None
        again = http.post(first["cancel_url"]).json()
        assert again["status"] == "not_cancellable"
        other = f"/prod/v1/deployments/{emu.deployments['lighthouse']}x/requests/{first['request_id']}/status"
        assert http.get(other).status_code == 404


# -- webhooks ---------------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on this machine that records what it receives."""

    def __init__(self, failures: int = 0) -> None:
        self.inbox = WebhookInbox()
        self.deliveries: list[Delivery] = []
        self.server = serve(self.inbox, on_delivery=self.deliveries.append)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self, request_id: str) -> list[str]:
        return [d.event.sent_status for d in self.deliveries if d.event.request_id == request_id]


def submit(http: httpx.Client, emu: Emulator, hook: str, intermediate: bool = True) -> str:
    answer = http.post(
        f"/prod/v1/deployments/{emu.deployments['lighthouse']}/inference",
        params={"webhook": hook, "webhook_intermediate_status": str(intermediate).lower()},
        json={"overrides": {}},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["request_id"]  # type: ignore[no-any-return]


def test_webhook_events_in_order_with_the_final_result(emu: Emulator) -> None:
    def final_recorded(request_id: str) -> Any:
        # The receiver fills its inbox before it records the delivery: wait for both.
        done = "succeeded" in hook.statuses(request_id)
        return hook.inbox.finals().get(request_id) if done else None

    with Receiver() as hook, api(emu) as http:
        request_id = submit(http, emu, hook.url)
        final = wait_for(lambda: final_recorded(request_id), timeout=60)
        assert hook.statuses(request_id) == ["in_queue", "in_progress", "succeeded"]
        assert final.deployment_id == emu.deployments["lighthouse"]
        assert final.outputs["9"]["images"][0]["url"].startswith(emu.base_url)
        quiet = submit(http, emu, hook.url, intermediate=False)
        wait_for(lambda: final_recorded(quiet), timeout=60)
        assert hook.statuses(quiet) == ["succeeded"]


def test_a_failing_webhook_endpoint_is_retried_with_backoff(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[int] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib names it
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(1)
            self.send_response(503 if len(seen) <= 2 else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            Emulator(deployments=[T2I], job_seconds=0.01, webhook_backoff=0.01) as emu,
            api(emu) as http,
        ):
            submit(http, emu, f"http://127.0.0.1:{server.server_address[1]}/", intermediate=False)
            stats = wait_for(
                lambda: (
                    (s := http.get("/_emulator/serverless/stats").json())["webhook_delivered"] and s
                ),
                timeout=60,
            )
            assert stats["webhook_attempts"] == 3 and stats["webhook_failed"] == 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            "webhook_duplicate=1",
            ["in_queue", "in_queue", "in_progress", "in_progress", "succeeded", "succeeded"],
        ),
        ("webhook_reorder=1", ["succeeded", "in_queue", "in_progress"]),
        ("webhook_drop=1", []),
    ],
)
def test_webhook_faults(fault: str, expected: list[str]) -> None:
    kind = fault.split("=", 1)[0]
    with Emulator(deployments=[T2I], job_seconds=0.01, faults=[fault]) as emu, Receiver() as hook:
        with api(emu) as http:
            request_id = submit(http, emu, hook.url)

            def settled() -> dict[str, Any] | None:
                stats = http.get("/_emulator/serverless/stats").json()
                done = stats["webhook_events"] == 3
                sent = len(hook.statuses(request_id)) == len(expected)
                return stats if done and sent else None

            stats = wait_for(settled, timeout=60)
        assert hook.statuses(request_id) == expected
        assert emu.stats()["faults"][kind] >= 1
        counted = {
            "webhook_duplicate": "webhook_duplicated",
            "webhook_reorder": "webhook_reordered",
        }
        assert stats[counted.get(kind, "webhook_dropped")] >= 1


# -- the command line -------------------------------------------------------------------------


def test_cli_emulator_serves_a_users_workflow_as_a_deployment() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runcomfy_client.cli", "emulator", "--port", str(port),
         "--api-key", "test-key", "--deployment", T2I],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"listening on http://127.0.0.1:{port}"
        expected = parse_deployment_spec(T2I).deployment_id
        assert proc.stdout.readline().strip() == f"deployment lighthouse: {expected}"
        answer = httpx.get(
            f"http://127.0.0.1:{port}/prod/v2/deployments/{expected}",
            headers={"Authorization": "Bearer test-key"},
        )
        assert answer.json()["name"] == "lighthouse"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("lighthouse", "NAME=workflow_api.json:object_info.json"),
        (f"x={SAMPLES / 'nope.json'}:{SAMPLES / 'object_info.json'}", "cannot read"),
        (f"x={SAMPLES / 'object_info.json'}:{SAMPLES / 'object_info.json'}", "no class_type"),
    ],
)
def test_cli_emulator_refuses_a_bad_deployment_spec(spec: str, words: str) -> None:
    from click.testing import CliRunner

    from runcomfy_client.cli import cli

    result = CliRunner().invoke(cli, ["emulator", "--deployment", spec])
    assert result.exit_code == 2 and words in result.output
