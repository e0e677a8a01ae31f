"""`make bench`: every figure in one table, each against its baseline measured in the same run.

Writes bench/results.md (with the machine and versions) and bench/polling.png.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_batch  # noqa: E402
import bench_client  # noqa: E402
import bench_derive  # noqa: E402
import bench_misc  # noqa: E402
import bench_polling  # noqa: E402


def polling_rows() -> list[tuple[str, str, str, str]]:
    results = bench_polling.measure()
    bench_polling.plot(results, HERE / "polling.png")
    by_name = dict(results)
    ours = by_name["runcomfy-client"]
    three = by_name["every 3 s, gives up at 300 s"]
    rows = []
    for name, row in results:
        gave_up = f", {row['gave_up']:.0f} gave up" if row["gave_up"] else ", none gave up"
        rows.append(
            (
                f"polling, simulated ({bench_polling.JOBS} video jobs): {name}",
                f"{row['requests']:.1f} requests/job, delay mean {row['mean_delay']:.2f} s, "
                f"p95 {row['p95_delay']:.2f} s{gave_up}",
                f"{row['requests'] / three['requests']:.2f}x the 3 s poller's requests",
                "ours: <= 0.5x requests, mean delay <= 3 s poller's, no give-up"
                if name == "runcomfy-client"
                else "",
            )
        )
    assert ours["gave_up"] == 0
    return rows


def machine() -> str:
    curl = shutil.which("curl")
    curl_version = (
        subprocess.run(
            [curl, "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[1]
        if curl
        else "not installed"
    )
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("httpx", "jsonschema", "pydantic", "datamodel-code-generator", "aiohttp")
    )
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {packages}; "
        f"curl {curl_version}; runcomfy-client {version('runcomfy-client')}"
    )


def main() -> None:
    started = time.perf_counter()
    sections = [
        ("client", bench_client.client_rows),
        ("polling", polling_rows),
        ("validation", bench_misc.validation),
        ("import", bench_misc.import_time),
        ("codegen", bench_misc.codegen),
        ("derive", bench_derive.derive_rows),
        ("download", bench_misc.download),
        ("batch", bench_batch.batch_rows),
    ]
    rows = []
    for name, measure in sections:
        t = time.perf_counter()
        found = measure()
        rows.extend(found)
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", flush=True)
        for row in found:
            print("  " + " | ".join(row), flush=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Measured {when} by `make bench` in {time.perf_counter() - started:.0f} s.",
            "",
            f"Machine: {machine()}",
            "",
            "| figure | measured | ratio | goal |",
            "|---|---|---|---|",
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
            "",
            "![status requests per job against detection delay](polling.png)",
            "",
        ]
    )
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
