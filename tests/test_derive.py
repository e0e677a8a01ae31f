"""Schemas derived from ComfyUI workflows, and payloads compiled back into overrides."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runcomfy_client import InputValidationError, Registry, SchemaError
from runcomfy_client._derive import changes, derive, read_binding
from runcomfy_client._overlay import Overlay, Target, parse_targets
from runcomfy_client._overrides import compile_overrides
from runcomfy_client.cli import cli

from .conftest import INPAINT
from .test_codegen import importable  # noqa: F401  (a fixture: a folder on sys.path)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "workflows"


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return load("object_info.json")  # type: ignore[no-any-return]


@pytest.fixture
def t2i() -> dict[str, Any]:
    return load("text-to-image.json")  # type: ignore[no-any-return]


@pytest.fixture
def i2v() -> dict[str, Any]:
    return load("image-to-video.json")  # type: ignore[no-any-return]


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env={"RUNCOMFY_SCHEMA_PATH": ""})


# -- what a field becomes ---------------------------------------------------------------------


def test_every_literal_input_becomes_a_typed_field_and_links_never_do(
    t2i: dict[str, Any], info: dict[str, Any]
) -> None:
    derived = derive(t2i, info, name="t2i")
    props = derived.schema["properties"]
    assert derived.model_id == "deployments/t2i"
    assert set(props) == {
        "3_seed", "3_steps", "3_cfg", "3_sampler_name", "3_scheduler", "3_denoise",
        "4_ckpt_name", "5_width", "5_height", "5_batch_size", "6_text", "7_text",
        "9_filename_prefix",
    }  # fmt: skip
    # Bounds from object_info, the workflow's value as the default.
    assert props["3_steps"] | {} == {
        **props["3_steps"],
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
        "default": 25,
    }
    assert props["3_cfg"]["type"] == "number" and props["3_cfg"]["default"] == 7.0
    assert props["3_seed"]["maximum"] == 18446744073709551615
    # Both combo spellings: [[choices], {...}] and ["COMBO", {"options": [...]}].
    assert "dpmpp_2m" in props["3_sampler_name"]["enum"]
    assert props["3_scheduler"]["enum"][:2] == ["normal", "karras"]
    assert props["3_scheduler"]["type"] == "string"
    # Nothing is required unless an overlay says so; where each field goes is noted.
    assert "required" not in derived.schema
    assert props["6_text"]["x-comfy"] == {
        "node": "6",
        "input": "text",
        "class_type": "CLIPTextEncode",
    }
    assert props["3_seed"]["description"] == "The random seed used for creating the noise."
    assert derived.warnings == ()


def test_titles_come_from_node_titles_and_input_names(
    t2i: dict[str, Any], i2v: dict[str, Any], info: dict[str, Any]
) -> None:
    names = {f.key: (f.name, f.title) for f in derive(t2i, info, name="a").model.fields}
    # A node titled by its author, with one exposed input, lends it its title.
    assert names["6_text"] == ("prompt", "Prompt")
    assert names["7_text"] == ("negative_prompt", "Negative Prompt")
    # Otherwise the input's own name, when no other field shares it.
    assert names["3_seed"] == ("seed", "Seed")
    assert names["3_cfg"] == ("cfg", "CFG")
    i2v_names = {f.key: f.name for f in derive(i2v, info, name="b").model.fields}
    # Two loaders both have clip_name: the node's title tells them apart.
    assert i2v_names["2_clip_name"] == "load_clip_clip_name"
    assert i2v_names["4_clip_name"] == "load_clip_vision_clip_name"
    assert i2v_names["10_image"] == "start_image"


def test_image_loader_is_a_media_field(i2v: dict[str, Any], info: dict[str, Any]) -> None:
    derived = derive(i2v, info, name="i2v")
    image = derived.model.field("start_image")
    assert image.schema["format"] == "image_uri" and image.media == "image"
    assert image.default == "start.png"  # the file the deployment loads when none is sent
    with pytest.raises(InputValidationError) as caught:
        derived.model.validator.validate({"start_image": "no-such-file.png"})
    assert "start_image (10_image)" in str(caught.value)


def test_unknown_input_specs_take_any_value_with_a_lint_warning(
    i2v: dict[str, Any], info: dict[str, Any]
) -> None:
    derived = derive(i2v, info, name="i2v")
    # VHS_VideoCombine's format widgets (crf, pix_fmt...) are not in object_info.
    assert derived.schema["properties"]["60_crf"] == {
        "title": "CRF",
        "default": 19,
        "x-comfy": {"node": "60", "input": "crf", "class_type": "VHS_VideoCombine"},
    }
    unknown = [w for w in derived.warnings if w.rule == "unknown-input-spec"]
    assert {w.key for w in unknown} == {"60_crf", "60_pix_fmt", "60_save_metadata"}
    assert "any JSON value" in str(unknown[0])
    assert derived.model.validator.validate({"crf": [1, {"x": None}]}) == {
        "60_crf": [1, {"x": None}]
    }

    custom = copy.deepcopy(i2v)
    custom["70"] = {"class_type": "MyCustomNode", "inputs": {"strength": 0.4, "image": ["50", 0]}}
    derived = derive(custom, info, name="i2v")
    assert derived.schema["properties"]["70_strength"]["default"] == 0.4
    assert "70_image" not in derived.schema["properties"]
    assert any(
        w.key == "70_strength" and "'MyCustomNode' is not in object_info" in w.message
        for w in derived.warnings
    )


@pytest.mark.parametrize(
    ("expose", "words"),
    [
        ("3.model", ["3.model", "link from node 4", "links are never exposed"]),
        ("33.seed", ["no node '33'", "did you mean 3"]),
        ("3.sead", ["sets no input 'sead'", "did you mean 3.seed"]),
        ("30.clip_vision_output", ["link from node 11"]),
        ("9.prompt", ["hidden input of SaveImage"]),
    ],
)
def test_exposing_what_cannot_be_exposed_names_it(
    t2i: dict[str, Any],
    i2v: dict[str, Any],
    info: dict[str, Any],
    expose: str,
    words: list[str],
) -> None:
    workflow = i2v if expose.startswith("30.") else t2i
    with pytest.raises(SchemaError) as caught:
        derive(workflow, info, name="t2i", expose=parse_targets(expose), workflow_file="wf.json")
    assert all(w in str(caught.value) for w in words), str(caught.value)
    assert caught.value.file == "wf.json"


def test_expose_picks_fields_in_the_order_given(i2v: dict[str, Any], info: dict[str, Any]) -> None:
    derived = derive(i2v, info, name="i2v", expose=parse_targets("40.seed,20.text,2.device"))
    assert list(derived.schema["properties"]) == ["40_seed", "20_text", "2_device"]
    assert derived.binding["expose"] == ["40.seed", "20.text", "2.device"]
    # An optional input the workflow leaves unset cannot be overridden on RunComfy.
    unset = copy.deepcopy(i2v)
    del unset["2"]["inputs"]["device"]
    with pytest.raises(SchemaError, match="optional input the workflow leaves unset"):
        derive(unset, info, name="i2v", expose=parse_targets("2.device"))


def test_deployment_default_overrides_choose_the_fields(
    t2i: dict[str, Any], info: dict[str, Any]
) -> None:
    defaults = {"6": {"inputs": {"text": "x"}}, "3": {"inputs": {"seed": 1, "steps": 4}}}
    derived = derive(t2i, info, name="t2i", default_overrides=defaults)
    assert set(derived.schema["properties"]) == {"6_text", "3_seed", "3_steps"}
    assert derived.schema["properties"]["3_seed"]["default"] == 42  # the workflow's value


def test_not_a_workflow_in_api_format(info: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="UI workflow"):
        derive({"nodes": [], "links": []}, info, name="x")
    with pytest.raises(SchemaError, match="no class_type"):
        derive({"1": {"inputs": {}}}, info, name="x")
    with pytest.raises(SchemaError, match="object_info must be a JSON object"):
        derive({}, [], name="x")
    with pytest.raises(SchemaError, match="one segment"):
        derive({}, info, name="a/b")


# -- the overlay -----------------------------------------------------------------------------


def test_sample_overlay_renames_narrows_hides_requires_and_fuses(
    t2i: dict[str, Any], info: dict[str, Any]
) -> None:
    overlay = Overlay.parse(load("text-to-image.overlay.json"))
    derived = derive(t2i, info, name="lighthouse", overlay=overlay)
    model = derived.model
    assert model.title == "Lighthouse text-to-image"
    assert [f.key for f in model.required] == ["6_text"]
    assert model.field("negative_prompt").title == "Avoid"
    assert "4_ckpt_name" not in derived.schema["properties"]  # hidden
    steps = model.field("steps")
    assert (steps.minimum, steps.maximum) == (10, 50)
    assert model.field("guidance_scale").key == "3_cfg"
    assert model.field("sampler_name").enum == ("euler", "dpmpp_2m", "dpmpp_2m_sde")
    resolution = model.field("resolution")
    assert resolution.key == "5_widthx5_height" and resolution.dimensions
    assert resolution.default == "1024x1024 (1:1)"  # the workflow's own size
    # The fused field takes its place in the schema's order, where width was.
    assert list(derived.schema["properties"]).index("5_widthx5_height") == 6

    payload = model.validator.validate(
        {"prompt": "a red boat", "resolution": "1344x768", "steps": 30}
    )
    assert payload["5_widthx5_height"] == "1344x768 (7:4)"
    assert compile_overrides(model, payload) == {
        "overrides": {
            "6": {"inputs": {"text": "a red boat"}},
            "5": {"inputs": {"width": 1344, "height": 768}},
            "3": {"inputs": {"steps": 30}},
        }
    }
    with pytest.raises(InputValidationError) as caught:
        model.validator.validate({"prompt": "x", "steps": 60, "sampler_name": "heun"})
    text = str(caught.value)
    assert "steps (3_steps): 60 is above the maximum 50" in text
    assert "sampler_name (3_sampler_name)" in text


@pytest.mark.parametrize(
    ("overlay", "words"),
    [
        ({"fields": {"3.steps": {"maximum": 20000}}}, ["would widen", "1 to 10000"]),
        ({"fields": {"3.sampler_name": {"enum": ["euler", "magic"]}}}, ["'magic'", "only narrow"]),
        ({"fields": {"6.text": {"minimum": 3}}}, ["applies to numbers"]),
        ({"fields": {"3.steps": {"colour": "red"}}}, ["unknown key(s) ['colour']"]),
        ({"fields": {"3.steps": {"required": "yes"}}}, ["'required' must be true or false"]),
        (
            {"fuse": [{"width": "5.width", "height": "5.height", "options": ["huge"]}]},
            ["'huge' is not 'WxH'"],
        ),
        (
            {"fuse": [{"width": "5.width", "height": "5.height", "options": ["99999x8"]}]},
            ["99999 is outside"],
        ),
        (
            {"fuse": [{"width": "3.cfg", "height": "5.height", "options": ["8x8"]}]},
            ["not an integer input"],
        ),
        ({"shape": 1}, ["unknown overlay key(s) ['shape']"]),
    ],
)
def test_an_overlay_that_cannot_apply_is_refused(
    t2i: dict[str, Any], info: dict[str, Any], overlay: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(SchemaError) as caught:
        derive(
            t2i,
            info,
            name="t2i",
            overlay=Overlay.parse(overlay, file="o.json"),
            overlay_file="o.json",
        )
    assert all(w in str(caught.value) for w in words), str(caught.value)
    assert "o.json" in str(caught.value)


def test_overlay_for_an_input_that_is_not_exposed(
    t2i: dict[str, Any], info: dict[str, Any]
) -> None:
    overlay = Overlay.parse({"fields": {"3.steps": {"title": "S"}}})
    with pytest.raises(SchemaError, match="not exposed"):
        derive(t2i, info, name="t2i", overlay=overlay, expose=[Target("6", "text")])


def test_sample_i2v_overlay_gives_a_short_typed_schema(
    i2v: dict[str, Any], info: dict[str, Any]
) -> None:
    overlay = Overlay.parse(load("image-to-video.overlay.json"))
    derived = derive(i2v, info, name="i2v", overlay=overlay)
    assert [f.name for f in derived.model.fields] == [
        "start_image", "prompt", "negative_prompt", "number_of_frames", "seed", "steps",
        "guidance_scale", "frames_per_second", "resolution",
    ]  # fmt: skip
    assert derived.model.field("resolution").default == "832x480 (16:9)"
    assert not [w for w in derived.warnings if w.rule == "unknown-input-spec"]


# -- compiling payloads into overrides --------------------------------------------------------


def test_compile_without_notes_reads_the_model_api_keys(registry: Registry) -> None:
    """A hand-written schema in the catalog's convention compiles too (fused enum included)."""
    model = registry.get(INPAINT)
    a, b = "https://example.com/a.png", "https://example.com/b.png"
    payload = model.validator.validate(
        {
            "99_text": "a fox",
            "resolution": "480x720",
            "96_steps": 8,
            "start_image": a,
            "end_image": b,
        }
    )
    assert compile_overrides(model, payload) == {
        "overrides": {
            "99": {"inputs": {"text": "a fox"}},
            "110": {"inputs": {"image": a}},
            "112": {"inputs": {"image": b}},
            "111": {"inputs": {"width": 480, "height": 720}},
            "96": {"inputs": {"steps": 8}},
        }
    }


