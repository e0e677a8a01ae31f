"""The live catalog end to end: the emulator publishes, the client lists and syncs.

Every test talks real HTTP to an emulator whose catalog is a file the test rewrites between
two syncs (publish, change, withdraw), as RunComfy's catalog changes under a user's folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from runcomfy_client import AsyncClient, Client, Registry, ResponseDecodeError
from runcomfy_client._model_info import ModelInfo
from runcomfy_client._sidecar import read_sidecar
from runcomfy_client.cli import cli
from runcomfy_client.emulator import Emulator

SEED = Path(__file__).resolve().parent.parent / "schemas" / "community" / "wan-2-2"


def _schema(*extra: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "prompt": {"type": "string", "title": "Prompt"},
        "duration": {"type": "integer", "enum": [5, 10], "default": 5},
    }
    props.update({name: {"type": "integer"} for name in extra})
    return {"type": "object", "required": ["prompt"], "properties": props}


def record(model_id: str, *, price: float | None = 0.1, unit: str = "second", **more: Any) -> Any:
    kind = "image" if model_id.endswith("to-image") else "video"
    return {
        "model_id": model_id,
        "display_name": model_id.split("/")[1].replace("-", " ").title(),
        "categories": ["featured", kind],
        "kind": "model",
        "base_price_usd": price,
        "price_unit": unit,
        "pricing_note": "list price",
        "input_schema": _schema(),
        **more,
    }


def publish(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the catalog file as a deploy would: whole, in one rename."""
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(records))
    temp.replace(path)


@pytest.fixture
def catalog(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        record("acme/alpha/text-to-video"),
        record("acme/beta/image-to-video", price=0.5, unit="output"),
        record("acme/gamma/text-to-image", price=0.04, unit="output"),
        record("other/delta/text-to-video", price=None),
    ]


@pytest.fixture
def catalog_file(tmp_path: Path, catalog: list[dict[str, Any]]) -> Path:
    path = tmp_path / "catalog.json"
    publish(path, catalog)
    return path


@pytest.fixture
def emu(catalog_file: Path) -> Iterator[Emulator]:
    with Emulator(catalog_file=catalog_file, render=False, job_seconds=0) as emulator:
        yield emulator


def cli_run(emu: Emulator, *args: str) -> Result:
    env = {
        "RUNCOMFY_API_KEY": emu.api_key,
        "RUNCOMFY_BASE_URL": emu.base_url,
        "RUNCOMFY_SCHEMA_PATH": "",
    }
    return CliRunner().invoke(cli, list(args), env=env)


def client_for(emu: Emulator) -> Client:
    return Client(base_url=emu.base_url, api_key=emu.api_key)


# -- the emulator's catalog -------------------------------------------------------------------


def test_the_emulator_lists_records_like_the_real_catalog(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers) as http:
        listed = http.get("/v1/models").json()
        assert listed["total"] == 4
        first = listed["models"][0]
        assert set(first) == {
            "model_id",
            "display_name",
            "categories",
            "kind",
            "base_price_usd",
            "price_unit",
            "pricing_note",
        }  # the schema only when asked for
        with_schema = http.get("/v1/models", params={"include_schema": "true"}).json()
        assert with_schema["models"][0]["input_schema"] == _schema()

        def ids(**params: Any) -> list[str]:
            return [m["model_id"] for m in http.get("/v1/models", params=params).json()["models"]]

        assert ids(search="BETA") == ["acme/beta/image-to-video"]  # the display name counts
        assert ids(category="image") == ["acme/gamma/text-to-image"]
        assert ids(kind="model", limit=2, offset=1) == [
            "acme/beta/image-to-video",
            "acme/gamma/text-to-image",
        ]
        assert http.get("/v1/models", params={"limit": 1, "offset": 1}).json()["total"] == 4
        assert http.get("/v1/models", params={"offset": -1}).status_code == 400
        assert http.get("/v1/models/categories").json() == {
            "categories": ["featured", "image", "video"]
        }
        one = http.get("/v1/models/acme/alpha/text-to-video").json()
        assert one["base_price_usd"] == 0.1 and one["input_schema"] == _schema()


