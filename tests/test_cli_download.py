"""The download options of ``run``, ``result`` and ``batch``, against a hostile server."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runcomfy_client.cli import cli
from runcomfy_client.cli._download_opts import parse_size

from .conftest import INPAINT, wait_for
from .hostile_http import HostileServer, fake_api, head, serve_file, trickle

PAYLOAD = random.Random(7).randbytes(300_000)
INPUTS = [
    "--prompt",
    "a fox",
    "--start-image",
    "https://e.com/a.png",
    "--end-image",
    "https://e.com/b.png",
]


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        fake_api(s, INPAINT, {"video": s.url("/v.mp4")})
        s.routes["/v.mp4"] = lambda r: serve_file(PAYLOAD, r)
        yield s


def env_for(server: HostileServer) -> dict[str, str]:
    return {
        "RUNCOMFY_BASE_URL": server.url(""),
        "RUNCOMFY_API_KEY": "sk-cli-test",
        "RUNCOMFY_API_KEY_FILE": "",
        "RUNCOMFY_UPLOAD_TO": "",
    }


def invoke(args: list[str], server: HostileServer) -> Result:
    return CliRunner().invoke(cli, args, env=env_for(server))


def test_sizes() -> None:
    assert parse_size("1048576") == 1048576
    assert parse_size("500M") == 500 * 1024**2
    assert parse_size("2g") == 2 * 1024**3
    assert parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert parse_size("64kb") == 64 * 1024
    for bad in ("", "-1", "0", "lots", "5X"):
        with pytest.raises(ValueError, match=r"is not a .*size"):
            parse_size(bad)


def test_run_downloads_and_saves(server: HostileServer, tmp_path: Path) -> None:
    result = invoke(["run", INPAINT, *INPUTS, "--out", str(tmp_path)], server)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "v.mp4").read_bytes() == PAYLOAD


def test_run_max_download_size_refuses_and_says_how_to_fetch_again(
    server: HostileServer, tmp_path: Path
) -> None:
    args = ["run", INPAINT, *INPUTS, "--out", str(tmp_path), "--max-download-size", "100K"]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert "over the 102,400-byte cap" in result.stderr
    assert f"runcomfy-client result job-16 --out {tmp_path}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_size_is_a_usage_error(server: HostileServer, tmp_path: Path) -> None:
    result = invoke(["run", INPAINT, *INPUTS, "--max-download-size", "lots"], server)
    assert result.exit_code == 2
    assert "'lots' is not a size" in result.stderr
    assert not server.requests  # nothing was submitted


def test_download_host_restricts_hosts(server: HostileServer, tmp_path: Path) -> None:
    args = ["result", "job-16", "--out", str(tmp_path), "--download-host", "*.runcomfy.net"]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert "not among the allowed download hosts (*.runcomfy.net)" in result.stderr
    args = ["result", "job-16", "--out", str(tmp_path), "--download-host", "127.0.0.1"]
    assert invoke(args, server).exit_code == 0


def test_allow_private_downloads(
    server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "media.lan":  # a private address that is in fact this test server
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    fake_api(server, INPAINT, {"video": f"http://media.lan:{server.port}/v.mp4"})
    result = invoke(["result", "job-16", "--out", str(tmp_path)], server)
    assert result.exit_code == 1 and "plain http" in result.stderr
    fake_api(server, INPAINT, {"video": f"https://10.255.255.1:{server.port}/v.mp4"})
    result = invoke(["result", "job-16", "--out", str(tmp_path)], server)
    assert "10.255.255.1, a private address" in result.stderr
    args = [
        "result",
        "job-16",
        "--out",
        str(tmp_path),
        "--allow-private-downloads",
        "--timeout",
        "0.2",
    ]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert "private address" not in result.stderr  # allowed: it tried, and ran out of time


def test_run_timeout_covers_the_download(server: HostileServer, tmp_path: Path) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x")
    args = ["run", INPAINT, *INPUTS, "--out", str(tmp_path), "--timeout", "0.5"]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert "deadline (0." in result.stderr
    assert "runcomfy-client result job-16" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_result_timeout_covers_the_download(server: HostileServer, tmp_path: Path) -> None:
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x")
    result = invoke(["result", "job-16", "--out", str(tmp_path), "--timeout", "0.3"], server)
    assert result.exit_code == 1
    assert "deadline" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_batch_takes_the_download_options(server: HostileServer, tmp_path: Path) -> None:
    lines = tmp_path / "jobs.jsonl"
    lines.write_text(
        '{"id": "one", "prompt": "a fox", "start_image": "https://e.com/a.png", '
        '"end_image": "https://e.com/b.png"}\n'
    )
    out = tmp_path / "out"
    args = ["batch", str(lines), "--model", INPAINT, "--out", str(out), "--max-download-size", "1K"]
    result = invoke(args, server)
    assert result.exit_code == 1
    assert "1,024-byte cap" in result.stdout + result.stderr


def test_sigterm_during_a_download_leaves_no_partial_file(
    server: HostileServer, tmp_path: Path
) -> None:
    # Today SIGTERM killed the process at once, leaving .v.mp4.<id>.part behind.
    server.routes["/v.mp4"] = lambda r: trickle(head(200, {"Content-Length": 10_000}) + b"x")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runcomfy_client.cli",
            "run",
            INPAINT,
            *INPUTS,
            "--out",
            str(tmp_path),
        ],
        env={**os.environ, **env_for(server)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: list(tmp_path.glob(".*.part")), timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert list(tmp_path.iterdir()) == []