# -- the binding and --check ------------------------------------------------------------------


def test_changes_name_what_moved(t2i: dict[str, Any], info: dict[str, Any]) -> None:
    first = derive(t2i, info, name="t2i")
    assert changes(first.schema, first.binding, derive(t2i, info, name="t2i")) == []
    edited = copy.deepcopy(t2i)
    edited["3"]["inputs"]["steps"] = 30
    del edited["9"]
    edited["12"] = {
        "class_type": "SaveImage",
        "inputs": {"filename_prefix": "b", "images": ["8", 0]},
    }
    found = changes(first.schema, first.binding, derive(edited, info, name="t2i"))
    assert found[0].startswith("the workflow changed")
    assert "field 3_steps: default 25 -> 30" in found
    assert "new field 12_filename_prefix" in found
    assert "field 9_filename_prefix is gone" in found


def test_cli_derive_writes_schema_and_binding_then_check(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    args = [
        "schema", "derive",
        "--workflow", str(SAMPLES / "text-to-image.json"),
        "--object-info", str(SAMPLES / "object_info.json"),
        "--overlay", str(SAMPLES / "text-to-image.overlay.json"),
        "--name", "lighthouse",
        "--schemas", str(schemas),
    ]  # fmt: skip
    result = run(args)
    assert result.exit_code == 0, result.output
    path = schemas / "deployments" / "lighthouse.json"
    assert f"derived deployments/lighthouse: {path} (9 fields)" in result.stdout
    assert "prompt (6_text): string (required)" in result.stdout
    binding = read_binding(path)
    assert binding is not None
    assert binding["model_id"] == "deployments/lighthouse" and binding["deployment_id"] is None
    assert binding["outputs"] == [{"node": "9", "class_type": "SaveImage", "kind": "image"}]
    assert binding["overlay"]["title"] == "Lighthouse text-to-image"

    # The registry finds the schema (not the binding) and the CLI describes it like any model.
    registry = Registry([schemas], use_env=False, include_bundled=False)
    assert registry.model_ids() == ["deployments/lighthouse"]
    described = run(["--schemas", str(schemas), "describe", "deployments/lighthouse"])
    assert described.exit_code == 0 and "resolution (5_widthx5_height)" in described.stdout
    assert run(["schema", "check", str(schemas), "--strict"]).exit_code == 0

    again = run(args)
    assert again.exit_code == 2 and "pass --force" in again.stderr
    checked = run([*args[:-4], "--name", "lighthouse", "--schemas", str(schemas), "--check"])
    assert checked.exit_code == 0 and "up to date" in checked.stdout

    # The deployed workflow changed: --check says what, using the stored overlay.
    edited = load("text-to-image.json")
    edited["3"]["inputs"]["cfg"] = 5.5
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(edited))
    out = run(
        ["schema", "derive", "--workflow", str(changed), "--object-info",
         str(SAMPLES / "object_info.json"), "--name", "lighthouse", "--schemas", str(schemas),
         "--check"]
    )  # fmt: skip
    assert out.exit_code == 1
    assert "the workflow changed" in out.stderr and "3_cfg: default 7.0 -> 5.5" in out.stderr