def test_the_emulator_reads_records_from_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    path = folder / "acme" / "song" / "text-to-audio.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_schema()))
    sidecar = {"display_name": "Song", "categories": ["music", "audio"], "base_price_usd": 0.02}
    path.with_name("text-to-audio.info.json").write_text(json.dumps({**sidecar, "price_unit": "s"}))
    with Emulator(schema_dirs=[folder], render=False) as emu, client_for(emu) as client:
        info = client.model_info("acme/song/text-to-audio")
        plain = next(iter(client.catalog(search="fun-inpaint")))
    assert (info.display_name, info.categories, info.price_text) == (
        "Song",
        ("music", "audio"),
        "$0.02 per s",
    )
    assert info.output_kind == "audio" and info.input_schema == _schema()
    # A schema without a sidecar is listed too: named after its id, categorised by what it
    # makes, with no price.
    assert (plain.display_name, plain.categories, plain.price) == ("fun-inpaint", ("video",), None)


# -- discovering: client.catalog(), model_info(), categories() ---------------------------------


def test_catalog_pages_through_every_record(emu: Emulator) -> None:
    with client_for(emu) as client:
        found = list(client.catalog(page_size=1))
        assert [i.model_id for i in found] == [r["model_id"] for r in sorted_records(emu)]
        alpha = found[0]
        assert isinstance(alpha, ModelInfo) and alpha.input_schema is None
        assert (alpha.price_text, alpha.output_kind) == ("$0.10 per second", "video")
        assert [i.model_id for i in client.catalog(limit=3, page_size=2)] == [
            i.model_id for i in found[:3]
        ]
        assert [i.model_id for i in client.catalog(category="image")] == [
            "acme/gamma/text-to-image"
        ]
        schema = next(iter(client.catalog(search="gamma", include_schema=True))).input_schema
        assert schema == _schema()
        assert client.categories() == ["featured", "image", "video"]
        assert client.model_info("other/delta/text-to-video").price is None
    requests = emu.stats()["requests"]["models"]
    assert requests >= 5  # one page per record, and one more to see the end


def sorted_records(emu: Emulator) -> list[dict[str, Any]]:
    path = Path(emu.config.catalog_file or "")
    return sorted(json.loads(path.read_text()), key=lambda r: r["model_id"])


def test_the_async_client_pages_the_same_way(emu: Emulator) -> None:
    async def main() -> list[str]:
        async with AsyncClient(base_url=emu.base_url, api_key=emu.api_key) as client:
            found = [info.model_id async for info in client.catalog(page_size=3, kind="model")]
            one = await client.model_info(found[0])
            assert one.input_schema == _schema()
            assert await client.categories() == ["featured", "image", "video"]
            return found

    assert asyncio.run(main()) == [r["model_id"] for r in sorted_records(emu)]


def _scripted(pages: list[Any]) -> Client:
    answers = iter(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers))

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return Client(base_url="http://127.0.0.1:9", api_key="k", http_client=http)


def test_a_server_that_ignores_offset_is_not_followed_for_ever() -> None:
    page = {"models": [{"model_id": "a/b"}, {"model_id": "a/c"}]}  # no total, same page again
    client = _scripted([page] * 10)
    with pytest.raises(ResponseDecodeError, match="ignore 'offset'"):
        list(client.catalog(page_size=2))


def test_unreadable_records_are_skipped_and_hostile_pages_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = {"models": [{"model_id": "a/b"}, {"display_name": "no id"}, "text"], "total": 3}
    client = _scripted([bad])
    assert [i.model_id for i in client.catalog()] == ["a/b"]
    assert "without a usable model_id" in caplog.text
    with pytest.raises(ResponseDecodeError, match="without a 'models' list"):
        list(_scripted([{"items": []}]).catalog())
    hostile = {
        "model_id": "a/b",
        "display_name": "\x1b[31mred\x1b[0m",
        "base_price_usd": -3,
        "price_unit": ["x"],
        "categories": "video",
    }
    info = ModelInfo.from_record(hostile)
    assert info.display_name == "?[31mred?[0m"
    assert (info.price, info.categories, info.output_kind) == (None, (), None)


# -- schema sync --------------------------------------------------------------------------------


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.json"))
    }


