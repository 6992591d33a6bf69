"""Run an ``experiments/`` script's ``--quick`` mode as a user would: in a
scratch working directory, with its default output. The committed results
in ``experiments/results`` must come out unchanged."""

import hashlib
import subprocess
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
RESULTS = EXPERIMENTS / "results"


def fingerprint() -> dict[str, str]:
    return {
        str(p.relative_to(RESULTS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(RESULTS.rglob("*"))
        if p.is_file()
    }


def run_quick(script: str, cwd: Path, name: str, *extra: str) -> tuple[str, Path]:
    """(stdout, the directory it wrote) of ``script --quick`` run in ``cwd``."""
    before = fingerprint()
    result = subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), "--quick", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert fingerprint() == before, f"{script} --quick changed {RESULTS}"
    return result.stdout, cwd / "runs" / "quick" / name
