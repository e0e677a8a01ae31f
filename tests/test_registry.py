from __future__ import annotations

import os
from pathlib import Path

import pytest

from runcomfy_client import DuplicateModelError, Registry, SchemaError, UnknownModelError

from .conftest import FUSIONX, INPAINT, write_schema

SIMPLE = {
    "type": "object",
    "required": ["1_prompt"],
    "properties": {"1_prompt": {"type": "string"}},
}


def test_bundled_models_are_found(registry: Registry) -> None:
    assert registry.model_ids() == [FUSIONX, INPAINT]
    assert registry.get(INPAINT).bundled


def test_bundled_output_schema_is_shared(registry: Registry) -> None:
    assert registry.get(FUSIONX).output_kinds() == ["image", "video", "images", "videos"]


def test_user_folder_from_env_overrides_bundled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_schema(tmp_path, INPAINT, SIMPLE)
    write_schema(tmp_path, "acme/tool", SIMPLE)
    monkeypatch.setenv("RUNCOMFY_SCHEMA_PATH", os.pathsep.join([str(tmp_path), ""]))
    registry = Registry()
    assert "acme/tool" in registry.model_ids()
    model = registry.get(INPAINT)
    assert not model.bundled
    assert [f.name for f in model.fields] == ["prompt"]


def test_schema_dirs_parameter_and_own_output_schema(tmp_path: Path) -> None:
    write_schema(tmp_path, "acme/pics", SIMPLE)
    (tmp_path / "acme" / "pics.output.json").write_text(
        '{"output": {"type": "object", "properties": {"images": {"type": "array"}}}}'
    )
    model = Registry([tmp_path], use_env=False).get("acme/pics")
    assert model.output_kinds() == ["images"]


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = write_schema(tmp_path, "broken", '{\n  "type": "object",\n  "properties": {,}\n}')
    with pytest.raises(SchemaError) as info:
        Registry([tmp_path], use_env=False).get("broken")
    assert info.value.file == str(path)
    assert (info.value.line, info.value.column) == (3, 18)
    assert f"{path}:3:18" in str(info.value)


def test_two_user_files_for_one_id_name_both(tmp_path: Path) -> None:
    a = write_schema(tmp_path / "a", "dup/model", SIMPLE)
    b = write_schema(tmp_path / "b", "dup/model", SIMPLE)
    with pytest.raises(DuplicateModelError) as info:
        Registry([tmp_path / "a", tmp_path / "b"], use_env=False).model_ids()
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_unknown_model_suggests_close_ids(registry: Registry) -> None:
    with pytest.raises(UnknownModelError) as info:
        registry.get("community/wan-2-2/fun-inpaing")
    assert info.value.suggestions[0] == INPAINT
    assert "did you mean" in str(info.value)


def test_validator_is_compiled_once(registry: Registry) -> None:
    assert registry.validator(INPAINT) is registry.validator(INPAINT)


def test_underscore_and_output_files_are_not_models(tmp_path: Path) -> None:
    write_schema(tmp_path, "_private/x", SIMPLE)
    write_schema(tmp_path, "m", SIMPLE)
    (tmp_path / "m.output.json").write_text('{"properties": {"video": {}}}')
    assert Registry([tmp_path], use_env=False, include_bundled=False).model_ids() == ["m"]