def test_sync_check_and_sync_again_end_to_end(
    emu: Emulator, catalog: list[dict[str, Any]], catalog_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "schemas"
    first = cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder))
    assert first.exit_code == 0, first.output
    assert "4 models: 4 added, 0 unchanged; 8 files written, 0 removed" in first.stdout
    alpha = folder / "acme" / "alpha" / "text-to-video.json"
    # The schema verbatim, as `schema add` writes it; the record beside it, without the schema.
    assert alpha.read_text() == json.dumps(_schema(), indent=2, ensure_ascii=False) + "\n"
    side = read_sidecar(alpha)
    assert side is not None and "input_schema" not in side
    assert side["base_price_usd"] == 0.1 and side["output_kind"] == "video"
    registry = Registry([folder], use_env=False, include_bundled=False)
    assert registry.model_ids() == sorted(r["model_id"] for r in catalog)
    assert registry.get("acme/gamma/text-to-image").info.price_text == "$0.04 per output"  # type: ignore[union-attr]

    # Nothing changed: nothing is written, every file keeps its mtime.
    before = _mtimes(folder)
    again = cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder))
    assert again.exit_code == 0
    assert "0 files written" in again.stdout and _mtimes(folder) == before
    clean = cli_run(emu, "schema", "sync", "--all", "--check", "--schemas", str(folder))
    assert clean.exit_code == 0 and "nothing written" in clean.stdout

    # The catalog moves on: a price changes, a field appears, a model goes, one arrives.
    catalog[0]["base_price_usd"] = 0.12
    catalog[1]["input_schema"] = _schema("seed")
    withdrawn = catalog.pop(3)["model_id"]
    catalog.append(record("acme/epsilon/text-to-video"))
    publish(catalog_file, catalog)
    checked = cli_run(emu, "schema", "sync", "--all", "--check", "--json", "--schemas", str(folder))
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    assert report["counts"] == {
        "added": 1,
        "changed": 2,
        "removed": 1,
        "unusable": 0,
        "unchanged": 1,
    }
    assert [e["model_id"] for e in report["added"]] == ["acme/epsilon/text-to-video"]
    changed = {e["model_id"]: e["details"] for e in report["changed"]}
    assert changed == {
        "acme/alpha/text-to-video": ["price $0.10 per second -> $0.12 per second"],
        "acme/beta/image-to-video": ["new field seed"],
    }
    assert [e["model_id"] for e in report["removed"]] == [withdrawn]
    assert _mtimes(folder) == before  # --check wrote nothing
    text = cli_run(emu, "schema", "sync", "--all", "--check", "--schemas", str(folder))
    assert "changed  acme/alpha/text-to-video: price $0.10 per second" in text.stdout
    assert f"removed  {withdrawn}: no longer published" in text.stdout

    # Sync again: only what changed is written; the withdrawn model is kept until --prune.
    synced = cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder))
    assert synced.exit_code == 0
    after = _mtimes(folder)
    rewritten = {name for name in after if after[name] != before.get(name)}
    assert rewritten == {
        "acme/alpha/text-to-video.info.json",
        "acme/beta/image-to-video.json",
        "acme/epsilon/text-to-video.info.json",
        "acme/epsilon/text-to-video.json",
    }
    assert f"{withdrawn}.json" in after and "(kept: --prune deletes it)" in synced.stdout
    pruned = cli_run(emu, "schema", "sync", "--all", "--prune", "--schemas", str(folder))
    assert pruned.exit_code == 0 and "1 removed" in pruned.stdout
    assert not (folder / f"{withdrawn}.json").exists()
    assert not (folder / f"{withdrawn}.info.json").exists()
    assert (
        cli_run(emu, "schema", "sync", "--all", "--check", "--schemas", str(folder)).exit_code == 0
    )


def test_make_generate_re_renders_only_the_changed_model(
    emu: Emulator, catalog: list[dict[str, Any]], catalog_file: Path, tmp_path: Path
) -> None:
    from runcomfy_codegen import generate

    folder, out = tmp_path / "schemas", tmp_path / "generated"
    assert cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder)).exit_code == 0
    generate(folder, out, "catalog_models")
    catalog[2]["base_price_usd"] = 0.05  # a price: the docstrings say it
    publish(catalog_file, catalog)
    assert cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder)).exit_code == 0
    report = generate(folder, out, "catalog_models")
    assert report.written == [
        "catalog_models/acme/gamma/_text_to_image_input.py",
        "catalog_models/acme/gamma/_text_to_image_schema.json",
        "catalog_models/acme/gamma/text_to_image.py",
    ]
    module = (out / "catalog_models" / "acme" / "gamma" / "text_to_image.py").read_text()
    assert "Gamma; categories: featured, image; price: $0.05 per output (list price)." in module


