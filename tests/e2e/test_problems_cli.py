"""A user's Problem trains from the command line, in a subprocess that finds
it on PYTHONPATH alone."""

import json
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def test_a_users_problem_trains_from_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--problem", "custom_problem:make"]
        + ["--num-particles", "16", "--truncation-length", "5", "--sigma", "0.3"]
        + ["--learning-rate", "0.05", "--optimizer", "adam"]
        + ["--total-steps", "20000", "--eval-every", "5000", "--no-progress"]
        + ["--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(SUPPORT), "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert "PES on NoisyRegression (jax backend" in out.stderr
    lines = [
        json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert (
        lines[-1]["env_steps"] >= 20000
        and lines[-1]["eval_return"] > lines[0]["eval_return"]
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["problem"] == "custom_problem:make"
