"""Codegen: the golden record, a schema never seen before end to end, freshness, failures."""

from __future__ import annotations

import difflib
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runcomfy_client import Client, InputValidationError, SchemaError
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator
from runcomfy_codegen import CodegenError, generate

from .conftest import png_bytes, write_schema

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "codegen"
GOLDEN_SCHEMAS = FIXTURES / "schemas"
GOLDEN_EXPECTED = FIXTURES / "expected"
GOLDEN_PACKAGE = "golden_models"

# A model the project has never shipped: an upscaler with a media input, an int enum, a float
# range and an optional string without a default.
UPSCALE_ID = "studio/upscale/image-upscale"
UPSCALE_SCHEMA = {
    "type": "object",
    "title": "Input",
    "required": ["5_image"],
    "properties": {
        "5_image": {"title": "Image", "type": "string", "description": "Picture to enlarge."},
        "6_scale": {"title": "Scale", "type": "integer", "enum": [2, 4], "default": 2},
        "7_denoise": {"title": "Denoise", "type": "float", "minimum": 0, "maximum": 1},
        "8_note": {"title": "Note", "type": "string"},
    },
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.name != ".codegen-tools"
    }


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    """A folder put on sys.path for the test; its packages are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        packages = {p.name for p in folder.iterdir()}
        for name in [n for n in sys.modules if n.split(".")[0] in packages]:
            del sys.modules[name]
        importlib.invalidate_caches()


# -- the golden record ----------------------------------------------------------------------


def test_golden_record(tmp_path: Path) -> None:
    """The templates' output for a small fixture folder, byte for byte.

    After an intended change to the generator: ``UPDATE_GOLDEN=1 make test`` and review the diff.
    """
    report = generate(GOLDEN_SCHEMAS, tmp_path, GOLDEN_PACKAGE)
    produced = _files(tmp_path)
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN_EXPECTED, ignore_errors=True)
        shutil.copytree(tmp_path, GOLDEN_EXPECTED, ignore=shutil.ignore_patterns(".codegen-tools"))
    expected = _files(GOLDEN_EXPECTED)
    assert sorted(produced) == sorted(expected)
    for name, data in expected.items():
        if produced[name] != data:
            diff = "\n".join(
                difflib.unified_diff(
                    data.decode().splitlines(),
                    produced[name].decode().splitlines(),
                    f"expected/{name}",
                    f"produced/{name}",
                    lineterm="",
                )
            )
            pytest.fail(f"{name} differs from the golden record:\n{diff}")
    # The fixture's lint findings come out with file and field.
    rules = {(Path(w.file or "").name, w.key, w.rule) for w in report.warnings}
    assert ("text-to-image.json", "7_seed", "default-type") in rules
    assert any("'timeout' hides run()'s option" in note for note in report.notes)


def test_golden_output_imports_and_types_what_the_schema_says(importable: Path) -> None:
    shutil.copytree(GOLDEN_EXPECTED / GOLDEN_PACKAGE, importable / GOLDEN_PACKAGE)
    module = importlib.import_module(f"{GOLDEN_PACKAGE}.acme.text_to_image")
    fields = module.Input.model_fields
    assert fields["guidance"].alias == "2_guidance"
    assert fields["guidance"].annotation is float
    # Bad default (a string for an integer) was not copied into the class.
    assert "random" not in repr(fields["seed"].default)
    # `timeout` is a field here, so run() has no timeout option but keeps the others.
    import inspect

    run_params = inspect.signature(module.run).parameters
    assert "timeout" not in run_params and "timeout" in module.Inputs.__annotations__
    assert "download_to" in run_params
    edit = importlib.import_module(f"{GOLDEN_PACKAGE}.acme.edit.image_edit")
    # A field called `client` pushes the client parameter aside instead of clashing.
    assert list(inspect.signature(edit.submit).parameters) == ["client_", "inputs"]
    assert list(edit.Inputs.__annotations__)[:2] == ["image", "client"]
    index = importlib.import_module(GOLDEN_PACKAGE)
    assert index.load("acme/edit/image-edit") is edit
    with pytest.raises(KeyError, match="acme/text-to-image"):
        index.load("acme/nope")


def test_schema_data_beside_the_module_is_checked_when_loaded(importable: Path) -> None:
    """The wrapper loads its schema from the JSON file beside it; a missing file, or one
    written for another model, is a SchemaError naming the file, never a KeyError."""
    from runcomfy_client.typed import TypedModel

    shutil.copytree(GOLDEN_EXPECTED / GOLDEN_PACKAGE, importable / GOLDEN_PACKAGE)
    module = importlib.import_module(f"{GOLDEN_PACKAGE}.acme.text_to_image")
    assert module.SCHEMA["properties"]["1_prompt"]["title"] == "Prompt"
    package = f"{GOLDEN_PACKAGE}.acme"
    with pytest.raises(SchemaError, match="not 'acme/other'"):
        TypedModel.from_data("acme/other", module.Input, package=package,
                             data="_text_to_image_schema.json")  # fmt: skip
    with pytest.raises(SchemaError, match=r"_missing_schema\.json"):
        TypedModel.from_data("acme/text-to-image", module.Input, package=package,
                             data="_missing_schema.json")  # fmt: skip


# -- the project's own generated/ -----------------------------------------------------------


def test_generated_folder_is_what_the_generator_writes_now() -> None:
    report = generate(ROOT / "schemas", ROOT / "generated", "runcomfy_models", check=True)
    assert report.out_of_date == [], "run `make generate`"


def test_seed_wrappers_show_their_inputs_once() -> None:
    """One documented ``Inputs`` TypedDict, taken as ``**inputs`` by all four functions; each
    enum a named Literal alias; the run options are the only other keywords."""
    import inspect
    import typing

    from runcomfy_models.community.wan_2_2 import fun_inpaint

    inputs = fun_inpaint.Inputs
    assert list(inputs.__annotations__)[:3] == ["prompt", "start_image", "end_image"]
    for function in (fun_inpaint.submit, fun_inpaint.run, fun_inpaint.submit_async):
        params = list(inspect.signature(function).parameters.values())
        assert params[0].kind is inspect.Parameter.POSITIONAL_ONLY
        assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
        assert str(params[-1].annotation) == "Unpack[Inputs]"
    run_keywords = [p.name for p in inspect.signature(fun_inpaint.run).parameters.values()]
    assert run_keywords[1:-1] == ["timeout", "cancel_on_timeout", "on_status", "download_to",
                                  "on_progress"]  # fmt: skip
    assert typing.get_args(fun_inpaint.Resolution)[0] == "480x480 (1:1)"
    assert typing.get_args(fun_inpaint.NumberOfFrames) == (81, 141)
    source = inspect.getsource(fun_inpaint)
    # The parameters' documentation appears once, in Inputs, not in each function.
    assert source.count("Number of denoising iterations") == 1  # Inputs; the schema is data
    assert "SCHEMA: Final[Mapping[str, Any]] = MODEL.raw_schema" in source
    assert fun_inpaint.SCHEMA["properties"]["96_steps"]["minimum"] == 6
    assert 'steps: int\n    """Steps. Number of denoising iterations' in source
    assert "Allowed: 6 to 20. Server default: 4, outside the allowed range" in " ".join(
        source.split()
    )
    assert source.count("Literal[") == 2  # the two aliases, nowhere else