def test_sync_by_id_search_and_category(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    by_id = cli_run(
        emu, "schema", "sync", "acme/beta/image-to-video", "nope/x", "--schemas", str(folder)
    )
    assert by_id.exit_code == 0, by_id.output
    assert "added    acme/beta/image-to-video" in by_id.stdout
    assert "unusable nope/x: not published" in by_id.stdout
    by_category = cli_run(emu, "schema", "sync", "--category", "image", "--schemas", str(folder))
    assert "added    acme/gamma/text-to-image" in by_category.stdout
    assert "1 added, 0 unchanged" in by_category.stdout  # beta is not an image model: not removed
    assert cli_run(emu, "schema", "sync", "--schemas", str(folder)).exit_code == 2
    mixed = cli_run(emu, "schema", "sync", "a/b", "--all", "--schemas", str(folder))
    assert mixed.exit_code == 2 and "not both" in mixed.stderr


def test_unusable_schemas_are_reported_and_skipped(
    emu: Emulator, catalog: list[dict[str, Any]], catalog_file: Path, tmp_path: Path
) -> None:
    catalog[0]["input_schema"] = {"type": "object", "properties": {"x": {"type": "nonsense"}}}
    catalog[1]["model_id"] = "acme/beta/notes.info"  # its file would read as a sidecar
    catalog[2]["input_schema"] = "not an object"
    publish(catalog_file, catalog)
    folder = tmp_path / "s"
    result = cli_run(emu, "schema", "sync", "--all", "--json", "--schemas", str(folder))
    assert result.exit_code == 0
    unusable = {e["model_id"]: e["details"][0] for e in json.loads(result.stdout)["unusable"]}
    assert "type 'nonsense' is not JSON Schema" in unusable["acme/alpha/text-to-video"]
    assert "read as another file" in unusable["acme/beta/notes.info"]
    assert unusable["acme/gamma/text-to-image"] == "the catalog gave no input_schema object"
    assert sorted(p.name for p in folder.rglob("*.json")) == [
        "text-to-video.info.json",
        "text-to-video.json",
    ]  # only delta was written


def test_prune_spares_derived_schemas_other_folders_and_the_bundle(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, elsewhere = tmp_path / "s", tmp_path / "other"
    assert cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder)).exit_code == 0
    derived = folder / "deployments" / "mine.json"
    derived.parent.mkdir()
    derived.write_text(json.dumps(_schema()))
    derived.with_name("mine.info.json").write_text(
        json.dumps({"model_id": "deployments/mine", "kind": "deployment", "deployment": {}})
    )
    (elsewhere / "acme").mkdir(parents=True)
    (elsewhere / "acme" / "gone.json").write_text(json.dumps(_schema()))
    stale = folder / "acme" / "gone.json"
    stale.write_text(json.dumps(_schema()))
    env_result = CliRunner().invoke(
        cli,
        ["schema", "sync", "--all", "--prune", "--schemas", str(folder)],
        env={
            "RUNCOMFY_API_KEY": emu.api_key,
            "RUNCOMFY_BASE_URL": emu.base_url,
            "RUNCOMFY_SCHEMA_PATH": str(elsewhere),
        },
    )
    assert env_result.exit_code == 0, env_result.output
    assert "removed  acme/gone: no longer published (deleted)" in env_result.stdout
    assert not stale.exists() and derived.is_file()
    assert (elsewhere / "acme" / "gone.json").is_file()
    # The bundled folder is a scratch copy here: if the guard ever failed, the test would prune
    # the copy, never the checkout's schemas/.
    bundle = tmp_path / "bundle"
    shutil.copytree(SEED.parent.parent, bundle)
    before = sorted(bundle.rglob("*"))
    monkeypatch.setattr("runcomfy_client._sync.bundled_schema_dir", lambda: bundle)
    bundled = cli_run(emu, "schema", "sync", "--all", "--prune", "--schemas", str(bundle))
    assert bundled.exit_code != 0 and "bundled schema folder" in bundled.output
    assert sorted(bundle.rglob("*")) == before