def test_cli_derive_refuses_bad_files_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "overlay.json"
    bad.write_text('{"fields": {"3.steps": {"maximum": 1e9}}}')
    result = run(
        ["schema", "derive", "--workflow", str(SAMPLES / "text-to-image.json"), "--object-info",
         str(SAMPLES / "object_info.json"), "--overlay", str(bad), "--name", "x", "--schemas",
         str(tmp_path / "s")]
    )  # fmt: skip
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "would widen" in result.stderr
    broken = tmp_path / "wf.json"
    broken.write_text('{"1": ')
    result = run(
        ["schema", "derive", "--workflow", str(broken), "--object-info",
         str(SAMPLES / "object_info.json"), "--name", "x", "--schemas", str(tmp_path / "s")]
    )  # fmt: skip
    assert result.exit_code == 2 and f"{broken}:1:" in result.stderr
    bad_expose = run(
        ["schema", "derive", "--workflow", str(SAMPLES / "text-to-image.json"), "--object-info",
         str(SAMPLES / "object_info.json"), "--name", "x", "--expose", "6", "--schemas",
         str(tmp_path / "s")]
    )  # fmt: skip
    assert bad_expose.exit_code == 2 and "NODE.INPUT" in bad_expose.stderr
    assert not (tmp_path / "s").exists()


