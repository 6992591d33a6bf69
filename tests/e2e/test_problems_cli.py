"""Problems from the command line: a user's, in a subprocess that finds it
on PYTHONPATH alone; the digits problem; resume and evaluate (in-process)."""

import json
import subprocess
import sys
from pathlib import Path

from pes_rl.cli.train import main
from pes_rl.problems import digits

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


def test_the_cli_trains_a_digits_problem(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--problem", "lr_schedule_digits", "--total-steps", "1600"]
    args += ["--eval-every", "800", "--eval-episodes", "1", "--run-dir", str(run_dir)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "PES on LRScheduleDigits" in err and "step/s" in err  # the progress bar
    lines = [
        json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert lines[-1]["env_steps"] >= 1600
    assert all(-digits.WORST_LOSS <= x["eval_return"] < 0 for x in lines)
    assert any((run_dir / "checkpoints").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "lr_schedule_digits" and config["num_particles"] == 8


def test_a_problem_run_resumes(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    args = ["--problem", "lr_schedule_toy", "--eval-every", "20000", "--no-progress"]
    assert main([*args, "--total-steps", "40000", "--run-dir", run_dir]) == 0
    assert main(["--resume", run_dir, "--total-steps", "80000"]) == 0
    lines = [
        json.loads(x)
        for x in Path(run_dir, "metrics.jsonl").read_text().split("\n")
        if x
    ]
    steps = [line["env_steps"] for line in lines]
    assert steps == sorted(set(steps)) and steps[-1] >= 80000


def test_evaluate_a_problem_run_and_refuse_its_video(tmp_path, capsys):
    from pes_rl.cli import evaluate

    run_dir = str(tmp_path / "run")
    args = ["--problem", "influence_balancing", "--total-steps", "20000"]
    assert main([*args, "--eval-every", "10000", "--run-dir", run_dir]) == 0
    capsys.readouterr()
    assert evaluate.main([run_dir, "--episodes", "2"]) == 0
    assert "PES on InfluenceBalancing" in capsys.readouterr().out
    assert evaluate.main([run_dir, "--video", str(tmp_path / "x.mp4")]) == 2
    assert "has no video" in capsys.readouterr().err
