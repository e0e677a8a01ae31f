"""Validation, import time, codegen over many schemas, and a large download versus curl.

Each function returns table rows ``(figure, measured, ratio, goal)`` for bench/run.py.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FUSIONX = "community/wan-2-1/fusionx/image-to-video"
Row = tuple[str, str, str, str]


def validation() -> list[Row]:
    """Our validator on a valid payload versus calling jsonschema's compiled validator."""
    from jsonschema import Draft202012Validator

    from runcomfy_client import Registry

    model = Registry(use_env=False).get(FUSIONX)
    ours = model.validator
    theirs = Draft202012Validator(model.schema)
    payload = {
        "600_prompt": "a slow push-in over the valley",
        "608_image": "https://example.com/a.png",
        "598_seed": 7,
        "598_steps": 8,
        "598_cfg": 1.5,
    }
    assert ours.validate(payload) == payload and theirs.is_valid(payload)

    # Interleaved rounds, best of each: drift in the machine's load hits both sides alike.
    n, best_mine, best_raw = 5000, float("inf"), float("inf")
    for _ in range(30):
        t = time.perf_counter()
        for _ in range(n):
            ours.validate(payload)
        best_mine = min(best_mine, (time.perf_counter() - t) / n)
        t = time.perf_counter()
        for _ in range(n):
            theirs.validate(payload)
        best_raw = min(best_raw, (time.perf_counter() - t) / n)
    mine, raw = best_mine, best_raw
    return [
        (
            "validation of a valid payload, ours vs compiled jsonschema",
            f"{mine * 1e6:.1f} us vs {raw * 1e6:.1f} us",
            f"{mine / raw:.2f}x",
            "<= 1.1x",
        )
    ]


