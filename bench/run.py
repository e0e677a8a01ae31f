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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_batch  # noqa: E402
import bench_catalog  # noqa: E402
import bench_client  # noqa: E402
import bench_derive  # noqa: E402
import bench_misc  # noqa: E402
import bench_polling  # noqa: E402
import bench_polling_live  # noqa: E402


def polling_rows() -> list[tuple[str, str, str, str]]:
    simulated = bench_polling.measure()
    live = bench_polling_live.measure()
    bench_polling.plot(simulated, live, HERE / "polling.png")
    return simulated_rows(simulated) + live_rows(live)


def simulated_rows(results: list[tuple[str, dict[str, float]]]) -> list[tuple[str, str, str, str]]:
    by_name = dict(results)
    first = f"first {bench_polling.COLD_JOBS} jobs of each model"
    rows = []
    for name, row in results:
        baseline = by_name[f"every 3 s, {first}" if first in name else "every 3 s"]
        gave_up = f", {row['gave_up']:.0f} gave up" if row["gave_up"] else ", none gave up"
        goal = ""
        if name == "runcomfy-client":
            goal = "<= 0.5x requests, mean delay <= the 3 s loop's, no give-up"
        elif name.startswith("runcomfy-client"):
            goal = "every job: <= the 3 s loop's requests + 1"
        rows.append(
            (
                f"polling, simulated ({bench_polling.JOBS} video jobs): {name}",
                f"{row['requests']:.1f} requests/job, delay mean {row['mean_delay']:.2f} s, "
                f"p95 {row['p95_delay']:.2f} s{gave_up}",
                f"{row['requests'] / baseline['requests']:.2f}x requests, "
                f"{row['mean_delay'] / baseline['mean_delay']:.2f}x mean delay (vs every 3 s)",
                goal,
            )
        )
    assert by_name["runcomfy-client"]["gave_up"] == 0
    return rows


def live_rows(table: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    rows = []
    for row in table:
        (req, req_loop), (most, most_loop) = row["requests"], row["most_requests"]
        (delay, delay_loop), (worst, worst_loop) = row["mean_delay"], row["worst_delay"]
        if row["goal_requests"] is not None:
            goal = f"<= {row['goal_requests']:g}x requests, <= {row['goal_delay']:g}x mean delay"
        else:
            goal = f"<= the loop's requests + 1, <= {row['goal_delay']:g}x mean delay"
        rows.append(
            (
                f"polling, live vs a 3 s loop (emulator, time-scaled {row['scale']:g}x,"
                f" {row['jobs']} jobs): {row['name']}",
                f"{req:.1f} vs {req_loop:.1f} requests/job (most {most} vs {most_loop}); delay "
                f"mean {delay:.2f} vs {delay_loop:.2f} s, worst {worst:.2f} vs {worst_loop:.2f} s;"
                f" a status answer took {row['answer_ms'][0]:.0f} vs {row['answer_ms'][1]:.0f} ms",
                f"{row['request_ratio']:.2f}x requests, {row['delay_ratio']:.2f}x mean delay",
                goal + ("" if row["met"] else " (MISSED)"),
            )
        )
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
        ("catalog", bench_catalog.catalog_rows),
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
