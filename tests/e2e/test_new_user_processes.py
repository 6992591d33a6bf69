"""What a new user trips over, in subprocesses: two runs started together
into one directory, and the README's TensorBoard command."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def train(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "pes_rl.train", "--no-progress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_started_together_into_one_directory(tmp_path):
    run_dir = tmp_path / "same"
    flags = ["--env", "linear_quadratic", "--total-steps", "6000"]
    flags += ["--eval-every", "2000", "--run-dir", str(run_dir)]
    processes = {algo: train(*flags, "--algo", algo) for algo in ("pes", "nres")}
    outcomes = {algo: (p.wait(timeout=120), p.communicate()[1]) for algo, p in
                processes.items()}  # fmt: skip
    assert sorted(code for code, _ in outcomes.values()) == [0, 2], outcomes
    winner = next(algo for algo, (code, _) in outcomes.items() if code == 0)
    loser_err = next(err for code, err in outcomes.values() if code == 2)
    last = loser_err.strip().splitlines()[-1]
    assert last.startswith("error: run directory") and (
        "in use by another run" in last or "not empty" in last
    ), loser_err
    # The directory holds the winner's run alone.
    assert json.loads((run_dir / "config.json").read_text())["algo"] == winner
    lines = [
        json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [line["env_steps"] for line in lines]
    assert steps == sorted(set(steps)) and steps[-1] >= 6000


def test_the_readme_tensorboard_command_is_installed():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "tensorboard --logdir runs/" in readme
    command = shutil.which("tensorboard", path=str(Path(sys.executable).parent))
    assert command, "the README's install (.[dev]) should bring tensorboard"
    out = subprocess.run([command, "--version"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
