"""The batch engine against the emulator: wall time versus the ideal, memory, journal cost.

1,000 lines at concurrency 64 against an emulator with W workers and jobs of S seconds. The
ideal wall time is what the workers allow: ceil(lines / W) * S. Each run is a fresh process so
its peak resident memory is the batch's alone; the journal's cost is measured two ways: the time
spent inside journal calls as a share of the wall time, and the wall time against the same batch
with the journal in memory (no disk).

Part of ``make bench`` (bench/run.py), which writes bench/results.md.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_client import KEY, image_url, start_emulator

MODEL = "community/wan-2-1/fusionx/image-to-video"


def _one_run(base: str, url: str, lines: int, concurrency: int, journal: str, out: str) -> None:
    """In a fresh process: run the batch, print wall time, journal time and peak RSS."""
    import asyncio
    import resource

    from runcomfy_client import AsyncClient, PollingPolicy, PollingSettings
    from runcomfy_client._journal import Journal
    from runcomfy_client.batch import Batch, read_batch

    spent = [0.0]

    def timed(method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        return wrapper

    for name in ("open", "add", "row", "rows", "set_state", "begin_submit",
                 "mark_interrupted_submits", "close"):  # fmt: skip
        setattr(Journal, name, timed(getattr(Journal, name)))

    async def main() -> dict[str, Any]:
        # The emulator's jobs take 0.5 s: poll them at a matching pace, not the real API's 3 s.
        polling = PollingPolicy(PollingSettings.with_interval(0.25))
        async with AsyncClient(base_url=base, api_key=KEY, timeout=60, polling=polling) as client:
            rows = [
                json.dumps({"prompt": f"bench {i}", "image": url, "seed": i}) for i in range(lines)
            ]
            batch = Batch(
                read_batch(rows, registry=client.registry, model=MODEL),
                out,
                journal=journal,
                concurrency=concurrency,
            )
            started = time.perf_counter()
            states = [r.state async for r in batch.run(client)]
            wall = time.perf_counter() - started
            return {
                "wall": wall,
                "journal_s": spent[0],
                "downloaded": states.count("downloaded"),
                "peak_in_flight": batch.limit.peak,
            }

    result = asyncio.run(main())
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run(base: str, url: str, lines: int, concurrency: int, journal: str, out: Path) -> Any:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_batch as b; "
        f"b._one_run({base!r}, {url!r}, {lines}, {concurrency}, {journal!r}, {str(out)!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the batch run failed: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def batch_rows(
    lines: int = 1000, concurrency: int = 64, workers: int = 16, job_seconds: float = 0.5
) -> list[tuple[str, str, str, str]]:
    import tempfile

    ideal = math.ceil(lines / workers) * job_seconds
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("disk", "memory"):
            proc, base = start_emulator(job_seconds, workers)
            try:
                url = image_url(base)
                journal = ":memory:" if name == "memory" else str(Path(tmp) / f"{name}.sqlite")
                figures[name] = run(base, url, lines, concurrency, journal, Path(tmp) / name)
            finally:
                proc.terminate()
                proc.wait(10)
    disk, memory = figures["disk"], figures["memory"]
    for f in (disk, memory):
        assert f["downloaded"] == lines, f
    return [
        (
            f"batch of {lines} lines, concurrency {concurrency}: wall time vs the ideal of "
            f"{workers} emulator workers x {job_seconds:g} s jobs",
            f"{disk['wall']:.1f} s vs {ideal:.1f} s",
            f"{disk['wall'] / ideal:.2f}x",
            "<= 1.2x",
        ),
        ("batch: peak resident memory", f"{disk['peak_rss_mb']:.0f} MB", "", "< 200 MB"),
        (
            "batch journal: time inside journal calls / wall time",
            f"{disk['journal_s']:.2f} s of {disk['wall']:.1f} s",
            f"{100 * disk['journal_s'] / disk['wall']:.1f}%",
            "< 5%",
        ),
        (
            "batch journal: wall time on disk vs in memory",
            f"{disk['wall']:.1f} s vs {memory['wall']:.1f} s",
            f"{disk['wall'] / memory['wall']:.2f}x",
            "< 1.05x",
        ),
        ("batch: jobs in flight at most", f"{disk['peak_in_flight']}", "", f"<= {concurrency}"),
    ]


if __name__ == "__main__":
    for row in batch_rows():
        print(" | ".join(row))
