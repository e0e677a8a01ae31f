"""Client overhead against the emulator, measured against raw httpx in the same run.

Figures (issue: benchmarks): per-job wall time of ``Client.run`` + download versus a minimal raw
httpx loop making the same calls (submit, status until done, result, download), both polling
every 10 ms, on zero-length jobs; and 1,000 jobs in flight from one ``AsyncClient`` versus raw
``httpx.AsyncClient``: throughput and peak resident memory of the measuring process.

The emulator runs in its own process, so its memory and CPU are not counted against either side.
Part of ``make bench`` (bench/run.py), which writes bench/results.md.
"""

from __future__ import annotations

import asyncio
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

MODEL = "community/wan-2-2/fun-inpaint"
KEY = "bench-key"


def start_emulator(
    job_seconds: float = 0.0, workers: int = 16, output_bytes: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process (its CPU and memory are not the client's)."""
    padding = ["--output-bytes", str(output_bytes)] if output_bytes else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runcomfy_client.cli",
            "emulator",
            "--job-seconds",
            str(job_seconds),
            "--workers",
            str(workers),
            "--no-render",
            "--api-key",
            KEY,
            *padding,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line.removeprefix("listening on ")


def image_url(base: str) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "PNG")
    return str(
        httpx.put(f"{base}/_emulator/uploads/in.png", content=buffer.getvalue()).json()["url"]
    )


def wire_inputs(url: str, seed: int) -> dict[str, Any]:
    return {"99_text": "bench", "110_image": url, "112_image": url, "96_noise_seed": seed}


def raw_job(http: httpx.Client, base: str, url: str, seed: int, folder: Path) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    rid = http.post(
        f"{base}/v1/models/{MODEL}", json=wire_inputs(url, seed), headers=headers
    ).json()["request_id"]
    while (
        http.get(f"{base}/v1/requests/{rid}/status", headers=headers).json()["status"]
        != "completed"
    ):
        time.sleep(0.01)
    video = http.get(f"{base}/v1/requests/{rid}/result", headers=headers).json()["output"]["video"]
    # Into a folder of its own, as the client's side downloads each job into folder / str(i).
    job_folder = folder / rid
    job_folder.mkdir()
    (job_folder / "video.mp4").write_bytes(http.get(video).content)


def per_job(base: str, url: str, jobs: int) -> dict[str, float]:
    from runcomfy_client import Client, PollingPolicy, PollingSettings

    # The same schedule as the raw loop: a check every 10 ms from the first. (The policy's own
    # first gap is 4/3 of its interval, a request-count choice measured in the polling bench;
    # here it would add 3.3 ms of sleep to most jobs and hide the overhead being measured.)
    settings = replace(PollingSettings.with_interval(0.01), first_interval=0.01)
    polling = PollingPolicy(settings, learn=False)
    raw_times, client_times = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        httpx.Client() as http,
        Client(base_url=base, api_key=KEY, polling=polling) as client,
    ):
        folder = Path(tmp)

        def raw_side(i: int) -> None:
            t = time.perf_counter()
            raw_job(http, base, url, 1_000_000 + i, folder)
            raw_times.append(time.perf_counter() - t)

        def client_side(i: int) -> None:
            t = time.perf_counter()
            result = client.run(MODEL, wire_inputs(url, 2_000_000 + i))
            client.download(result, folder / str(i))
            client_times.append(time.perf_counter() - t)

        for i in range(jobs):
            # Interleave the two, so drift in the machine's load hits both alike, and take
            # turns going first: the first job after the other's ends meets an emulator that
            # has just gone idle (a few hundred microseconds of wake-up on a 4 ms job).
            sides = (raw_side, client_side) if i % 2 == 0 else (client_side, raw_side)
            for side in sides:
                side(i)
    raw, ours = statistics.median(raw_times), statistics.median(client_times)
    return {"raw_ms": raw * 1000, "client_ms": ours * 1000, "ratio": ours / raw}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_flight(base: str, url: str, n: int, which: str) -> dict[str, float]:
    """Run in a fresh process per side: peak RSS belongs to that side alone."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_client as b; print(b._in_flight({base!r}, {url!r}, {n}, {which!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{which} with {n} in flight failed: {out.stderr[-800:]}")
    return dict(eval(out.stdout.strip()))


def _in_flight(base: str, url: str, n: int, which: str) -> dict[str, float]:
    """``max(n, 20)`` jobs with at most ``n`` in flight, after one untimed warm-up job.

    Both sides: the same connection limit and no pool timeout (1,000 jobs queue for a
    connection instead of failing), and both poll as RunComfy's loop does, scaled: a check
    right after the submit, then one 0.25 s after each answer.
    """
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    timeout = httpx.Timeout(60.0, pool=None)
    total = max(n, 20)
    gate = asyncio.Semaphore(n)
    headers = {"Authorization": f"Bearer {KEY}"}

    async def raw_job(http: httpx.AsyncClient, i: int) -> None:
        r = await http.post(
            f"{base}/v1/models/{MODEL}", json=wire_inputs(url, 3_000_000 + i), headers=headers
        )
        rid = r.json()["request_id"]
        # RunComfy's own loop: check, then sleep after each answer that is not the end.
        while True:
            status = await http.get(f"{base}/v1/requests/{rid}/status", headers=headers)
            if status.json()["status"] == "completed":
                break
            await asyncio.sleep(0.25)
        await http.get(f"{base}/v1/requests/{rid}/result", headers=headers)

    async def main() -> float:
        from runcomfy_client import AsyncClient, PollingPolicy, PollingSettings

        # The raw loop's schedule (see per_job): every 0.25 s, the policy's 4/3 first gap off.
        settings = replace(PollingSettings.with_interval(0.25), first_interval=0.25)
        polling = PollingPolicy(settings, learn=False)
        http = httpx.AsyncClient(timeout=timeout, limits=limits)
        async with (
            http,
            AsyncClient(base_url=base, api_key=KEY, polling=polling, http_client=http) as client,
        ):

            async def one(i: int) -> None:
                async with gate:
                    if which == "raw":
                        await raw_job(http, i)
                    else:
                        await client.run(MODEL, wire_inputs(url, 4_000_000 + i))

            await one(10_000_000)  # warm-up: connections, and our schema compile
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(total)))
            return time.perf_counter() - started

    base_rss = _rss_mb()
    wall = asyncio.run(main())
    return {"jobs_per_s": total / wall, "peak_rss_mb": _rss_mb(), "start_rss_mb": base_rss}


def client_rows(jobs: int = 60, in_flight_counts: tuple[int, ...] = (1, 100, 1000)) -> list[Any]:
    """The table rows: per-job overhead, then throughput and memory per number in flight."""
    proc, base = start_emulator()
    rows = []
    try:
        url = image_url(base)
        pj = per_job(base, url, jobs)
        rows.append(
            (
                "per-job wall time, client vs raw httpx loop, zero-length jobs (median)",
                f"{pj['client_ms']:.1f} ms vs {pj['raw_ms']:.1f} ms",
                f"{pj['ratio']:.2f}x",
                "<= 1.10x",
            )
        )
        for n in in_flight_counts:
            try:
                raw = in_flight(base, url, n, "raw")
                ours = in_flight(base, url, n, "ours")
            except RuntimeError as exc:
                rows.append((f"{n} in flight", f"not measured: {str(exc)[-160:]}", "", ""))
                continue
            rows.append(
                (
                    f"{n} in flight from one AsyncClient: throughput vs raw httpx.AsyncClient",
                    f"{ours['jobs_per_s']:.0f} vs {raw['jobs_per_s']:.0f} jobs/s",
                    f"{ours['jobs_per_s'] / raw['jobs_per_s']:.2f}x",
                    ">= 0.9x",
                )
            )
            rows.append(
                (
                    f"{n} in flight: peak resident memory, AsyncClient vs raw",
                    f"{ours['peak_rss_mb']:.0f} MB vs {raw['peak_rss_mb']:.0f} MB",
                    f"{ours['peak_rss_mb'] / raw['peak_rss_mb']:.2f}x",
                    "< 150 MB at 1,000" if n == 1000 else "",
                )
            )
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


if __name__ == "__main__":
    for row in client_rows():
        print(" | ".join(row))
