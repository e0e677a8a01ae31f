"""`schema add --from-page` on every page layout RunComfy serves.

The catalog's page excerpts (tests/fixtures/catalog/pages, verbatim copies) are cut before or
inside the schema. A whole page is built by appending the rest (some page text and a schema) to
an unchanged copy of an excerpt, so the page text the reader sees first is exactly what RunComfy
published, a half schema included where the excerpt stops inside one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runcomfy_client import Registry, SchemaError
from runcomfy_client._pages import parse_api_page
from runcomfy_client.cli import cli

PAGES = Path(__file__).resolve().parent / "fixtures" / "catalog" / "pages"

INPUT_SCHEMA = {
    "type": "object",
    "required": ["prompt", "image_url"],
    "properties": {
        "prompt": {"title": "Prompt", "type": "string", "default": ""},
        "image_url": {"title": "Image", "type": "string", "format": "image_uri"},
        "duration": {"title": "Duration", "type": "integer", "default": 5, "enum": [5, 10]},
    },
}
OUTPUT = '{\n"output": {\n"type": "object",\n"properties": {\n"video": {"type": "string", "format": "uri"}\n}\n}\n}'
TAIL = "\nRunComfy is the premier ComfyUI platform.\n"


def _schema_text(schema: dict[str, object], title: str) -> str:
    return json.dumps({"type": "object", "title": title, **schema}, indent=2, ensure_ascii=False)


def _whole(name: str, bridge: str, title: str, schema: dict[str, object]) -> tuple[str, str]:
    excerpt = (PAGES / name).read_bytes().decode("utf-8")
    shown = _schema_text(schema, title)
    return excerpt + bridge + shown + TAIL, shown


def _i18n_page() -> tuple[str, str]:
    # The excerpt stops inside the schema's own text; the whole schema follows it.
    return _whole(
        "kling__kling-2-1__pro__image-to-video.txt", "", "modelApiDoc_navInputSchema", INPUT_SCHEMA
    )


def _localized_page() -> tuple[str, str]:
    schema = {
        "required": ["prompt", "video_url"],
        "properties": {
            "prompt": {"title": "提示词", "type": "string", "default": ""},
            "video_url": {"title": "视频", "type": "string", "format": "video_uri"},
        },
    }
    return _whole("tencent__hunyuan__video-to-video.txt", "", "输入结构", schema)


def _english_prose_page() -> tuple[str, str]:
    lora_schema = {
        "required": ["prompt", "video_url"],
        "properties": {
            "prompt": {"type": "string", "default": ""},
            "video_url": {"type": "string", "format": "video_uri"},
            "loras": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "required": ["path"],
                    "properties": {
                        "path": {"type": "string"},
                        "scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1},
                    },
                },
            },
        },
    }
    bridge = (
        'tps://model-api.runcomfy.net/v1/requests/{request_id}/cancel \\\n--header "Authorization:'
        ' Bearer <token>"Provide a publicly reachable HTTPS URL. Private assets: pre-signed URLs.\n'
    )
    return _whole("ltx__ltx-2-19b__video-to-video__lora.txt", bridge, "Input schema", lora_schema)


def _numbered_headings_page() -> tuple[str, str]:
    excerpt = (PAGES / "ltx__ltx-2__fast__image-to-video.txt").read_text(encoding="utf-8")
    shown = _schema_text(INPUT_SCHEMA, "Input")
    bridge = (
        "eve the final outputs and metadata for the given request_id.\ncurl --request GET \\\n"
        "--url https://model-api.runcomfy.net/v1/requests/{request_id}/result \\\n"
        '--header "Authorization: Bearer <token>"4. File inputs\nHosted file (URL)\n'
        "5. Schema\nInput schema\n"
    )
    page = excerpt + bridge + shown + "Output schema\n" + OUTPUT + TAIL
    return page, shown


LAYOUTS = {
    "i18n keys": ("kling/kling-2-1/pro/image-to-video", _i18n_page),
    "localized prose": ("tencent/hunyuan/video-to-video", _localized_page),
    "english prose": ("ltx/ltx-2-19b/video-to-video/lora", _english_prose_page),
    "numbered headings": ("ltx/ltx-2/fast/image-to-video", _numbered_headings_page),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_its_id_and_its_schema_verbatim(layout: str) -> None:
    model_id, build = LAYOUTS[layout]
    page, shown = build()
    parsed = parse_api_page(page)
    assert parsed.model_id == model_id
    assert parsed.input_text == shown
    assert parsed.input_schema == json.loads(shown)
    # The example bodies after --data are never taken for the schema.
    assert "title" in parsed.input_schema


def test_the_schema_title_stays_as_published() -> None:
    assert parse_api_page(_i18n_page()[0]).input_schema["title"] == "modelApiDoc_navInputSchema"
    assert parse_api_page(_localized_page()[0]).input_schema["title"] == "输入结构"


def test_the_output_schema_is_read_when_shown() -> None:
    parsed = parse_api_page(_numbered_headings_page()[0])
    assert parsed.output_schema is not None
    assert list(parsed.output_schema["properties"]) == ["video"]
    assert parse_api_page(_english_prose_page()[0]).output_schema is None


@pytest.mark.parametrize("name", sorted(p.name for p in PAGES.glob("*.txt")))
def test_a_cut_page_is_refused_with_a_reason(name: str) -> None:
    excerpt = (PAGES / name).read_text(encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        parse_api_page(excerpt, source=name)
    text = str(caught.value)
    assert "no input schema found" in text
    if "kling" in name or "tencent" in name:  # these stop inside the schema itself
        assert "looks cut short or damaged" in text and "does not parse" in text


def _page_with_url(url_line: str, schema: dict[str, object] | None = None) -> str:
    body = json.dumps(schema or INPUT_SCHEMA, indent=2)
    return (
        "Use RunComfy's API.\ncurl --request POST \\\n"
        f"{url_line}\n"
        '--header "Content-Type: application/json" \\\n'
        '--data \'{\n"prompt": "a cat"\n}\'Submit a job.\n' + body + "\n"
    )


def test_an_id_with_spaces_is_kept_whole() -> None:
    page = _page_with_url(
        "--url https://model-api.runcomfy.net/v1/models/minimax/Hailuo Video 01 Live \\"
    )
    assert parse_api_page(page).model_id == "minimax/Hailuo Video 01 Live"
    quoted = _page_with_url(
        '--url "https://model-api.runcomfy.net/v1/models/minimax/Hailuo%20Video%2001%20Live"'
    )
    assert parse_api_page(quoted).model_id == "minimax/Hailuo Video 01 Live"


@pytest.mark.parametrize(
    ("url_line", "why"),
    [
        ("--url https://model-api.runcomfy.net/v1/models/a/b\x07c \\", "control"),
        ("--url https://model-api.runcomfy.net/v1/models/a/../etc \\", "starts with '.'"),
        ("--url https://model-api.runcomfy.net/v1/models/a/b --header x", "other text"),
        ("--url https://model-api.runcomfy.net/v1/models/ \\", "empty"),
        ("--url https://model-api.runcomfy.net/v1/models/" + "x" * 300, "characters long"),
    ],
)
def test_an_id_that_cannot_be_read_exactly_is_refused(url_line: str, why: str) -> None:
    with pytest.raises(SchemaError) as caught:
        parse_api_page(_page_with_url(url_line))
    assert "cannot read the model id exactly" in str(caught.value)
    assert why in str(caught.value)


def test_two_ids_are_refused() -> None:
    page = _page_with_url("--url https://model-api.runcomfy.net/v1/models/a/one \\")
    page += "curl \\\n--url https://model-api.runcomfy.net/v1/models/a/two \\\n"
    with pytest.raises(SchemaError, match="several models"):
        parse_api_page(page)


def test_a_hostile_page_is_bounded() -> None:
    page = _page_with_url("--url https://model-api.runcomfy.net/v1/models/a/b \\")
    with pytest.raises(SchemaError, match="too many"):
        parse_api_page(page + '{"a":\n' * 2000)
    with pytest.raises(SchemaError, match="larger than"):
        parse_api_page(page + " " * (5 * 1024 * 1024))


def _cli(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env={"RUNCOMFY_SCHEMA_PATH": ""})


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_schema_add_from_every_layout(layout: str, tmp_path: Path) -> None:
    model_id, build = LAYOUTS[layout]
    page, shown = build()
    saved = tmp_path / "page.txt"
    saved.write_text(page, encoding="utf-8")
    out = tmp_path / "schemas"
    result = _cli(["schema", "add", "--from-page", str(saved), "--schemas", str(out)])
    assert result.exit_code == 0, result.stderr
    written = out / f"{model_id}.json"
    assert written.read_text(encoding="utf-8") == shown + "\n"
    assert Registry([out], use_env=False, include_bundled=False).model_ids() == [model_id]


def test_schema_add_keeps_an_id_with_spaces(tmp_path: Path) -> None:
    saved = tmp_path / "page.txt"
    saved.write_text(
        _page_with_url(
            "--url https://model-api.runcomfy.net/v1/models/minimax/Hailuo Video 01 Live \\"
        ),
        encoding="utf-8",
    )
    out = tmp_path / "schemas"
    result = _cli(["schema", "add", "--from-page", str(saved), "--schemas", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "added minimax/Hailuo Video 01 Live" in result.stdout
    assert (out / "minimax" / "Hailuo Video 01 Live.json").is_file()
    described = _cli(["--schemas", str(out), "describe", "minimax/Hailuo Video 01 Live", "--json"])
    assert described.exit_code == 0, described.stderr


def test_schema_add_refuses_a_cut_page_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    page = PAGES / "kling__kling-2-1__pro__image-to-video.txt"
    result = _cli(["schema", "add", "--from-page", str(page), "--schemas", str(out)])
    assert result.exit_code == 2
    assert "looks cut short" in result.stderr
    assert not out.exists()
