"""A synthetic ComfyUI workflow and a full-size object_info, for the derive benchmark.

``object_info(classes)`` imitates a real ComfyUI install's ``/object_info``: about 1,500 node
classes, widget and connection inputs, both combo forms, tooltips, and loader classes whose
combos list hundreds of model files (what makes the real one several MB). ``workflow(info,
nodes)`` wires ``nodes`` of those classes into an API-format workflow: every connection input a
link to an earlier node, every widget a valid literal. Deterministic for a given seed.

    python bench/synthetic_workflow.py --nodes 200 --out /tmp/synthetic
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

CONNECTIONS = ("MODEL", "CLIP", "VAE", "IMAGE", "LATENT", "CONDITIONING", "MASK")


def _files(rng: random.Random, kind: str, count: int) -> list[str]:
    return [f"{kind}/{kind}_{i:04d}_v{rng.randint(1, 9)}.safetensors" for i in range(count)]


def _widget(rng: random.Random, i: int) -> tuple[str, list[Any]]:
    kind = rng.choice(("INT", "INT", "FLOAT", "FLOAT", "BOOLEAN", "STRING", "OLD", "NEW"))
    tip = {"tooltip": f"What input {i} does, in a sentence or two of explanation."}
    if kind == "INT":
        low = rng.choice((0, 1, -100))
        return f"int_{i}", ["INT", {"default": low + 1, "min": low, "max": low + 4096, **tip}]
    if kind == "FLOAT":
        return f"float_{i}", [
            "FLOAT",
            {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.01, **tip},
        ]
    if kind == "BOOLEAN":
        return f"flag_{i}", ["BOOLEAN", {"default": False, **tip}]
    if kind == "STRING":
        return f"text_{i}", ["STRING", {"default": "", "multiline": rng.random() < 0.5, **tip}]
    options = [f"choice_{j}" for j in range(rng.randint(3, 40))]
    if kind == "OLD":
        return f"mode_{i}", [options, tip]
    return f"pick_{i}", ["COMBO", {"options": options, **tip}]


def object_info(classes: int = 1500, *, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    info: dict[str, Any] = {}
    for c in range(classes):
        name = f"Node{c:04d}"
        required: dict[str, Any] = {}
        loader = c % 10 == 0
        if loader:
            required["file_name"] = [_files(rng, f"kind{c % 7}", rng.randint(200, 700)), {}]
        for i in range(rng.randint(2, 8)):
            if rng.random() < 0.3:
                required[f"in_{i}"] = [rng.choice(CONNECTIONS), {"tooltip": "An upstream value."}]
            else:
                key, spec = _widget(rng, i)
                required[key] = spec
        info[name] = {
            "input": {"required": required, "hidden": {"unique_id": "UNIQUE_ID"}},
            "input_order": {"required": list(required)},
            "output": [rng.choice(CONNECTIONS)],
            "output_is_list": [False],
            "output_name": ["OUT"],
            "name": name,
            "display_name": f"Synthetic node {c}",
            "description": "A generated node class for benchmarks.",
            "python_module": f"custom_nodes.synthetic_{c % 40}",
            "category": f"synthetic/{c % 12}",
            "output_node": c % 97 == 0,
        }
    return info


def _literal(rng: random.Random, spec: list[Any]) -> Any:
    head = spec[0]
    options = spec[1] if len(spec) > 1 else {}
    if isinstance(head, list):
        return rng.choice(head)
    if head == "COMBO":
        return rng.choice(options["options"])
    if head == "INT":
        return rng.randint(options["min"], options["max"])
    if head == "FLOAT":
        return round(rng.uniform(options["min"], options["max"]), 2)
    if head == "BOOLEAN":
        return rng.random() < 0.5
    return f"some text {rng.randint(0, 999)}"


def workflow(info: dict[str, Any], nodes: int = 200, *, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    names = sorted(info)
    flow: dict[str, Any] = {}
    for n in range(1, nodes + 1):
        class_type = rng.choice(names)
        inputs: dict[str, Any] = {}
        for key, spec in info[class_type]["input"]["required"].items():
            if isinstance(spec[0], str) and spec[0] in CONNECTIONS:
                if n > 1:
                    inputs[key] = [str(rng.randint(1, n - 1)), 0]
            else:
                inputs[key] = _literal(rng, spec)
        flow[str(n)] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": f"Step {n}"}}
    return flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--classes", type=int, default=1500)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    info = object_info(args.classes)
    flow = workflow(info, args.nodes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "object_info.json").write_text(json.dumps(info))
    (args.out / "workflow_api.json").write_text(json.dumps(flow, indent=1))
    size = (args.out / "object_info.json").stat().st_size
    print(f"{args.out}: {args.nodes} nodes, {len(info)} classes, object_info {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
