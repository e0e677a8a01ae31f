"""The emulator against hostile uploads, inputs and exposure (issue 16, item 8).

Hostile input servers run on loopback in this process; tests never wait for wall-clock
seconds (the slowest cut-off here is a fraction of one).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator
from runcomfy_client.emulator import _inputs as inputs_module
from runcomfy_client.emulator._binding import is_loopback_host
from runcomfy_client.emulator._inputs import is_public_address

from .conftest import FUSIONX, png_bytes, wait_for

PNG = png_bytes()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """``/ok.png`` a picture; ``/trickle`` one byte at a time, for ever; ``/to?url=`` a
    redirect."""

    stop = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/ok.png":
            self._send(PNG)
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(10**6))
            self.end_headers()
            try:
                while not self.stop.wait(0.01):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
            except OSError:
                pass
        elif self.path.startswith("/to?url="):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to?url="))
            self.end_headers()
        else:
            self.send_error(404)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Hostile.stop.set()
        server.shutdown()
        server.server_close()


def _run(emu: Emulator, image: str, seed: int = 0) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    inputs = {"600_prompt": "p", "608_image": image, "598_seed": seed}
    with httpx.Client(base_url=emu.base_url, headers=headers) as http:
        response = http.post(f"/v1/models/{FUSIONX}", json=inputs)
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]

        def done() -> Any:
            body = http.get(f"/v1/requests/{request_id}/result").json()
            return body if body["status"] in ("completed", "failed") else None

        return dict(wait_for(done))


def _error(result: dict[str, Any]) -> str:
    assert result["status"] == "failed"
    return str(result["error"]["error_message"])


# -- uploads: bounded, served as what they are, as downloads --------------------------------


@pytest.fixture(scope="module")
def small_store() -> Iterator[Emulator]:
    with Emulator(render=False, job_seconds=0, max_upload_bytes=1000) as emu:
        yield emu


def test_uploads_over_the_cap_are_refused_and_not_kept(small_store: Emulator) -> None:
    url = f"{small_store.base_url}/_emulator/uploads/big.png"
    declared = httpx.put(url, content=b"x" * 1001)
    assert declared.status_code == 413
    assert "at most 1000 bytes" in declared.json()["error_message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming
        for _ in range(3):
            yield b"x" * 600

    streamed = httpx.put(url, content=chunks())
    assert streamed.status_code == 413
    kept = [p for p in (small_store.state.data_dir / "uploads").rglob("*") if p.is_file()]
    assert kept == []
    assert httpx.put(url, content=b"x" * 1000).status_code == 201


def test_uploads_are_served_with_their_own_type_as_attachments(small_store: Emulator) -> None:
    base = f"{small_store.base_url}/_emulator/uploads"
    page = httpx.put(f"{base}/page.html", content=b"<html><script>alert(1)</script></html>")
    picture = httpx.put(f"{base}/in.png", content=PNG)
    served_page = httpx.get(page.json()["url"])
    assert served_page.headers["Content-Type"] == "application/octet-stream"
    assert served_page.headers["Content-Disposition"].startswith("attachment")
    assert served_page.headers["X-Content-Type-Options"] == "nosniff"
    served_picture = httpx.get(picture.json()["url"])
    assert served_picture.headers["Content-Type"] == "image/png"
    assert served_picture.content == PNG


# -- the input fetcher: public addresses only, unless allowed --------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("not-an-address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.fixture(scope="module")
def strict() -> Iterator[Emulator]:
    with Emulator(render=False, job_seconds=0, fetch_timeout=2) as emu:
        yield emu


def test_private_and_link_local_inputs_are_refused(strict: Emulator, hostile: str) -> None:
    port = strict.base_url.rsplit(":", 1)[1]
    own = strict.upload(PNG, "in.png")
    # The emulator's own uploads are read from its disk: they always work.
    assert _run(strict, own)["status"] == "completed"
    for url in (
        f"{hostile}/ok.png",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{port}/_emulator/uploads/x.png",
        own.replace("127.0.0.1", "localhost"),  # a name that resolves to loopback
    ):
        message = _error(_run(strict, url))
        assert "608_image" in message and "non-public address" in message, message
        assert "--allow-private-inputs" in message


def test_redirects_are_checked_hop_by_hop(hostile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend loopback is public, so the first hop passes and the redirect is what is judged.
    monkeypatch.setattr(
        inputs_module,
        "is_public_address",
        lambda host: host == "127.0.0.1" or is_public_address(host),
    )
    with Emulator(render=False, job_seconds=0) as emu:
        assert _run(emu, f"{hostile}/ok.png")["status"] == "completed"
        message = _error(_run(emu, f"{hostile}/to?url=http://169.254.169.254/latest/"))
        assert "169.254.169.254" in message and "non-public address" in message
        # A redirect to a fine place is followed.
        assert _run(emu, f"{hostile}/to?url={hostile}/ok.png", seed=1)["status"] == "completed"


def test_allow_private_inputs_fetches_from_this_machine(hostile: str) -> None:
    with Emulator(render=False, job_seconds=0, allow_private_inputs=True) as emu:
        assert _run(emu, f"{hostile}/ok.png")["status"] == "completed"


def test_a_trickling_input_times_out_and_the_worker_moves_on(hostile: str) -> None:
    with Emulator(
        render=False, job_seconds=0, workers=1, fetch_timeout=0.3, allow_private_inputs=True
    ) as emu:
        slow = _run(emu, f"{hostile}/trickle")
        assert "took longer than 0.3s" in _error(slow)
        assert _run(emu, f"{hostile}/ok.png", seed=2)["status"] == "completed"


# -- binding: loopback by default; elsewhere only with a key of its own ------------------------


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("")


@pytest.mark.parametrize("key", [None, "emulator-key"])
def test_a_public_bind_needs_a_key_of_its_own(key: str | None) -> None:
    with pytest.raises(ValueError, match="key of its own"):
        Emulator(host="0.0.0.0", api_key=key)


def test_a_public_bind_with_a_key_warns() -> None:
    emu = Emulator(host="0.0.0.0", api_key="a-test-key-of-its-own", render=False)
    try:
        with pytest.warns(RuntimeWarning, match="reachable from other machines"):
            emu.start()
    finally:
        emu.stop()


def test_cli_refuses_a_public_bind_without_a_key() -> None:
    result = CliRunner().invoke(
        cli, ["emulator", "--host", "0.0.0.0"], env={"RUNCOMFY_API_KEY": ""}
    )
    assert result.exit_code == 2
    assert "key of its own" in result.output + (result.stderr or "")


def test_cli_warns_on_a_public_bind(tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runcomfy_client.cli",
            "emulator",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--api-key",
            "a-test-key-of-its-own",
            "--no-render",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("listening on")
        assert "reachable from other machines" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(10)


def test_serverless_inputs_go_through_the_same_fetcher() -> None:
    samples = Path(__file__).resolve().parents[1] / "examples" / "workflows"
    i2v = f"wan={samples / 'image-to-video.json'}:{samples / 'object_info.json'}"
    with Emulator(deployments=[i2v], render=False, job_seconds=0) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        image = {"10": {"inputs": {"image": "http://169.254.169.254/latest/meta-data/"}}}
        with httpx.Client(base_url=emu.base_url, headers=headers) as http:
            answer = http.post(
                f"/prod/v1/deployments/{emu.deployments['wan']}/inference",
                json={"overrides": image},
            )
            result_url = answer.json()["result_url"]

            def ended() -> Any:
                body = http.get(result_url).json()
                return body if body["status"] in ("succeeded", "failed") else None

            result = wait_for(ended)
    assert result["status"] == "failed"
    assert "non-public address" in json.dumps(result["error"])


def test_a_submit_body_over_the_cap_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    from runcomfy_client.emulator import _server

    # The real cap is 64 MiB (what RunComfy's own nodes send at most); a small one here.
    monkeypatch.setattr(_server, "MAX_BODY", 1000)
    with Emulator(render=False, job_seconds=0) as emu:
        response = httpx.post(
            f"{emu.base_url}/v1/models/{FUSIONX}",
            json={"600_prompt": "p" * 2000, "608_image": "data:,x"},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        )
        assert response.status_code == 413
        assert "larger than 1000 bytes" in response.json()["error_message"]
        assert emu.stats()["jobs"] == 0
