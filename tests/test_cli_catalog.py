from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runcomfy_client.cli import cli

from .conftest import FUSIONX, INPAINT, write_schema


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("RUNCOMFY_SCHEMA_PATH", raising=False)
    return CliRunner()


def test_models_lists_both_seeds_with_required_inputs(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["models", "--json"])
    assert result.exit_code == 0
    rows = {r["model_id"]: r for r in json.loads(result.output)}
    assert rows[INPAINT]["required"] == ["prompt", "start_image", "end_image"]
    assert rows[FUSIONX]["required"] == ["prompt", "image"]
    text = runner.invoke(cli, ["models"]).output
    assert FUSIONX in text and INPAINT in text


def test_describe_json_has_the_documented_keys(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["describe", INPAINT, "--json"])
    assert result.exit_code == 0
    fields = json.loads(result.output)
    steps = next(f for f in fields if f["wire_key"] == "96_steps")
    assert steps == {
        "python_name": "steps",
        "wire_key": "96_steps",
        "type": "integer",
        "required": False,
        "default": 4,
        "enum": None,
        "minimum": 6,
        "maximum": 20,
        "media": None,
        "description": "Number of denoising iterations; more steps refine detail and stability but take longer.",
        "has_default": True,
        "media_array": False,
        "media_rule": None,
        "items": None,
        "min_items": None,
        "max_items": None,
        "validations": [],
    }
    cfg = next(f for f in fields if f["python_name"] == "guidance_scale")
    assert cfg["type"] == "number"


def test_describe_text_shows_lint_warnings(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["describe", INPAINT])
    assert "steps (96_steps)" in result.output
    assert "default 4 is outside its own bounds" in result.output


def test_unknown_model_exits_4_with_suggestion(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["describe", "community/wan-2-2/fun-inpain"])
    assert result.exit_code == 4
    assert "did you mean 'community/wan-2-2/fun-inpaint'" in result.output


def test_schema_check_fails_on_a_bad_schema(runner: CliRunner, tmp_path: Path) -> None:
    write_schema(tmp_path, "bad", {"type": "object", "properties": {"1_x": {"type": "decimal"}}})
    result = runner.invoke(cli, ["schema", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "/properties/1_x/type" in result.output


def test_schema_check_passes_bundled(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema", "check"])
    assert result.exit_code == 0
    assert "2 schemas checked: 0 invalid" in result.output
