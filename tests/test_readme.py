"""README.md runs as written: every console and python block, in order, offline.

The README is read as a script (conventions in ``tests/readme_blocks.py``). Its blocks run in
one bash session, as a reader pasting them into one terminal would, in a scratch copy of the
repository (so ``out/`` and ``schemas/`` edits never touch the real one), against the one
emulator the README itself starts. What differs from a reader's terminal, and why:

- the emulator's port 8765 becomes a free port (runs on one machine must not collide); the
  output is compared with 8765 put back;
- ``.venv`` links to the parts of the environment running this test, with an install stamp
  newer than ``pyproject.toml``, so ``make`` verbs never reinstall (into the real one);
- ``runcomfy-client`` is not on PATH until the README activates the environment, HOME is a
  scratch folder, and no RUNCOMFY_* variable leaks in from the caller;
- PYTHONPATH puts the copy's ``src/``, ``codegen/`` and ``generated/`` first, as a clone's
  editable install imports its own (so its ``schemas/`` is the bundled folder);
- output is unbuffered, so stdout and stderr interleave as they do on a terminal.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .readme_blocks import Block, Command, commands, match_output, parse_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PORT = "8765"
COMMAND_TIMEOUT = 180.0

# Blocks that cannot run here, by their first line (without its comment). Keep this short: each needs a reason the
# README's marker states (real credentials, or the suite that runs this very test).
SKIPPED = {
    "$ pip install '.[s3]'",
    "$ make test",
    "$ export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...",
    "# examples/s3_upload.py",
}
RUN_LANGS = {"console", "python"}
SHOWN_LANGS = {"", "text", "json"}  # displayed, never run


def _blocks() -> list[Block]:
    return parse_blocks(README.read_text(encoding="utf-8"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNCOMFY_", "VIRTUAL_ENV"))}
    # A reader's PATH does not have the project's environment until they activate it.
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    env["PATH"] = os.pathsep.join(p for p in path if not (Path(p) / "runcomfy-client").exists())
    env.update(
        HOME=str(scratch / "home"),
        # A clone's editable install imports its own src/, codegen/ and generated/ (and so
        # bundles its own schemas/): the copy's come first on the path the same way.
        PYTHONPATH=os.pathsep.join(
            str(scratch / "repo" / d) for d in ("src", "codegen", "generated")
        ),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave as on a terminal
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="100",
    )
    # Nothing of the make or pytest running this test (a reader's terminal has neither).
    for name in ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    return env


def _scratch_copy(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "out", ".*_cache")
    for name in ("examples", "schemas", "src", "generated", "codegen", "tests", "docs", "bench"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    # Every file at the top (README, Makefile, the pages the README links to ...): a file added
    # there later is in the copy too, as it is in a user's clone.
    for path in ROOT.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, target / path.name)
    # .venv: the running environment's parts, linked, with its own install stamp made newer
    # than the copied pyproject.toml, so no make verb ever reinstalls (into the real one).
    venv = Path(sys.prefix).resolve()
    (target / ".venv").mkdir()
    for entry in venv.iterdir():
        if entry.name != ".installed":
            (target / ".venv" / entry.name).symlink_to(entry, entry.is_dir())
    os.utime(target / "pyproject.toml", (0, 0))
    (target / ".venv" / ".installed").touch()


class Session:
    """One bash process fed commands one at a time; each answers with its output and status."""

    MARK = "__readme_test_status__"

    def __init__(self, cwd: Path, env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._buffer = b""
        self.run("exec 2>&1")

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        text = command.replace(PORT, str(self.port))
        # Braces keep `export`, `source` and variables in this shell; /dev/null keeps the
        # command from reading the script that follows it.
        script = f"{{ {text}\n}} </dev/null\nprintf '%s %s\\n' {self.MARK} \"$?\"\n"
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        pattern = re.compile(rb"__readme_test_status__ (\d+)\n")
        while True:
            found = pattern.search(self._buffer)
            if found is not None:
                out = self._buffer[: found.start()].decode(errors="replace")
                self._buffer = self._buffer[found.end() :]
                return out.replace(f":{self.port}", f":{PORT}"), int(found[1])
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no answer within {timeout:g}s; output so far:\n{out_so_far(self._buffer)}"
                )
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"the shell ended; output:\n{out_so_far(self._buffer)}")
                self._buffer += chunk

    def close(self) -> None:
        _stop(self.proc)


def out_so_far(buffer: bytes) -> str:
    return buffer.decode(errors="replace")[-4000:]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Background:
    """A block the reader runs in a second terminal: started, awaited, stopped at the end."""

    def __init__(self, block: Block, cwd: Path, env: dict[str, str], port: int) -> None:
        self.block = block
        script = "\n".join(c.text for c in commands(block)).replace(PORT, str(port))
        self.port = port
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", script],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        expected = [line for c in commands(self.block) for line in c.expected]
        assert self.proc.stdout is not None
        buffer = b""
        deadline = time.monotonic() + timeout
        while True:
            lines = buffer.decode(errors="replace").replace(f":{self.port}", f":{PORT}")
            if match_output(expected, lines.splitlines()):
                return
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(
                    f"README.md:{self.block.line}: the background block did not show "
                    f"{expected!r}; it printed:\n{lines}"
                )
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                buffer += os.read(self.proc.stdout.fileno(), 65536)

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (Path(sys.prefix) / "bin" / "runcomfy-client").exists():
        pytest.skip("needs the project's own environment (make install, then make test)")
    folder = tmp_path_factory.mktemp("readme")
    _scratch_copy(folder / "repo")
    (folder / "home").mkdir()
    return folder


@pytest.fixture(scope="module")
def session(scratch: Path) -> Iterator[tuple[Session, list[Background]]]:
    port = _free_port()
    env = _environment(scratch)
    shell = Session(scratch / "repo", env, port)
    servers: list[Background] = []
    installed_from = _install_location()
    try:
        yield shell, servers
    finally:
        shell.close()
        for server in servers:
            server.stop()
    assert _install_location() == installed_from, "the README run reinstalled the package"


def _install_location() -> str | None:
    from importlib.metadata import distribution

    return distribution("runcomfy-client").read_text("direct_url.json")


def _describe(command: Command, status: int, output: str) -> str:
    shown = "\n".join(command.expected) or "(nothing shown)"
    return (
        f"README.md:{command.line}: $ {command.text}\n"
        f"exit status {status} (README: {command.status})\n"
        f"--- README shows:\n{shown}\n--- it printed:\n{output}"
    )


def _run_command(shell: Session, command: Command) -> None:
    output, status = shell.run(command.text)
    lines = output.splitlines()
    assert status == command.status, _describe(command, status, output)
    if command.expected and any(line.strip() for line in command.expected):
        assert match_output(command.expected, lines), _describe(command, status, output)


def _run_python(shell: Session, block: Block, repo: Path) -> None:
    name = block.first_line.removeprefix("# ").strip()
    runner = f'"{sys.executable}"'
    if Path(name).name.startswith("test_"):
        runner += " -m pytest -q -p no:cacheprovider"
    command = Command(f"{runner} {name}", block.line)
    if block.output is not None:
        command.expected = block.output.text.split("\n")
    _run_command(shell, command)


def test_every_block_is_runnable_or_marked() -> None:
    blocks = _blocks()
    for block in blocks:
        where = f"README.md:{block.line}"
        assert block.lang in RUN_LANGS | SHOWN_LANGS, (
            f"{where}: a ```{block.lang} block cannot be run; use console (with $ prompts) or "
            "python (a file under examples/)"
        )
        if block.lang == "python":
            name = block.first_line.removeprefix("# ").strip()
            assert block.first_line.startswith("# examples/") and name.endswith(".py"), (
                f"{where}: a python block starts with `# examples/NAME.py`, the file it is"
            )
            assert (ROOT / name).read_text(encoding="utf-8") == block.text + "\n", (
                f"{where}: {name} must hold exactly this block (after editing the README: "
                "python -m tests.readme_blocks)"
            )
        if block.lang == "console":
            assert commands(block), f"{where}: a console block without a `$ ` command"
    skipped = {b.first_line.split("  #")[0].rstrip() for b in blocks if b.marker == "skip"}
    assert skipped == SKIPPED, "the README's skipped blocks changed; keep the list short"
    assert all(b.reason for b in blocks if b.marker == "skip"), "every skip says why"
    assert {b.marker for b in blocks} <= {None, "skip", "background"}


def test_examples_are_all_in_the_readme() -> None:
    shown = {b.first_line.removeprefix("# ") for b in _blocks() if b.lang == "python"}
    for path in sorted((ROOT / "examples").glob("*.py")):
        relative = f"examples/{path.name}"
        head = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if head == f"# {relative}":
            assert relative in shown, f"{relative} says it is a README example but is not in it"


@pytest.mark.slow  # a minute or more: `make test-slow` (and CI) runs it
def test_readme_runs_as_written(session: tuple[Session, list[Background]], scratch: Path) -> None:
    shell, servers = session
    repo = scratch / "repo"
    ran = 0
    for block in _blocks():
        if block.marker == "skip" or block.lang not in RUN_LANGS:
            continue
        if block.marker == "background":
            server = Background(block, repo, _environment(scratch), shell.port)
            servers.append(server)
            server.wait_ready()
        elif block.lang == "console":
            for command in commands(block):
                _run_command(shell, command)
        else:
            _run_python(shell, block, repo)
        ran += 1
    assert ran >= 10
