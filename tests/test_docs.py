"""The documentation: a page per bundled model, fresh and true; the guide is the README, split.

(`make docs` itself, mkdocs --strict, runs in `make check`.)
"""

from __future__ import annotations

import ast
import importlib.util
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from runcomfy_client import Registry
from runcomfy_client._model_docs import model_pages, pages_for
from runcomfy_client._registry import bundled_schema_dir
from runcomfy_client.cli._run_cmd import model_command

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "docs" / "models"


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_bundled_model_has_its_page_and_it_is_fresh() -> None:
    pages = pages_for(bundled_schema_dir(), "runcomfy_models")
    registry = Registry(use_env=False)
    for model_id in registry.model_ids():
        assert f"{model_id}.md" in pages
    for relative, text in pages.items():
        path = MODELS / relative
        assert path.is_file(), f"{path} is missing: run make generate"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run make generate"


@pytest.mark.parametrize("model_id", Registry(use_env=False).model_ids())
def test_a_model_page_says_what_the_code_does(model_id: str) -> None:
    model = Registry(use_env=False).get(model_id)
    page = model_pages([model], "runcomfy_models")[f"{model_id}.md"]
    for f in model.fields:
        assert f"`{f.name}` | `{f.key}`" in page, f.key
    assert "6 to 20" in page or model_id.endswith("image-to-video")  # bounds shown
    python = page.split("```python\n", 1)[1].split("```", 1)[0]
    ast.parse(python)  # the example is Python
    assert all(f"{f.name}=" in python for f in model.fields if f.required)
    console = page.split("```console\n", 1)[1].split("```", 1)[0]
    words = shlex.split(console.replace("\\\n", " ").removeprefix("$ "))
    assert words[:3] == ["runcomfy-client", "run", model_id]
    known = {opt for param in model_command(model).params for opt in param.opts}
    flags = [w for w in words[3:] if w.startswith("--")]
    assert flags and set(flags) <= known, set(flags) - known


def test_the_guide_is_the_readme_split_into_pages() -> None:
    hooks = _hooks()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = hooks._walk(hooks._sections(readme))
    titles = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
    assert [p.title for p in pages if "/" not in p.path][1:] == titles
    # Every line of the README is on exactly one page (headings become each page's title).
    kept = [line.lstrip("#").strip() for page in pages for line in page.lines]
    for line in readme.splitlines():
        assert line.lstrip("#").strip() in kept
    assert len(kept) == len(readme.splitlines())


def test_links_between_sections_become_links_between_pages() -> None:
    hooks = _hooks()
    pages = hooks._sections("intro\n## One\nsee [two](#two) and [log](CHANGELOG.md)\n## Two\nx\n")
    text = hooks._text(pages[1], hooks._anchors(pages))
    assert "[two](two.md#two)" in text and "[log](changelog.md)" in text