# -- a big workflow ---------------------------------------------------------------------------


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location(
        "synthetic_workflow", ROOT / "bench" / "synthetic_workflow.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_200_node_workflow_derives_every_value_input() -> None:
    """Correctness only; the time is measured by `make bench`."""
    synthetic = _synthetic()
    info = synthetic.object_info(300)
    flow = synthetic.workflow(info, 200)
    derived = derive(flow, info, name="big")
    literals = sum(
        1
        for node in flow.values()
        for value in node["inputs"].values()
        if not isinstance(value, list)
    )
    assert len(derived.model.fields) == literals
    assert len({f.name for f in derived.model.fields}) == literals  # every name unique
    # Every field's default is valid for its own schema: the workflow's values are in range.
    assert not [w for w in derived.warnings if w.rule.startswith("default")]
    defaults = {f.key: f.default for f in derived.model.fields}
    payload = derived.model.validator.validate(defaults)
    overrides = compile_overrides(derived.model, payload)["overrides"]
    assert sum(len(v["inputs"]) for v in overrides.values()) == literals


# -- a typed wrapper for a workflow nobody wrote a schema for ---------------------------------


def test_codegen_types_a_derived_schema(tmp_path: Path, importable: Path) -> None:  # noqa: F811
    from runcomfy_codegen import generate

    schemas = tmp_path / "schemas"
    result = run(
        ["schema", "derive", "--workflow", str(SAMPLES / "image-to-video.json"), "--object-info",
         str(SAMPLES / "object_info.json"), "--overlay", str(SAMPLES / "image-to-video.overlay.json"),
         "--name", "wan-i2v", "--schemas", str(schemas)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = generate(schemas, importable, "my_workflows")
    assert "my_workflows/deployments/wan_i2v.py" in report.written
    module = importlib.import_module("my_workflows.deployments.wan_i2v")
    typed = module.Input(
        start_image="https://example.com/start.png",
        prompt="waves",
        resolution="480x832 (9:16)",
        number_of_frames=49,
    )
    with pytest.raises(InputValidationError, match=r"number_of_frames \(30_length\)"):
        module.Input(start_image="https://example.com/a.png", prompt="x", number_of_frames=50)
    model = Registry([schemas], use_env=False, include_bundled=False).get(module.MODEL_ID)
    overrides = compile_overrides(model, model.validator.validate(typed.to_payload()))
    assert overrides == {
        "overrides": {
            "10": {"inputs": {"image": "https://example.com/start.png"}},
            "20": {"inputs": {"text": "waves"}},
            "30": {"inputs": {"length": 49, "width": 480, "height": 832}},
        }
    }


def test_meta_check_of_a_big_schema_still_names_the_bad_property() -> None:
    """Properties are meta-checked once per shape: a bad one is still found and pointed at."""
    from runcomfy_client._dialect import normalise

    props: dict[str, Any] = {
        f"{i}_x": {"title": f"X {i}", "type": "integer", "default": i} for i in range(200)
    }
    props["150_x"] = {"title": "X", "type": "integer", "minimum": "low"}
    with pytest.raises(SchemaError) as caught:
        normalise({"type": "object", "properties": props}, file="big.json")
    assert caught.value.pointer == "/properties/150_x/minimum"
    props["150_x"] = {"title": 3, "type": "integer"}
    with pytest.raises(SchemaError) as caught:
        normalise({"type": "object", "properties": props})
    assert caught.value.pointer == "/properties/150_x/title"
    props["150_x"] = {"title": "ok", "type": "integer", "examples": "not a list"}
    with pytest.raises(SchemaError) as caught:
        normalise({"type": "object", "properties": props})
    assert caught.value.pointer == "/properties/150_x/examples"


def test_cli_derives_from_a_full_size_object_info(tmp_path: Path) -> None:
    """object_info of a real install is several MB: more than a schema file may be."""
    synthetic = _synthetic()
    info = synthetic.object_info(1500)
    (tmp_path / "object_info.json").write_text(json.dumps(info))
    (tmp_path / "workflow.json").write_text(json.dumps(synthetic.workflow(info, 20)))
    assert (tmp_path / "object_info.json").stat().st_size > 4 * 1024 * 1024
    result = run(
        ["schema", "derive", "--workflow", str(tmp_path / "workflow.json"), "--object-info",
         str(tmp_path / "object_info.json"), "--name", "big", "--schemas", str(tmp_path / "s")]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "derived deployments/big" in result.stdout
