"""Every published schema, and schemas of the same dialect never seen before, end to end.

Each model goes through what a user does with it: ``schema add``, ``describe --json``, codegen
(checked by one mypy --strict run over all of them), validation of an example built from its
schema, and a CLI run on one emulator with local files (single and in lists) uploaded, checking
what comes back: its kind, and for videos the width, height and length of the file itself.
The six catalog schemas are verbatim copies (tests/fixtures/catalog/schemas); the two seeds are
the bundled schemas; the synthetic ones come from :func:`catalog_kit.synthetic_schema`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runcomfy_client import ModelSchema, Registry
from runcomfy_client._dialect import media_of
from runcomfy_client._media_files import sniff_file
from runcomfy_client._naming import cli_flag
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .catalog_kit import (
    MediaFiles,
    example_inputs,
    expected_output,
    make_media,
    synthetic_schema,
    write_json,
)
from .conftest import FUSIONX, INPAINT

ROOT = Path(__file__).resolve().parents[1]
CATALOG = Path(__file__).resolve().parent / "fixtures" / "catalog" / "schemas"
KINDS = {
    "blackforestlabs/flux-3/text-to-video": "video",
    "bytedance/seedance-2.5/image-to-video/1080p": "video",
    "bytedance/seedance-2.5/reference-to-video/1080p": "video",
    "bytedance/seedance-2.5/text-to-video/1080p": "video",
    "google/nano-banana-2-lite/text-to-image": "image",
    "wan-ai/wan-3.0/image-to-video": "video",
    FUSIONX: "video",
    INPAINT: "video",
}
SYNTHETIC = {synthetic_schema(seed)[0]: synthetic_schema(seed) for seed in range(4)}
KINDS.update({model_id: kind for model_id, (_, _, kind) in SYNTHETIC.items()})
MODELS = sorted(KINDS)


def _cli(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(
        cli,
        args,
        env={
            "RUNCOMFY_SCHEMA_PATH": "",
            "RUNCOMFY_UPLOAD_TO": "",
            "RUNCOMFY_API_KEY_FILE": "",
            **env,
        },
    )


def _source(model_id: str, sources: Path) -> Path:
    if model_id in SYNTHETIC:
        return write_json(sources / f"{model_id}.json", SYNTHETIC[model_id][1])
    for folder in (CATALOG, ROOT / "schemas"):
        if (folder / f"{model_id}.json").is_file():
            return folder / f"{model_id}.json"
    raise AssertionError(model_id)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model added the way a user adds one: ``schema add --from-file``."""
    out = tmp_path_factory.mktemp("catalog") / "schemas"
    sources = tmp_path_factory.mktemp("sources")
    for model_id in MODELS:
        source = _source(model_id, sources)
        added = _cli(["schema", "add", model_id, "--from-file", str(source), "--schemas", str(out)])
        assert added.exit_code == 0, added.stderr
        assert (out / f"{model_id}.json").read_bytes().rstrip(b"\n") == source.read_bytes().rstrip(
            b"\n"
        )
    return out


@pytest.fixture(scope="module")
def registry(folder: Path) -> Registry:
    return Registry([folder], use_env=False, include_bundled=False)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFiles:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def emulator(folder: Path) -> Iterator[Emulator]:
    with Emulator(workers=2, job_seconds=0.01, schema_dirs=[str(folder)]) as emu:
        yield emu


def test_every_model_is_added(registry: Registry) -> None:
    assert registry.model_ids() == MODELS


@pytest.mark.parametrize("model_id", MODELS)
def test_describe_json_reads_the_dialect(model_id: str, folder: Path, registry: Registry) -> None:
    text = _cli(["--schemas", str(folder), "describe", model_id])
    assert f"makes: {KINDS[model_id]}, answered as" in text.stdout, text.stdout
    result = _cli(["--schemas", str(folder), "describe", model_id, "--json"])
    assert result.exit_code == 0, result.stderr
    described = {f["wire_key"]: f for f in json.loads(result.stdout)}
    raw = json.loads((folder / f"{model_id}.json").read_text())
    for key, prop in raw["properties"].items():
        record = described[key]
        fmt = prop.get("format", "")
        if fmt.endswith(("_uri", "_uris")):
            assert record["media"] == fmt.split("_")[0], key
            assert record["media_array"] == fmt.endswith("s"), key
            assert record["media_rule"] == "format", key
        assert record["has_default"] == ("default" in prop), key
        assert record["max_items"] == prop.get("maxItems"), key
        assert record["min_items"] == prop.get("minItems"), key
        assert record["validations"] == [
            {
                "rule": v["validation_rule"],
                "value": v["validation_value"],
                "error": v.get("validation_error"),
                "checked": True,
            }
            for v in prop.get("validations", [])
        ], key


