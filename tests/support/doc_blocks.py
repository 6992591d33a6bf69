"""The code blocks of the README and of the documentation site, and how the
tests run each one (the convention is in docs/development.md, "Code blocks
in the docs").

A fenced block runs in the tests unless an HTML comment just before it (a
blank line may separate them) says otherwise:

- ``<!-- docs-test: skip (why) -->``: shown, never run; the reason is required;
- ``<!-- docs-test: slow -->``: run behind the ``slow`` marker (training runs).

An unmarked block must be Python and take seconds: the e2e tier runs it
(tests/e2e/test_docs_code.py). A ``slow`` block is Python or a
shell script (``bash``/``sh``), run in tests/e2e/test_docs_code_slow.py.
Every block runs on its own, in a fresh namespace or shell, in a temporary
directory where ``experiments`` and ``tests`` point to the repository's.
"""

import contextlib
import copy
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
MODE = re.compile(r"^(slow)$|^skip \((.+)\)$")
PYTHON = {"python", "py"}
SHELL = {"bash", "sh"}


@dataclass(frozen=True)
class Block:
    path: str  # relative to the root
    line: int  # of the opening fence, from 1
    lang: str
    code: str
    marker: str | None  # the text of the docs-test comment, if any

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def mode(self) -> str:
        """ "run" (default tier), "slow" or "skip"."""
        if self.marker is None:
            return "run"
        return "slow" if self.marker == "slow" else "skip"


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def read_blocks(path: Path, root: Path = ROOT) -> tuple[list[Block], list[str]]:
    """The fenced blocks of one Markdown file, and what breaks the
    convention in it (one line each)."""
    name = path.relative_to(root).as_posix()
    blocks, problems = [], []
    pending = None  # (line, text) of a marker waiting for its block
    lines = path.read_text().split("\n")
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        fence = FENCE.match(stripped)
        marker = MARKER.match(stripped)
        if marker:
            if pending:
                problems.append(f"{name}:{pending[0]}: marker without a block")
            pending = (i + 1, marker.group(1))
        elif fence:
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(
                fence.group(1)
            ):
                end += 1
            code = "\n".join(lines[i + 1 : end]) + "\n"
            text = pending[1] if pending else None
            blocks.append(Block(name, i + 1, fence.group(2).lower(), code, text))
            pending = None
            i = end
        elif stripped and pending:
            problems.append(f"{name}:{pending[0]}: marker without a block")
            pending = None
        i += 1
    if pending:
        problems.append(f"{name}:{pending[0]}: marker without a block")
    return blocks, problems + [p for b in blocks if (p := convention_problem(b))]


def convention_problem(block: Block) -> str | None:
    """Why a block breaks the convention, or None."""
    if block.marker is not None and not MODE.match(block.marker):
        return (
            f"{block.id}: unknown marker {block.marker!r} (use 'slow' or 'skip (why)')"
        )
    if block.mode == "run" and block.lang not in PYTHON:
        return (
            f"{block.id}: a {block.lang or 'plain'} block runs only if marked "
            "slow, else mark it 'skip (why)'"
        )
    if block.mode == "slow" and block.lang not in PYTHON | SHELL:
        return f"{block.id}: only Python and shell blocks can run"
    return None


def all_blocks(root: Path = ROOT) -> tuple[list[Block], list[str]]:
    blocks, problems = [], []
    for path in doc_files(root):
        found, wrong = read_blocks(path, root)
        blocks += found
        problems += wrong
    return blocks, problems


def workdir(tmp_path: Path) -> Path:
    """A directory to run a block in, where the repository's
    ``experiments`` and ``tests`` are at hand as in a checkout."""
    for name in ("experiments", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@contextlib.contextmanager
def registries_restored():
    """The registries a block may add to (algorithms and their agent
    classes, envs with Gymnasium's, problems) as they were before it, so
    one block's names do not reach other tests."""
    import gymnasium as gym

    from pes_rl import problems
    from pes_rl.agents import es_agent
    from pes_rl.core import algorithms
    from pes_rl.envs import registry

    tables = [
        algorithms.REGISTRY,
        es_agent._CLASSES,
        registry._CUSTOM,
        problems._REGISTRY,
        gym.envs.registry,
    ]
    saved = [copy.copy(table) for table in tables]
    try:
        yield
    finally:
        for table, before in zip(tables, saved, strict=True):
            table.clear()
            table.update(before)


def run_python(block: Block, cwd: Path) -> None:
    """Executes the block in a fresh namespace with ``cwd`` as the working
    directory; whatever it raises propagates."""
    before = Path.cwd()
    os.chdir(cwd)
    try:
        exec(compile(block.code, block.id, "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(before)


def run_shell(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    """Runs the block with ``bash -e`` (every command must succeed), with
    this interpreter's ``python`` first on the PATH."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
