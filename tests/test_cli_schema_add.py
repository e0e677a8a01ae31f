"""`runcomfy-client schema add`: from a file, a saved API page, or the API; checked, verbatim."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runcomfy_client import Registry
from runcomfy_client._pages import parse_api_page
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

from .conftest import FUSIONX, INPAINT, write_schema

SEEDS = Path(__file__).resolve().parent / "fixtures" / "pages"
BUNDLED = Path(__file__).resolve().parents[1] / "schemas"


def run(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(cli, args, env={"RUNCOMFY_SCHEMA_PATH": "", **env})


def page_of(model_id: str) -> Path:
    for page in sorted(SEEDS.glob("*.txt")):
        if parse_api_page(page.read_text()).model_id == model_id:
            return page
    raise AssertionError(model_id)


@pytest.mark.parametrize("model_id", [FUSIONX, INPAINT])
def test_from_page_writes_the_published_json_verbatim(model_id: str, tmp_path: Path) -> None:
    result = run(
        ["schema", "add", "--from-page", str(page_of(model_id)), "--schemas", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    written = tmp_path / f"{model_id}.json"
    assert f"added {model_id}: {written}" in result.stdout
    # The seed schemas were copied from these pages: the bytes must match.
    assert written.read_bytes() == (BUNDLED / f"{model_id}.json").read_bytes()
    assert "warning:" in result.stderr  # the published quirks are reported, not fatal
    assert Registry([tmp_path], use_env=False, include_bundled=False).model_ids() == [model_id]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    page = str(page_of(INPAINT))
    assert run(["schema", "add", "--from-page", page, "--schemas", str(tmp_path)]).exit_code == 0
    target = tmp_path / f"{INPAINT}.json"
    target.write_text('{"type": "object", "properties": {}}')
    again = run(["schema", "add", "--from-page", page, "--schemas", str(tmp_path)])
    assert again.exit_code == 2 and "pass --force" in again.stderr
    assert target.read_text() == '{"type": "object", "properties": {}}'
    forced = run(["schema", "add", "--from-page", page, "--schemas", str(tmp_path), "--force"])
    assert forced.exit_code == 0
    assert target.read_bytes() == (BUNDLED / f"{INPAINT}.json").read_bytes()


def test_from_file_goes_to_the_first_user_folder(tmp_path: Path) -> None:
    source = write_schema(
        tmp_path / "src",
        "x",
        {"type": "object", "required": ["1_a"], "properties": {"1_a": {"type": "float"}}},
    )
    first, second = tmp_path / "first", tmp_path / "second"
    path_env = f"{first}:{second}"
    result = run(
        ["schema", "add", "acme/new-model", "--from-file", str(source)],
        RUNCOMFY_SCHEMA_PATH=path_env,
    )
    assert result.exit_code == 0, result.stderr
    written = first / "acme" / "new-model.json"
    assert written.read_text() == source.read_text() + "\n"
    listed = run(["models", "--json"], RUNCOMFY_SCHEMA_PATH=path_env)
    assert "acme/new-model" in [m["model_id"] for m in json.loads(listed.stdout)]


def test_default_folder_is_schemas_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_schema(tmp_path, "in", {"type": "object", "properties": {}})
    result = run(["schema", "add", "acme/m", "--from-file", str(source)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "schemas" / "acme" / "m.json").is_file()
    assert "--schemas schemas" in result.stderr  # says how to use the folder


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ('{"type": "object", "properties": {"a": {"type": "colour"}}}', "colour"),
        ("[1, 2]", "object"),
        ("{broken", "not valid JSON"),
    ],
)
def test_unusable_schema_is_refused_and_nothing_written(
    tmp_path: Path, schema: str, message: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(schema)
    out = tmp_path / "out"
    result = run(["schema", "add", "acme/bad", "--from-file", str(source), "--schemas", str(out)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.exists()


def test_usage_errors(tmp_path: Path) -> None:
    page = str(page_of(INPAINT))
    both = run(["schema", "add", "a/b", "--from-page", page, "--remote"])
    assert both.exit_code == 2 and "exactly one" in both.stderr
    wrong = run(["schema", "add", FUSIONX, "--from-page", page, "--schemas", str(tmp_path)])
    assert wrong.exit_code == 2 and f"is the page of {INPAINT}" in wrong.stderr
    source = write_schema(tmp_path, "s", {"type": "object", "properties": {}})
    for bad_id in ("../escape", "a/../b", ".hidden/x", "a//b"):
        escaped = run(
            ["schema", "add", bad_id, "--from-file", str(source), "--schemas", str(tmp_path)]
        )
        assert escaped.exit_code == 2 and "is not a model id" in escaped.stderr
    blank = tmp_path / "blank.txt"
    blank.write_text("a page without any schema")
    nothing = run(["schema", "add", "--from-page", str(blank)])
    assert nothing.exit_code == 2 and "no model id found" in nothing.stderr


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    served = tmp_path_factory.mktemp("served")
    write_schema(
        served,
        "acme/remote-model",
        {"type": "object", "required": ["3_text"], "properties": {"3_text": {"type": "string"}}},
    )
    with Emulator(schema_dirs=[served]) as emu:
        yield emu


def test_remote_fetches_the_one_model_endpoint(emulator: Emulator, tmp_path: Path) -> None:
    env = {"RUNCOMFY_BASE_URL": emulator.base_url, "RUNCOMFY_API_KEY": emulator.api_key}
    args = ["schema", "add", "acme/remote-model", "--remote", "--schemas", str(tmp_path)]
    result = run(args, **env)
    assert result.exit_code == 0, result.stderr
    written = json.loads((tmp_path / "acme" / "remote-model.json").read_text())
    assert written["required"] == ["3_text"]
    missing = run(["schema", "add", "acme/nope", "--remote", "--schemas", str(tmp_path)], **env)
    assert missing.exit_code == 4 and not (tmp_path / "acme" / "nope.json").exists()
    denied = run([*args, "--force"], **dict(env, RUNCOMFY_API_KEY="bad-key-31337"))
    assert denied.exit_code == 3 and "bad-key-31337" not in denied.output + denied.stderr