def test_a_default_outside_its_own_bounds_is_documented_not_declared() -> None:
    """fun-inpaint publishes ``96_steps`` with default 4 and minimum 6: the server applies 4 when
    the field is left out, but 4 is not a value the client may send, nor the class's default."""
    from runcomfy_models.community.wan_2_2 import fun_inpaint

    required = {"prompt": "p", "start_image": "https://x/a.png", "end_image": "https://x/b.png"}
    assert fun_inpaint.Input.model_fields["steps"].default != 4
    assert "96_steps" not in fun_inpaint.Input(**required).to_payload()
    assert fun_inpaint.Input(**required, steps=6).to_payload()["96_steps"] == 6
    with pytest.raises(InputValidationError, match=r"steps \(96_steps\).*minimum 6"):
        fun_inpaint.Input(**required, steps=4)


# -- a schema the project has never seen, end to end ----------------------------------------


def test_new_schema_generates_imports_and_runs_against_the_emulator(
    tmp_path: Path, importable: Path
) -> None:
    schemas = tmp_path / "schemas"
    write_schema(schemas, UPSCALE_ID, UPSCALE_SCHEMA)
    generate(schemas, importable, "studio_models")
    upscale = importlib.import_module("studio_models.studio.upscale.image_upscale")

    with Emulator(job_seconds=0.05, schema_dirs=[schemas]) as emulator:
        image = emulator.upload(png_bytes(), "photo.png")
        with Client(base_url=emulator.base_url, api_key=emulator.api_key) as client:
            with pytest.raises(InputValidationError) as caught:
                upscale.submit(client, image="photo.png", scale=3)  # type: ignore[arg-type]
            message = str(caught.value)
            assert "scale (6_scale)" in message and "2, 4" in message
            assert "image (5_image)" in message and "public http(s) URL" in message
            assert emulator.jobs() == []  # nothing was sent

            result = upscale.run(client, image=image, denoise=0.5, download_to=tmp_path / "out")
            assert result.files and result.files[0].stat().st_size > 0
            # Only what was passed went over the wire: no defaults, no NOT_GIVEN.
            sent = emulator.jobs()[-1]
            assert sent["model_id"] == UPSCALE_ID
            assert sent["payload"] == {"5_image": image, "7_denoise": 0.5}

            typed = upscale.Input(image=image, scale=4)
            assert typed.to_payload() == {"5_image": image, "6_scale": 4}
            handle = client.submit(upscale.MODEL_ID, typed)
            handle.wait()
            assert emulator.jobs()[-1]["payload"] == {"5_image": image, "6_scale": 4}


