"""Deriving a schema from a 200-node workflow with a full-size object_info (several MB).

Two figures: reading both files and deriving in one process (best of 5, the goal is under a
second), and the whole `runcomfy-client schema derive` command in a fresh process (imports and
writing the files included), against the time to parse the same JSON alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import synthetic_workflow

Row = tuple[str, str, str, str]


def derive_rows(nodes: int = 200) -> list[Row]:
    from runcomfy_client._derive import derive

    with tempfile.TemporaryDirectory(prefix="bench-derive-") as tmp:
        folder = Path(tmp)
        info = synthetic_workflow.object_info()
        flow = synthetic_workflow.workflow(info, nodes)
        info_path, flow_path = folder / "object_info.json", folder / "workflow_api.json"
        info_path.write_text(json.dumps(info))
        flow_path.write_text(json.dumps(flow, indent=1))
        megabytes = info_path.stat().st_size / 1e6

        parse_best = whole_best = float("inf")
        fields = 0
        for _ in range(5):
            t = time.perf_counter()
            parsed_info = json.loads(info_path.read_text())
            parsed_flow = json.loads(flow_path.read_text())
            parsed = time.perf_counter()
            derived = derive(parsed_flow, parsed_info, name="synthetic")
            done = time.perf_counter()
            parse_best = min(parse_best, parsed - t)
            whole_best = min(whole_best, done - t)
            fields = len(derived.model.fields)

        command = [
            str(Path(sys.executable).with_name("runcomfy-client")),
            "schema",
            "derive",
            "--workflow",
            str(flow_path),
            "--object-info",
            str(info_path),
            "--name",
            "synthetic",
            "--schemas",
            str(folder / "schemas"),
            "--force",
        ]
        cli_best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cli_best = min(cli_best, time.perf_counter() - t)
    return [
        (
            f"schema derive: {nodes}-node workflow, {megabytes:.1f} MB object_info, "
            f"{fields} fields (read, parse, derive, check)",
            f"{whole_best:.2f} s (parsing the JSON alone {parse_best:.2f} s)",
            f"{whole_best / parse_best:.1f}x parsing alone",
            "< 1 s",
        ),
        (
            "schema derive, the same as a CLI command in a fresh process (imports, files written)",
            f"{cli_best:.2f} s",
            f"{cli_best / parse_best:.1f}x parsing alone",
            "",
        ),
    ]


if __name__ == "__main__":
    for row in derive_rows():
        print(" | ".join(row))