@pytest.mark.parametrize("model_id", MODELS)
def test_an_example_built_from_the_schema_validates(
    model_id: str, registry: Registry, media: MediaFiles
) -> None:
    model = registry.get(model_id)
    inputs = example_inputs(model, media)
    payload, files = model.validator.check_with_uploads(inputs)
    local = [f for f in model.fields if f.media and f.name in inputs]
    assert len(files) == sum(len(inputs[f.name]) if f.media_array else 1 for f in local)
    assert set(payload) == {model.field(name).key for name in inputs}


def _typed_call(module: Any, model: ModelSchema, inputs: dict[str, Any]) -> tuple[str, set[str]]:
    """Source text of a typed ``submit`` call with the example, and the imports it needs."""
    import typing

    hints = typing.get_type_hints(module.Inputs)  # what submit(**inputs) takes, typed once
    imports: set[str] = set()
    args = []
    for name, value in inputs.items():
        hint = hints[name]
        lists = [
            typing.get_args(member)
            for member in (typing.get_args(hint) if typing.get_origin(hint) is not list else ())
            or (hint,)
            if typing.get_origin(member) is list
        ]
        element = lists[0][0] if lists and lists[0] else None
        if isinstance(element, type) and hasattr(element, "model_fields"):
            alias = f"{element.__name__}_{abs(hash(element.__module__))}"
            imports.add(f"from {element.__module__} import {element.__name__} as {alias}")
            made = ", ".join(
                f"{alias}({', '.join(f'{k}={v!r}' for k, v in item.items())})" for item in value
            )
            args.append(f"{name}=[{made}]")
        else:
            args.append(f"{name}={value!r}")
    return f"{module.__name__}.submit(client, {', '.join(args)})", imports


def test_codegen_types_every_model(
    folder: Path, registry: Registry, media: MediaFiles, tmp_path: Path
) -> None:
    """One codegen run for every model: the typed Inputs give the validator's payloads."""
    site = _typed_site(folder, registry, media, tmp_path)
    assert "Any" not in "\n".join(
        line
        for path in (site / "catalog_models").rglob("_*_input.py")
        for line in path.read_text().splitlines()
        if "list[Any]" in line
    )


@pytest.mark.slow  # mypy over every model takes a while: `make test-slow`
def test_codegen_types_every_model_and_mypy_strict_accepts_them(
    folder: Path, registry: Registry, media: MediaFiles, tmp_path: Path
) -> None:
    """One codegen run and one mypy run over typed calls to every model."""
    site = _typed_site(folder, registry, media, tmp_path)
    user = tmp_path / "user_code.py"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            str(site / "catalog_models"),
            str(user),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(site)},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _typed_site(folder: Path, registry: Registry, media: MediaFiles, tmp_path: Path) -> Path:
    """Generate wrappers for every model into tmp_path/site, check them at run time, and write
    tmp_path/user_code.py: a typed call to each. Returns the site."""
    import importlib

    from runcomfy_codegen import generate

    site = tmp_path / "site"
    generate(folder, site, "catalog_models")
    sys.path.insert(0, str(site))
    try:
        index = importlib.import_module("catalog_models")
        lines = ["from runcomfy_client import Client", ""]
        calls, imports = [], set()
        for model_id in MODELS:
            module = index.load(model_id)
            model = registry.get(model_id)
            inputs = example_inputs(model, media)
            lines.insert(0, f"import {module.__name__}")
            # At run time: the typed Input gives the payload the validator gives.
            typed = module.Input(**inputs)
            assert typed.to_payload() == model.validator.check_with_uploads(inputs)[0]
            call, needed = _typed_call(module, model, inputs)
            calls.append(call)
            imports |= needed
            source = (site / module.__name__.replace(".", "/")).with_suffix(".py").read_text()
            hints = "\n".join(
                line for line in source.splitlines() if line.startswith("    ") and ": " in line
            )
            for f in model.fields:
                if f.media_array:
                    spelled = (f"{f.name}: list[str]\n", f"{f.name}: Required[list[str]]\n")
                    assert any(t in hints + "\n" for t in spelled), (model_id, f.name)
        user = tmp_path / "user_code.py"
        user.write_text(
            "\n".join(sorted(imports) + lines)
            + "\n\ndef use(client: Client) -> None:\n"
            + "".join(f"    {call}\n" for call in calls)
        )
    finally:
        sys.path.remove(str(site))
        for name in [n for n in sys.modules if n.split(".")[0] == "catalog_models"]:
            del sys.modules[name]
    return site