async def test_new_schema_async_wrappers(tmp_path: Path, importable: Path) -> None:
    from runcomfy_client import AsyncClient

    schemas = tmp_path / "schemas"
    write_schema(schemas, UPSCALE_ID, UPSCALE_SCHEMA)
    generate(schemas, importable, "studio_models")
    upscale = importlib.import_module("studio_models.studio.upscale.image_upscale")
    with Emulator(job_seconds=0.05, schema_dirs=[schemas]) as emulator:
        image = emulator.upload(png_bytes(), "photo.png")
        async with AsyncClient(base_url=emulator.base_url, api_key=emulator.api_key) as client:
            handle = await upscale.submit_async(client, image=image, note="hi")
            await handle.wait()
            result = await upscale.run_async(client, image=image)
            out = result.output
            assert result.status == "completed" and (out.video or out.image or out.images)
        assert [job["payload"] for job in emulator.jobs()] == [
            {"5_image": image, "8_note": "hi"},
            {"5_image": image},
        ]


def test_input_model_uses_the_runtime_validator_and_messages(importable: Path) -> None:
    shutil.copytree(GOLDEN_EXPECTED / GOLDEN_PACKAGE, importable / GOLDEN_PACKAGE)
    module = importlib.import_module(f"{GOLDEN_PACKAGE}.acme.text_to_image")
    by_name = module.Input(prompt="cat", guidance=2)
    by_key = module.Input(**{"1_prompt": "cat", "2_guidance": 2})
    assert by_name.to_payload() == by_key.to_payload() == {"1_prompt": "cat", "2_guidance": 2}
    with pytest.raises(InputValidationError) as caught:
        module.Input(prompt="cat", guidance=10, style="oil", tiled=None, colour="red")
    text = str(caught.value)
    assert "guidance (2_guidance)" in text and "below 10" in text
    assert "style (3_style)" in text
    assert "tiled (6_tiled)" in text  # None is not a boolean: the schema does not allow null
    assert "colour" in text
    # Nullable in the schema: None is accepted and sent.
    assert module.Input(prompt="cat", negative_prompt=None).to_payload() == {
        "1_prompt": "cat",
        "5_negative": None,
    }