def test_an_interrupted_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runcomfy_client import _schema_store

    path = tmp_path / "m.json"
    path.write_text("old\n")

    def crash(self: Path, target: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _schema_store.write_text(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["m.json"]


# -- what the sidecar feeds: describe, run --help ------------------------------------------------


def test_describe_and_run_help_show_the_price(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    assert cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder)).exit_code == 0
    described = cli_run(emu, "--schemas", str(folder), "describe", "acme/beta/image-to-video")
    assert "name: Beta" in described.stdout
    assert "categories: featured, video" in described.stdout
    assert "price: $0.50 per output (list price)" in described.stdout
    assert "makes: video, answered as 'video' (its catalog record says 'video')" in described.stdout
    helped = cli_run(emu, "--schemas", str(folder), "run", "acme/alpha/text-to-video", "--help")
    assert "Price: $0.10 per second (list price)." in helped.stdout
    bare = cli_run(emu, "describe", "community/wan-2-2/fun-inpaint")
    assert "price: unknown (no catalog record; `schema sync` fetches it)" in bare.stdout


def test_models_remote_shows_prices_and_local_copies(emu: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    cli_run(emu, "schema", "sync", "acme/alpha/text-to-video", "--schemas", str(folder))
    (folder / "acme" / "alpha" / "text-to-video.json").write_text(json.dumps({"type": "object"}))
    cli_run(emu, "schema", "sync", "acme/gamma/text-to-image", "--schemas", str(folder))
    listed = cli_run(emu, "--schemas", str(folder), "models", "--remote", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["model_id"]: row for row in json.loads(listed.stdout)}
    assert rows["acme/alpha/text-to-video"]["local"] == "differs"
    assert rows["acme/gamma/text-to-image"]["local"] == "same"
    assert rows["acme/beta/image-to-video"]["local"] is None
    assert rows["acme/beta/image-to-video"]["price"] == "$0.50 per output"
    table = cli_run(emu, "models", "--remote", "--search", "delta")
    assert "other/delta/text-to-video" in table.stdout and "unknown" in table.stdout
    assert "acme" not in table.stdout
    assert cli_run(emu, "categories").stdout.split() == ["featured", "image", "video"]
    two = cli_run(emu, "models", "--remote", "--limit", "2", "--kind", "model", "--json")
    assert [row["model_id"] for row in json.loads(two.stdout)] == [
        "acme/alpha/text-to-video",
        "acme/beta/image-to-video",
    ]
    featured = cli_run(emu, "models", "--remote", "--category", "image", "--json")
    assert [row["model_id"] for row in json.loads(featured.stdout)] == ["acme/gamma/text-to-image"]
    assert cli_run(emu, "models", "--search", "x").exit_code == 2  # a filter needs --remote


def test_check_on_500_models_names_exactly_the_3_that_changed(tmp_path: Path) -> None:
    records = [record(f"vendor-{n % 9}/model-{n}/text-to-video") for n in range(500)]
    for n, item in enumerate(records):
        item["input_schema"] = _schema(*(f"extra_{n % 7}",))
    path, folder = tmp_path / "catalog.json", tmp_path / "schemas"
    publish(path, records)
    with Emulator(catalog_file=path, render=False) as emu:
        first = cli_run(emu, "schema", "sync", "--all", "--schemas", str(folder))
        assert first.exit_code == 0 and "500 added" in first.stdout
        changed = [records[n]["model_id"] for n in (3, 250, 499)]
        records[3]["base_price_usd"] = 0.2
        records[250]["input_schema"] = _schema("extra_0", "seed")
        records[499]["display_name"] = "Renamed"
        publish(path, records)
        checked = cli_run(emu, "schema", "sync", "--all", "--check", "--schemas", str(folder))
    assert checked.exit_code == 1
    named = [
        line.split()[1].rstrip(":")
        for line in checked.stdout.splitlines()
        if line[:8] == "changed "
    ]
    assert sorted(named) == sorted(changed)
    assert "500 models: 3 changed, 497 unchanged; nothing written (--check)" in checked.stdout


def test_the_emulator_command_serves_a_catalog_file_and_a_balance(catalog_file: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCOMFY_")}
    command = [sys.executable, "-m", "runcomfy_client.cli", "emulator", "--no-render"]
    proc = subprocess.Popen(
        [*command, "--catalog", str(catalog_file), "--balance", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("listening on ")
        with Client(base_url=base, api_key="emulator-key") as client:
            listed = [info.model_id for info in client.catalog()]
            assert listed == [r["model_id"] for r in json.loads(catalog_file.read_text())]
            assert "community/wan-2-2/fun-inpaint" not in listed  # the file is the catalog
        headers = {"Authorization": "Bearer emulator-key"}
        refused = httpx.post(
            f"{base}/v1/models/acme/alpha/text-to-video", json={"prompt": "x"}, headers=headers
        )
        assert refused.status_code == 402 and refused.json()["error_code"] == 400002
    finally:
        proc.terminate()
        proc.wait(10)
    not_a_list = catalog_file.with_name("broken.json")
    not_a_list.write_text('{"models": []}')
    broken = CliRunner().invoke(cli, ["emulator", "--catalog", str(not_a_list)])
    assert broken.exit_code == 2 and "a JSON list of model records is expected" in broken.output
