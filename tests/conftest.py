from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runcomfy_client import Registry

from . import fuzzing  # noqa: F401 - loads the Hypothesis profile (quick, or thorough)

FUSIONX = "community/wan-2-1/fusionx/image-to-video"
INPAINT = "community/wan-2-2/fun-inpaint"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests carry the ``fuzz`` marker: `make test-slow` runs them again, thoroughly."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(autouse=True, scope="session")
def _polling_for_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clients built without a polling policy read these (subprocesses too): emulator jobs take
    a fraction of real ones, so poll at a matching pace; and nothing a test learns may reach
    the user's real cache folder."""
    wanted = {
        "RUNCOMFY_POLL_INTERVAL": "0.1",
        "RUNCOMFY_CACHE_DIR": str(tmp_path_factory.mktemp("user-cache")),
        "RUNCOMFY_NO_CACHE": "",
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _sigint_as_in_a_terminal() -> Iterator[None]:
    """Processes a test sends Ctrl-C act as in a terminal even when this run inherited SIGINT
    ignored (a shell's background job, some CI runners): an ignored signal stays ignored
    across exec, a handled one does not."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True, scope="session")
def _no_dns() -> Iterator[None]:
    """Tests never ask a name server: made-up hosts (``cdn.test``) fail at once instead of
    waiting on the resolver (5 s per lookup when it is slow, and CI may have none). IP
    literals and localhost resolve as usual."""
    real = socket.getaddrinfo

    def offline(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        try:
            ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
        except ValueError:
            if name.lower() not in ("", "localhost") and not name.lower().endswith(".localhost"):
                raise socket.gaierror(socket.EAI_NONAME, f"tests use no DNS: {name}") from None
        return real(host, *args, **kwargs)

    socket.getaddrinfo = offline
    yield
    socket.getaddrinfo = real


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.delenv("RUNCOMFY_SCHEMA_PATH", raising=False)
    return Registry()


def write_schema(folder: Path, model_id: str, schema: Any) -> Path:
    path = folder / f"{model_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema, indent=2))
    return path


def png_bytes(
    colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 48)
) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def idle(emulator: Any) -> None:
    """Release every held job and wait until none is queued or running: a test that counts
    queue positions starts from an empty queue, whatever earlier tests left behind."""
    emulator.release()
    wait_for(lambda: not {"in_queue", "in_progress"} & set(emulator.stats()["states"]), timeout=30)


def wait_for(predicate: Any, timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (test helper, not product code)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def capturing_client(uploader: Any = None, **options: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A Client whose submits are answered by a scripted transport; returns the JSON bodies."""
    import httpx

    from runcomfy_client import Client

    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"request_id": "r1"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(
        api_key="k", base_url="https://api.test", uploader=uploader, http_client=http, **options
    )
    return client, sent