def _import_seconds(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def import_time(runs: int = 25) -> list[Row]:
    # What a program pays before its first call: the client class, not just the package name
    # (which would load lazily and flatter the figure). Fresh processes, alternating sides,
    # medians: start-up times on a shared machine wander by a third.
    # As installed: pip compiles a package's bytecode when it installs it (httpx's is), while
    # an editable checkout whose sources changed, under PYTHONDONTWRITEBYTECODE, would compile
    # every module again in every process and measure the compiler, not the import.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ours_times, httpx_times = [], []
    for _ in range(runs):
        ours_times.append(_import_seconds("from runcomfy_client import Client"))
        httpx_times.append(_import_seconds("import httpx"))
    ours, httpx_time = statistics.median(ours_times), statistics.median(httpx_times)
    return [
        (
            f"`from runcomfy_client import Client` vs `import httpx` (medians of {runs} "
            "fresh processes each, alternating)",
            f"{ours * 1000:.0f} ms vs {httpx_time * 1000:.0f} ms",
            f"{ours / httpx_time:.2f}x",
            "<= 1.3x",
        )
    ]


def _write_schemas(folder: Path, count: int) -> None:
    """``count`` schemas: the seed schemas under new ids, each with a few fields of its own."""
    seeds = sorted((ROOT / "schemas").rglob("*.json"))
    seeds = [p for p in seeds if not p.name.startswith("_")]
    for i in range(count):
        raw = json.loads(seeds[i % len(seeds)].read_text())
        extra = {
            f"{700 + i}_strength": {
                "title": f"Strength {i}",
                "type": "float",
                "minimum": 0,
                "maximum": 1,
                "default": 0.5,
            },
            f"{701 + i}_sampler": {
                "title": "Sampler",
                "type": "string",
                "enum": ["euler", "dpmpp_2m", f"custom_{i}"],
            },
        }
        raw["properties"].update(extra)
        path = folder / f"bench/family-{i // 20}/model-{i}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(raw, indent=2))


def codegen(count: int = 200) -> list[Row]:
    """``runcomfy-client codegen`` over ``count`` schemas: first run, then nothing changed."""
    with tempfile.TemporaryDirectory() as tmp:
        schemas, out = Path(tmp) / "schemas", Path(tmp) / "out"
        _write_schemas(schemas, count)
        args = [
            *(sys.executable, "-m", "runcomfy_client.cli", "codegen"),
            *("--schemas", str(schemas), "--out", str(out), "--package", "bench_models"),
        ]
        timings = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run(args, capture_output=True, check=True)
            timings.append(time.perf_counter() - t)
        generated = len(list(out.rglob("*.py")))
    cold, warm = timings
    return [
        (
            f"codegen over {count} schemas ({generated} files): nothing changed vs first run",
            f"{warm:.1f} s vs {cold:.1f} s",
            f"{warm / cold:.2f}x",
            "second run < 2 s",
        )
    ]


def download(size_mb: int = 500) -> list[Row]:
    """One ``size_mb`` output from the emulator: Client.download versus curl, to disk.

    Measured on both readers: the fast one (the default) and httpx (what a client given its
    own ``http_client``, or behind a proxy, uses).
    """
    curl = shutil.which("curl")
    if curl is None:
        return [
            (f"download of {size_mb} MB vs curl", "not measured: curl not found", "", ">= 0.8x")
        ]
    from bench_client import image_url, start_emulator

    proc, base = start_emulator(output_bytes=size_mb * 1024 * 1024)
    try:
        url = _output_url(base, image_url(base))
        # Three rounds each, alternating, best of each; into memory (/dev/shm) when there is
        # one, so the figure is the client's and not the disk's (which varies 3x run to run).
        curl_times, raw_times, ours_runs, httpx_runs = [], [], [], []
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        with tempfile.TemporaryDirectory(dir=shm) as tmp:
            for _ in range(3):
                curl_times.append(_timed([curl, "-sS", "-o", f"{tmp}/curl.mp4", url]))
                os.remove(f"{tmp}/curl.mp4")
                ours_runs.append(_ours_in_a_process(url, tmp, fast=True))
                httpx_runs.append(_ours_in_a_process(url, tmp, fast=False))
                raw_times.append(_raw_httpx(url, Path(tmp) / "raw.mp4"))
        curl_s, raw_s = min(curl_times), min(raw_times)
        ours = min(ours_runs, key=lambda run: run["seconds"])
        via_httpx = min(run["seconds"] for run in httpx_runs)
        growth_kb = max(run["peak_kb"] - run["before_kb"] for run in ours_runs + httpx_runs)
    finally:
        proc.terminate()
        proc.wait(10)
    size = size_mb * 1024 * 1024
    ours_rate, curl_rate = size / ours["seconds"], size / curl_s
    growth = growth_kb / 1024
    return [
        (
            f"download of {size_mb} MB to a file: throughput, Client.download vs curl (best of 3)",
            f"{ours_rate / 1e6:.0f} vs {curl_rate / 1e6:.0f} MB/s",
            f"{ours_rate / curl_rate:.2f}x",
            ">= 0.8x",
        ),
        (
            f"download of {size_mb} MB to a file: Client.download vs a bare httpx stream loop",
            f"{ours_rate / 1e6:.0f} vs {size / raw_s / 1e6:.0f} MB/s",
            f"{ours_rate * raw_s / size:.2f}x",
            "",
        ),
        (
            f"download of {size_mb} MB through httpx (own http_client or a proxy) vs a bare "
            "httpx stream loop",
            f"{size / via_httpx / 1e6:.0f} vs {size / raw_s / 1e6:.0f} MB/s",
            f"{raw_s / via_httpx:.2f}x",
            "",
        ),
        (
            f"download of {size_mb} MB: resident memory growth during it (worst of 6)",
            f"{growth:.1f} MB",
            "",
            "< 30 MB",
        ),
    ]


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _ours_in_a_process(url: str, folder: str, *, fast: bool) -> dict[str, float]:
    code = (
        f"import sys, json, time; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import bench_misc as b; b._measure_ours({url!r}, {folder!r}, {fast!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure_ours(url: str, folder: str, fast: bool = True) -> None:
    """In a fresh process: the download's time and its own peak resident memory.

    The kernel's high-water mark is reset just before the download (/proc/self/clear_refs),
    so start-up peaks (imports) are not counted against it.
    """
    from runcomfy_client import Client, DownloadPolicy, Output, Result

    policy = DownloadPolicy(fast=fast)
    with Client(api_key="unused", base_url="http://127.0.0.1:1", downloads=policy) as client:
        result = Result("r", "completed", Output.from_body({"video": url}))
        before = _proc_status_kb("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            pass
        t = time.perf_counter()
        [path] = client.download(result, folder)
        seconds = time.perf_counter() - t
        peak = _proc_status_kb("VmHWM")
        path.unlink()
    print(json.dumps({"seconds": seconds, "before_kb": before, "peak_kb": peak}))


def _raw_httpx(url: str, path: Path) -> float:
    """The least a program using httpx would do: stream the body into a file."""
    t = time.perf_counter()
    with httpx.Client() as http, http.stream("GET", url) as response, path.open("wb") as out:
        for chunk in response.iter_raw():
            out.write(chunk)
    seconds = time.perf_counter() - t
    path.unlink()
    return seconds


def _timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t


def _output_url(base: str, image: str) -> str:
    from bench_client import KEY

    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        job = http.post(f"/v1/models/{FUSIONX}", json={"600_prompt": "big", "608_image": image})
        request_id = job.json()["request_id"]
        while http.get(f"/v1/requests/{request_id}/status").json()["status"] != "completed":
            time.sleep(0.2)
        video: str = http.get(f"/v1/requests/{request_id}/result").json()["output"]["video"]
        return video


if __name__ == "__main__":
    for rows in (validation(), import_time(), codegen(), download()):
        for row in rows:
            print(" | ".join(row))
