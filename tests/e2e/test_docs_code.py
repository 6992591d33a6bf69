"""Every unmarked code block of the README and the docs site runs (the
convention: tests/support/doc_blocks.py and docs/development.md)."""

import pytest
from doc_blocks import PYTHON, all_blocks, registries_restored, run_python, workdir

FAST = [b for b in all_blocks()[0] if b.mode == "run" and b.lang in PYTHON]


@pytest.mark.parametrize("block", FAST, ids=[block.id for block in FAST])
def test_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    with registries_restored():
        run_python(block, workdir(tmp_path))
