"""mkdocs hooks: the guide is README.md, split into pages at build time (never a second copy).

Each ``##`` section of the README becomes a page, and each ``###`` section under "A short
tour" one more; the navigation follows the README's order, then the per-model pages (written
by ``make generate``), the API reference and the changelog. Links between sections become
links between pages; files the README links to (CHANGELOG.md, LICENSE, bench results and plot)
are added to the site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
TOUR = "A short tour"
# Files the README links to, and where they appear in the site.
LINKED = {
    "CHANGELOG.md": "changelog.md",
    "ARCHITECTURE.md": "architecture.md",
    "LICENSE": "license.md",
    "bench/results.md": "bench/results.md",
    "bench/soak-results.md": "bench/soak-results.md",
    "bench/polling.png": "bench/polling.png",
}


@dataclass
class Section:
    title: str
    path: str
    lines: list[str] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)


def _slug(title: str) -> str:
    """The anchor GitHub and mkdocs' toc give a heading."""
    text = re.sub(r"[^\w\s-]", "", title.lower()).strip()
    return re.sub(r"[\s]+", "-", text)


def _sections(readme: str) -> list[Section]:
    """The README cut at its ``##`` headings (and ``###`` ones under the tour), in order."""
    top = Section("Home", "index.md")
    pages = [top]
    current = top
    parent: Section | None = None
    fenced = False
    for line in readme.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"^(#{2,3}) (.+)$", line)
        if heading and heading[1] == "##":
            current = Section(heading[2], f"{_slug(heading[2])}.md")
            pages.append(current)
            parent = current if heading[2] == TOUR else None
            current.lines.append(f"# {heading[2]}")
            continue
        if heading and parent is not None:
            current = Section(heading[2], f"{_slug(parent.title)}/{_slug(heading[2])}.md")
            parent.children.append(current)
            current.lines.append(f"# {heading[2]}")
            continue
        current.lines.append(line)
    return pages


def _anchors(pages: list[Section]) -> dict[str, str]:
    """Heading anchor -> the page it is on."""
    found: dict[str, str] = {}
    for page in _walk(pages):
        for line in page.lines:
            heading = re.match(r"^#{1,6} (.+)$", line)
            if heading:
                found.setdefault(_slug(heading[1]), page.path)
    return found


def _walk(pages: list[Section]) -> list[Section]:
    return [p for page in pages for p in (page, *page.children)]


def _relative(target: str, source: str) -> str:
    depth = source.count("/")
    return "../" * depth + target


def _text(page: Section, anchors: dict[str, str]) -> str:
    text = "\n".join(page.lines) + "\n"

    def link(match: re.Match[str]) -> str:
        target = match[2]
        if target.startswith("#"):
            where = anchors.get(target[1:], page.path)
            if where == page.path:
                return match[0]
            return f"{match[1]}({_relative(where, page.path)}{target})"
        if target in LINKED:
            return f"{match[1]}({_relative(LINKED[target], page.path)})"
        return match[0]

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", link, text)


def _readme_pages() -> list[Section]:
    return _sections((ROOT / "README.md").read_text(encoding="utf-8"))


def on_config(config: Any) -> Any:
    nav: list[Any] = []
    for page in _readme_pages():
        if page.children:
            nav.append({page.title: [page.path] + [{c.title: c.path} for c in page.children]})
        else:
            nav.append({page.title: page.path})
    models = sorted((ROOT / "docs" / "models").rglob("*.md"))
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in models if p.name != "index.md"]
    nav += [
        {"Models": ["models/index.md"] + [{p[len("models/") : -3]: p} for p in pages]},
        {"API reference": "reference.md"},
        {"Changelog": "changelog.md"},
        {"License": "license.md"},
    ]
    config["nav"] = nav
    return config


def on_files(files: Files, config: Any) -> Files:
    pages = _readme_pages()
    anchors = _anchors(pages)
    for page in _walk(pages):
        files.append(File.generated(config, page.path, content=_text(page, anchors)))
    for source, target in LINKED.items():
        path = ROOT / source
        if source == "LICENSE":
            content: str | bytes = (
                "# License\n\n```text\n" + path.read_text(encoding="utf-8") + "```\n"
            )
        elif source.endswith(".md"):
            content = path.read_text(encoding="utf-8")
        else:
            content = path.read_bytes()
        files.append(File.generated(config, target, content=content))
    return files
