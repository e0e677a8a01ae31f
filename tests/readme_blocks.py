"""Reading README.md as a script: its fenced blocks, their markers, commands and outputs.

Conventions (the README's authors follow these; ``tests/test_readme.py`` enforces them):

- A ``console`` block is a terminal session. A line starting with ``$ `` is a command (a line
  ending in ``\\`` continues it on the next line); the lines after it, up to the next command,
  are its expected output (stdout and stderr together, as a terminal shows them).
- A command is expected to exit 0, unless a comment on it says ``# exit N``.
- Output is compared line by line after normalising what changes from run to run: request ids
  (32 hex digits), durations (``2.2s``), byte counts (``304,114 bytes``) and runs of spaces. A
  line that is just ``...`` stands for any number of lines; ``...`` inside a line stands for
  any text. A command shown without output lines is checked by its exit status only. Blank
  lines are ignored on both sides.
- A ``python`` block is a file under ``examples/``: its first line is ``# examples/NAME.py``
  and the file holds exactly the block's text. It is run from the repository's root (a file
  named ``test_*.py`` with pytest). A ``text`` block right after it is its expected output.
- ``<!-- readme-test: background -->`` on the line before a console block: a server the reader
  starts in a second terminal. It is started in the background, its output lines are awaited,
  and it is stopped when the README is done.
- ``<!-- readme-test: skip REASON -->``: a block that cannot run offline (real credentials,
  the test suite itself). The test keeps the list of these short and explicit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Block", "Command", "commands", "match_output", "normalise", "parse_blocks"]

_FENCE = re.compile(r"^(?P<indent> {0,3})```(?P<lang>[\w-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>\w+)\s*(?P<reason>.*?)\s*-->\s*$")
_EXIT = re.compile(r"#.*\bexit (?:status )?(?P<code>\d+)\b")


@dataclass
class Block:
    """A fenced block of the README."""

    lang: str
    text: str
    line: int  # the opening fence's line number (1-based)
    marker: str | None = None  # "skip", "background" or None
    reason: str = ""
    output: Block | None = None  # a python block's expected output (the text block after it)

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


@dataclass
class Command:
    """One ``$`` command of a console block, with the output the README shows for it."""

    text: str
    line: int
    expected: list[str] = field(default_factory=list)

    @property
    def status(self) -> int:
        found = _EXIT.search(self.text.rsplit("\n", 1)[-1])
        return int(found["code"]) if found else 0


def parse_blocks(readme: str) -> list[Block]:
    """Every fenced block, in order, with its marker and (for python) its output block."""
    lines = readme.split("\n")
    blocks: list[Block] = []
    i = 0
    previous_end = -1  # index of the last closing fence
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = opening["indent"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].rstrip() != f"{indent}```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"README.md:{start + 1}: this code block is never closed")
        block = Block(opening["lang"], "\n".join(body), start + 1)
        before = start - 1
        while before > previous_end and not lines[before].strip():
            before -= 1
        if before > previous_end:
            marker = _MARKER.match(lines[before].strip())
            if marker is not None:
                block.marker, block.reason = marker["kind"], marker["reason"]
        follows_python = (
            blocks
            and blocks[-1].lang == "python"
            and before == previous_end
            and block.lang == "text"
        )
        if follows_python:
            blocks[-1].output = block
        else:
            blocks.append(block)
        previous_end = i
        i += 1
    return blocks


def commands(block: Block) -> list[Command]:
    """The commands of a console block, each with its expected output lines."""
    found: list[Command] = []
    lines = block.text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        number = block.line + 1 + i
        if line.startswith("$ "):
            text = [line[2:]]
            while text[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                text.append(lines[i])
            found.append(Command("\n".join(text), number))
        elif found:
            found[-1].expected.append(line)
        elif line.strip():
            raise ValueError(f"README.md:{number}: output before any `$ ` command: {line!r}")
        i += 1
    return found


_NORMALISE = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\b\d+(?:\.\d+)?s\b"), "<t>"),
    (re.compile(r"\b\d[\d,]* bytes\b"), "<n> bytes"),
]


def normalise(line: str) -> str:
    """A line with what changes between runs replaced, and spaces collapsed."""
    for pattern, replacement in _NORMALISE:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"\.\.\.|…", normalise(expected))
    return re.compile(".*".join(re.escape(part) for part in parts))


def match_output(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines fit the ``expected`` ones (see the module's conventions)."""
    wanted = [line for line in expected if line.strip()]
    got = [normalise(line) for line in actual if line.strip()]
    patterns = [None if w.strip() in ("...", "…") else _pattern(w) for w in wanted]
    memo: dict[tuple[int, int], bool] = {}

    def fits(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[i, j]
        if i == len(patterns):
            ok = j == len(got)
        elif patterns[i] is None:
            ok = fits(i + 1, j) or (j < len(got) and fits(i, j + 1))
        else:
            pattern = patterns[i]
            assert pattern is not None
            ok = j < len(got) and pattern.fullmatch(got[j]) is not None and fits(i + 1, j + 1)
        memo[i, j] = ok
        return ok

    return fits(0, 0)


def write_examples(readme: str, root: str = ".") -> list[str]:
    """Write every python block of the README to the file its first line names."""
    from pathlib import Path

    written = []
    for block in parse_blocks(readme):
        name = block.first_line.removeprefix("# ").strip()
        if block.lang == "python" and name.startswith("examples/"):
            path = Path(root) / name
            if not path.exists() or path.read_text(encoding="utf-8") != block.text + "\n":
                path.write_text(block.text + "\n", encoding="utf-8")
                written.append(name)
    return written


if __name__ == "__main__":
    # After editing a python block in README.md: python -m tests.readme_blocks
    from pathlib import Path

    for name in write_examples(Path("README.md").read_text(encoding="utf-8")):
        print(f"wrote {name}")
