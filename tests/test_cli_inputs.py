"""Command-line text to JSON values, per-field flags built from a schema, and the live display."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from runcomfy_client import InputValidationError, ModelSchema, Registry
from runcomfy_client._registry import model_from_schema
from runcomfy_client._types import DownloadProgress, InProgress, Queued
from runcomfy_client.cli._display import JobView
from runcomfy_client.cli._inputs import gather_inputs, parse_value
from runcomfy_client.cli._run_cmd import model_command

from .conftest import FUSIONX, INPAINT

ODD = {
    "type": "object",
    "required": ["1_count"],
    "properties": {
        "1_count": {"title": "Count", "type": "integer", "minimum": 1, "maximum": 4},
        "2_upscale": {"title": "Upscale", "type": "boolean", "default": False},
        "3_tags": {"title": "Tags", "type": "array", "items": {"type": "string"}},
        "4_timeout": {"title": "Timeout", "type": "number"},
        "5_strength": {"title": "Strength", "type": ["number", "null"]},
        "6_mode": {"title": "Mode", "type": "integer", "enum": [1, 2, 3]},
    },
}


@pytest.fixture
def odd() -> ModelSchema:
    return model_from_schema("acme/odd", ODD)


def field(model: ModelSchema, name: str) -> Any:
    return model.field(name)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("count", "3", 3),
        ("upscale", "yes", True),
        ("upscale", "False", False),
        ("tags", '["a", "b"]', ["a", "b"]),
        ("timeout", "2", 2),
        ("timeout", "0.5", 0.5),
        ("strength", "null", None),
        ("strength", "1e-3", 0.001),
        ("mode", "2", 2),
    ],
)
def test_parse_value_converts_to_the_fields_json_type(
    odd: ModelSchema, name: str, text: str, value: Any
) -> None:
    parsed = parse_value(field(odd, name), text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("count", "3.5", "expected an integer, got '3.5'"),
        ("upscale", "maybe", "expected true or false, got 'maybe'"),
        ("tags", "a,b", "expected a JSON list, got 'a,b'"),
        ("strength", "strong", "expected a number or a null, got 'strong'"),
    ],
)
def test_parse_value_says_what_was_expected(
    odd: ModelSchema, name: str, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_value(field(odd, name), text)


def test_enum_text_matches_the_published_value(registry: Registry) -> None:
    inpaint = registry.get(INPAINT)
    assert parse_value(inpaint.field("resolution"), "720x480 (3:2)") == "720x480 (3:2)"
    assert parse_value(inpaint.field("number_of_frames"), "141") == 141


def test_a_bad_required_value_is_reported_once_not_also_as_missing(odd: ModelSchema) -> None:
    with pytest.raises(InputValidationError) as caught:
        gather_inputs(odd, sets=["count=many", "nonsense"], flags={"6_mode": "9"})
    messages = [str(p) for p in caught.value.problems]
    assert messages == [
        "--set: takes NAME=VALUE, not 'nonsense'",
        "count (1_count): expected an integer, got 'many'",
        "mode (6_mode): 9 is not one of the allowed values; did you mean 3? allowed: 1, 2, 3",
    ]


def test_model_command_flags_for_odd_types_and_clashing_names(odd: ModelSchema) -> None:
    command = model_command(odd)
    help_text = CliRunner().invoke(command, ["--help"]).output
    assert "--upscale / --no-upscale" in help_text
    assert "--tags JSON" in help_text and "--count INTEGER" in help_text
    # A field named like a run option gets no flag of its own; --set still reaches it.
    assert "Set with --set only (their flags would clash): timeout (4_timeout)." in help_text

    captured: dict[str, Any] = {}

    def fake_run(ctx: click.Context, model: ModelSchema, flags: dict[str, Any], **kw: Any) -> None:
        captured.update(flags=flags, **kw)

    import runcomfy_client.cli._run_cmd as run_cmd

    original = run_cmd.run_job
    run_cmd.run_job = fake_run  # type: ignore[assignment]
    try:
        args = ["--count", "2", "--no-upscale", "--tags", '["x"]', "--set", "timeout=5"]
        outcome = CliRunner().invoke(command, args)
    finally:
        run_cmd.run_job = original
    assert outcome.exit_code == 0, outcome.output
    assert captured["flags"] == {"1_count": "2", "2_upscale": False, "3_tags": '["x"]'}
    assert captured["sets"] == ("timeout=5",)
    merged = gather_inputs(odd, sets=captured["sets"], flags=captured["flags"])
    assert merged == {"1_count": 2, "2_upscale": False, "3_tags": ["x"], "4_timeout": 5}


def test_live_view_shows_id_queue_position_elapsed_and_download_bars(tmp_path: Path) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    view = JobView("live", console=console)
    with view:
        view.submitted("req-123")
        view.status(Queued("req-123", "in_queue", position=2))
        assert view._live is not None
        view._live.refresh()
        view.status(InProgress("req-123", "in_progress"))
        view._live.refresh()
        target = tmp_path / "clip.mp4"
        view.progress(DownloadProgress("http://x/clip.mp4", target, 512, 1024))
        view.progress(DownloadProgress("http://x/clip.mp4", target, 1024, 1024, done=True))
    text = buffer.getvalue()
    assert "submitted: request id req-123" in text
    assert "req-123  queued (position 2)  0s" in text
    assert "in progress" in text
    assert "clip.mp4" in text and "1.0/1.0 kB" in text


def test_plain_view_prints_each_change_once(capsys: pytest.CaptureFixture[str]) -> None:
    view = JobView("plain")
    with view:
        view.submitted("req-9")
        view.status(Queued("req-9", "in_queue", position=0))
        view.status(InProgress("req-9", "in_progress"))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "submitted: request id req-9"
    assert err[1].startswith("req-9  queued (position 0)")
    assert err[2].startswith("req-9  in progress")


def test_fusionx_flags_cover_every_field(registry: Registry) -> None:
    model = registry.get(FUSIONX)
    help_text = CliRunner().invoke(model_command(model), ["--help"]).output
    for f in model.fields:
        assert f"Wire key: {f.key}." in " ".join(help_text.split())