@pytest.mark.slow  # a mypy run: `make test-slow`
def test_mypy_strict_accepts_good_calls_and_rejects_bad_ones(tmp_path: Path) -> None:
    """The point of the wrappers: a type checker catches wrong names, types and choices."""
    user = tmp_path / "user_code.py"
    user.write_text(
        "from runcomfy_client import Client\n"
        "from runcomfy_models.community.wan_2_1.fusionx import image_to_video\n"
        "\n"
        "def good(client: Client) -> None:\n"
        "    image_to_video.run(client, prompt='p', image='https://x/y.png', steps=8,\n"
        "                       resolution='720x480 (3:2)', guidance_scale=1.5)\n"
        "\n"
        "def bad(client: Client) -> None:\n"
        "    image_to_video.run(client, prompt='p', image='u', steps='eight')\n"
        "    image_to_video.run(client, prompt='p', image='u', resolution='720x481')\n"
        "    image_to_video.run(client, prompt='p')\n"
        "    image_to_video.run(client, prompt='p', image='u', stepz=8)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(user)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert all(
        ":9:" in line or ":10:" in line or ":11:" in line or ":12:" in line for line in lines
    )
    assert any(":9:" in line and '"steps"' in line for line in lines), done.stdout
    assert any(":10:" in line and '"resolution"' in line for line in lines), done.stdout
    assert any(":11:" in line and '"image"' in line for line in lines), done.stdout
    assert any(":12:" in line and '"stepz"' in line for line in lines), done.stdout


# -- freshness and determinism --------------------------------------------------------------


def test_unchanged_models_are_not_regenerated(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write_schema(schemas, UPSCALE_ID, UPSCALE_SCHEMA)
    write_schema(
        schemas, "studio/other", {"type": "object", "properties": {"1_a": {"type": "string"}}}
    )
    out = tmp_path / "out"
    first = generate(schemas, out, "pkg")
    assert len(first.written) > 4
    again = generate(schemas, out, "pkg")
    assert again.written == [] and again.removed == []
    changed = dict(UPSCALE_SCHEMA, description="Now with a description.")
    write_schema(schemas, UPSCALE_ID, changed)
    third = generate(schemas, out, "pkg")
    assert sorted(third.written) == [
        "pkg/studio/upscale/_image_upscale_input.py",
        "pkg/studio/upscale/_image_upscale_schema.json",
        "pkg/studio/upscale/image_upscale.py",
    ]


def test_hand_edits_and_stale_files_are_caught_by_check_and_fixed_by_generate(
    tmp_path: Path,
) -> None:
    schemas = tmp_path / "schemas"
    write_schema(schemas, UPSCALE_ID, UPSCALE_SCHEMA)
    write_schema(
        schemas, "studio/gone", {"type": "object", "properties": {"1_a": {"type": "string"}}}
    )
    out = tmp_path / "out"
    generate(schemas, out, "pkg")
    wrapper = out / "pkg/studio/upscale/image_upscale.py"
    wrapper.write_text(wrapper.read_text() + "\nHAND_EDIT = 1\n")
    data = out / "pkg/studio/upscale/_image_upscale_schema.json"
    data.write_text(data.read_text().replace("Picture to enlarge.", "HAND EDIT"))
    (schemas / "studio/gone.json").unlink()

    report = generate(schemas, out, "pkg", check=True)
    assert "pkg/studio/upscale/image_upscale.py" in report.out_of_date
    assert "pkg/studio/upscale/_image_upscale_schema.json" in report.out_of_date
    assert "pkg/studio/gone.py" in report.out_of_date
    assert "pkg/studio/_gone_schema.json" in report.out_of_date
    assert "HAND_EDIT" in wrapper.read_text()  # check writes nothing

    fixed = generate(schemas, out, "pkg")
    assert "HAND_EDIT" not in wrapper.read_text() and "HAND EDIT" not in data.read_text()
    assert "pkg/studio/gone.py" in fixed.removed and not (out / "pkg/studio/gone.py").exists()
    assert not (out / "pkg/studio/_gone_schema.json").exists()
    assert generate(schemas, out, "pkg", check=True).out_of_date == []


def test_output_is_identical_across_runs_environments_and_file_order(tmp_path: Path) -> None:
    """Separate processes with another hash seed, cwd, --out spelling and file creation order
    write the same bytes."""
    other = {"type": "object", "properties": {"1_a": {"type": "string"}}}
    one, two = tmp_path / "one", tmp_path / "two"
    write_schema(one / "schemas", UPSCALE_ID, UPSCALE_SCHEMA)
    write_schema(one / "schemas", "acme/other", other)
    write_schema(two / "schemas", "acme/other", other)
    write_schema(two / "schemas", UPSCALE_ID, UPSCALE_SCHEMA)
    for folder, seed, out in ((one, "1", "out"), (two, "2", str(two / "out"))):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "runcomfy_client.cli",
                "codegen",
                "--schemas",
                "schemas",
                "--out",
                out,
                "--package",
                "pkg",
            ],
            cwd=folder,
            env=dict(os.environ, PYTHONHASHSEED=seed, LC_ALL="C"),
            check=True,
            capture_output=True,
        )
    assert _files(one / "out") == _files(two / "out")


