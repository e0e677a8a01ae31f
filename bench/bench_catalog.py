"""`schema sync` of a 500-model catalog from the emulator: first run, second run, --check.

The catalog is made of the real published schemas (the seed models and the catalog samples)
under 500 model ids, each a little different (its own title and a default), with prices.
Each sync is the real command in a subprocess; its peak memory is the process's own maximum
resident size. The baseline, measured in the same run, is what a requests loop would do: page
through the catalog and write each schema to its file, with no checks and no sidecars.

Returns table rows ``(figure, measured, ratio, goal)`` for bench/run.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str, str]
MODELS = 500
CHANGED = 3

# Runs the CLI in this process and reports its peak resident memory (KiB) on stderr's last line.
_MEASURED = """
import resource, sys
from runcomfy_client.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
sys.stderr.write(f"\\nmaxrss={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
sys.exit(code)
"""


def templates() -> list[tuple[str, dict[str, Any]]]:
    """``(kind, schema)`` of every real schema the repository holds."""
    found = []
    for folder in (ROOT / "schemas", ROOT / "tests" / "fixtures" / "catalog" / "schemas"):
        for path in sorted(folder.rglob("*.json")):
            if path.name.startswith("_") or path.name.endswith((".info.json", ".output.json")):
                continue
            kind = "image" if "image" in path.stem and "video" not in path.stem else "video"
            found.append((kind, json.loads(path.read_text())))
    return found


def catalog(count: int = MODELS) -> list[dict[str, Any]]:
    """``count`` published records, each with its own id, title, default and price."""
    shapes = templates()
    records = []
    for n in range(count):
        kind, schema = shapes[n % len(shapes)]
        schema = copy.deepcopy(schema)
        schema["title"] = f"Input of model {n}"
        props = schema.setdefault("properties", {})
        props["seed"] = {"type": "integer", "minimum": 0, "default": n}
        records.append(
            {
                "model_id": f"vendor-{n % 40}/model-{n}/{'text-to-' + kind}",
                "display_name": f"Model {n}",
                "categories": ["featured" if n % 5 == 0 else "standard", kind],
                "kind": "model",
                "base_price_usd": round(0.01 + (n % 17) / 100, 2),
                "price_unit": "second" if kind == "video" else "output",
                "pricing_note": "list price",
                "input_schema": schema,
            }
        )
    return records


def publish(path: Path, records: list[dict[str, Any]]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(records))
    temp.replace(path)


def _sync(env: dict[str, str], folder: Path, *extra: str) -> tuple[float, int, int, str]:
    """One ``schema sync --all``: seconds, peak memory (MiB), exit code, stdout."""
    command = [sys.executable, "-c", _MEASURED, "schema", "sync", "--all", "--schemas", str(folder)]
    started = time.perf_counter()
    done = subprocess.run([*command, *extra], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    rss = int(done.stderr.rsplit("maxrss=", 1)[1].split()[0])
    return seconds, rss // 1024, done.returncode, done.stdout


def _files(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*.json")}


def _requests_loop(base_url: str, key: str, folder: Path) -> float:
    """The baseline: page through the catalog and write each schema, nothing else."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        offset = 0
        while True:
            params = {"limit": 100, "offset": offset, "include_schema": "true"}
            page = http.get("/v1/models", params=params).json()
            for record in page["models"]:
                path = folder / f"{record['model_id']}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record["input_schema"], indent=2))
            offset += len(page["models"])
            if not page["models"] or offset >= page["total"]:
                break
    return time.perf_counter() - started


def catalog_rows() -> list[Row]:
    from runcomfy_client.emulator import Emulator

    records = catalog()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "catalog.json"
        publish(path, records)
        with Emulator(catalog_file=path, render=False) as emu:
            env = {
                **os.environ,
                "RUNCOMFY_API_KEY": emu.api_key,
                "RUNCOMFY_BASE_URL": emu.base_url,
                "RUNCOMFY_SCHEMA_PATH": "",
            }
            baseline = _requests_loop(emu.base_url, emu.api_key, work / "loop")
            folder = work / "schemas"
            first, first_mib, code, out = _sync(env, folder)
            assert code == 0 and f"{MODELS} added" in out, out
            before = _files(folder)
            second, _, code, out = _sync(env, folder)
            assert code == 0, out
            rewritten = sum(1 for name, mtime in _files(folder).items() if before[name] != mtime)
            changed = [records[n]["model_id"] for n in (7, 123, 401)]
            for n in (7, 123, 401):
                records[n]["base_price_usd"] += 0.01
            publish(path, records)
            check, _, code, out = _sync(env, folder, "--check", "--json")
            report = json.loads(out)
            named = sorted(e["model_id"] for e in report["changed"])
            exact = code == 1 and named == sorted(changed) and report["counts"]["changed"] == 3
    loop = f"{baseline:.2f} s for a requests loop that only writes the schemas"
    return [
        (
            f"schema sync --all, {MODELS} models from the emulator, first run",
            f"{first:.2f} s, peak {first_mib} MiB ({loop})",
            f"{first / baseline:.1f}x the requests loop",
            "< 20 s and < 150 MB" + ("" if first < 20 and first_mib < 150 else " (MISSED)"),
        ),
        (
            f"schema sync --all, {MODELS} models, nothing changed",
            f"{second:.2f} s, {rewritten} files written",
            f"{second / first:.2f}x the first run",
            "< 3 s, no file written" + ("" if second < 3 and rewritten == 0 else " (MISSED)"),
        ),
        (
            f"schema sync --all --check, {MODELS} models, {CHANGED} changed",
            f"{check:.2f} s, exit {code}, named {len(named)}: {', '.join(named)}",
            f"{check / first:.2f}x the first run",
            f"exit 1 naming exactly those {CHANGED}" + ("" if exact else " (MISSED)"),
        ),
    ]


if __name__ == "__main__":
    for row in catalog_rows():
        print(" | ".join(row))
