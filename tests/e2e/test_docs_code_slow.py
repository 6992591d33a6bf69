"""The code blocks of the README and the docs site marked ``slow``:
training runs, run in full (the convention: tests/support/doc_blocks.py)."""

import pytest
from doc_blocks import (
    PYTHON,
    all_blocks,
    registries_restored,
    run_python,
    run_shell,
    workdir,
)

SLOW = [block for block in all_blocks()[0] if block.mode == "slow"]


@pytest.mark.slow
@pytest.mark.parametrize("block", SLOW, ids=[block.id for block in SLOW])
def test_slow_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    cwd = workdir(tmp_path)
    if block.lang in PYTHON:
        with registries_restored():
            run_python(block, cwd)
    else:
        out = run_shell(block, cwd)
        assert out.returncode == 0, out.stderr[-3000:]