# -- failures -------------------------------------------------------------------------------


def test_bad_schema_stops_generation_and_leaves_the_previous_package(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write_schema(schemas, UPSCALE_ID, UPSCALE_SCHEMA)
    out = tmp_path / "out"
    generate(schemas, out, "pkg")
    before = _files(out)
    broken = dict(UPSCALE_SCHEMA)
    broken["properties"] = dict(UPSCALE_SCHEMA["properties"], **{"9_x": {"type": "decimal"}})  # type: ignore[arg-type]
    write_schema(schemas, UPSCALE_ID, broken)
    write_schema(schemas, "studio/new", {"type": "object", "properties": {}})
    with pytest.raises(SchemaError) as caught:
        generate(schemas, out, "pkg")
    assert "image-upscale.json" in str(caught.value)
    assert "/properties/9_x/type" in str(caught.value)
    assert _files(out) == before


def test_two_ids_on_one_module_path_are_refused(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write_schema(schemas, "acme/wan-2-1", {"type": "object", "properties": {}})
    write_schema(schemas, "acme/wan_2_1", {"type": "object", "properties": {}})
    with pytest.raises(CodegenError, match=r"'acme/wan-2-1' and 'acme/wan_2_1'.*acme\.wan_2_1"):
        generate(schemas, tmp_path / "out", "pkg")
    assert not (tmp_path / "out").exists()


def test_cli_codegen_prints_warnings_and_check_fails_when_stale(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    write_schema(
        schemas,
        "acme/media",
        {
            "type": "object",
            "properties": {"1_image": {"type": "string", "title": "Image", "default": "local.png"}},
        },
    )
    runner = CliRunner()
    args = [
        "codegen",
        "--schemas",
        str(schemas),
        "--out",
        str(tmp_path / "out"),
        "--package",
        "pkg",
    ]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "media.json at /properties/1_image/default [1_image]" in first.stderr
    assert "wrote" in first.stdout
    assert runner.invoke(cli, [*args, "--check"]).exit_code == 0
    (tmp_path / "out/pkg/acme/media.py").write_text("# edited\n")
    stale = runner.invoke(cli, [*args, "--check"])
    assert stale.exit_code == 1
    assert "out of date:" in stale.stderr and "media.py" in stale.stderr
    bad = runner.invoke(cli, [*args[:-1], "not-a-name"])
    assert bad.exit_code == 2 and "not a Python package name" in bad.stderr