# -- a CLI run on the emulator -----------------------------------------------------------------


def _args(model: ModelSchema, inputs: dict[str, Any], tmp_path: Path) -> list[str]:
    """Media by their flags (a list by repeating the flag), everything else in an --input file."""
    document: dict[str, Any] = {}
    args: list[str] = []
    for name, value in inputs.items():
        f = model.field(name)
        if f.media_array:
            for item in value:
                args += [cli_flag(f.name), item]
        elif f.media:
            args += [cli_flag(f.name), value]
        else:
            document[f.key] = value
    write_json(tmp_path / "inputs.json", document)
    return [*args, "--input", str(tmp_path / "inputs.json")]


def _video_facts(path: Path) -> tuple[int, int, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        rate = float(stream.average_rate or stream.guessed_rate or 1)
        return stream.codec_context.width, stream.codec_context.height, frames / rate


@pytest.mark.parametrize("model_id", MODELS)
def test_a_cli_run_uploads_local_files_and_answers_the_models_kind(
    model_id: str,
    folder: Path,
    registry: Registry,
    media: MediaFiles,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    model = registry.get(model_id)
    inputs = example_inputs(model, media)
    uploads_before = emulator.stats()["requests"]["upload"]
    result = _cli(
        [
            "--schemas",
            str(folder),
            "run",
            model_id,
            *_args(model, inputs, tmp_path),
            "--upload-to",
            "emulator",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
        RUNCOMFY_BASE_URL=emulator.base_url,
        RUNCOMFY_API_KEY=emulator.api_key,
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    record = json.loads(result.stdout)
    local = sum(
        len(inputs[f.name]) if f.media_array else 1
        for f in model.fields
        if f.media and f.name in inputs
    )
    assert emulator.stats()["requests"]["upload"] - uploads_before == local
    expected = expected_output(model, inputs, KINDS[model_id])
    output = {k: v for k, v in record["output"].items() if v}
    assert set(output) <= {expected.kind, expected.kind + "s"}, output
    [file] = [Path(p) for p in record["files"]][:1]
    sniffed = sniff_file(file)
    assert sniffed is not None and sniffed.kind == expected.kind, (file, sniffed)
    if expected.kind == "video":
        width, height, seconds = _video_facts(file)
        assert (width, height) == (expected.width, expected.height)
        assert expected.seconds is not None
        assert abs(seconds - expected.seconds) <= max(0.2, expected.seconds * 0.05), seconds


def test_the_unseen_schemas_hold_the_whole_dialect(registry: Registry) -> None:
    """The synthetic schemas together use every media format, lists with bounds, validations,
    structured inputs, and media that only their format marks (names that say nothing)."""
    formats = {
        p.get("format")
        for _, schema, _ in SYNTHETIC.values()
        for p in schema["properties"].values()
    }
    assert {f"{k}_{n}" for k in ("image", "video", "audio") for n in ("uri", "uris")} <= formats
    fields = [f for model_id in SYNTHETIC for f in registry.get(model_id).fields]
    assert any(f.validations for f in fields)
    assert any(f.max_items for f in fields if f.media_array)
    assert any(f.items and f.items.get("type") == "object" for f in fields)
    assert any(f.media and media_of(f.key, {"type": "string"}) is None for f in fields)
