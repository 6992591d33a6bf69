"""The train command in a subprocess: a smoke run, module env ids, bad input."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    return subprocess.run(
        [sys.executable, "-m", "pes_rl.train", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_cli_smoke_run_writes_a_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "--env",
        "linear_quadratic",
        "--total-steps",
        "3000",
        "--eval-every",
        "1000",
        "--run-dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr
    assert "final eval return" in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "pes" and config["env_id"] == "linear_quadratic"
    lines = [
        json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert len(lines) >= 4
    assert {"env_steps", "seconds", "wall_time", "eval_return"} <= set(lines[0])
    assert lines[0]["wall_time"] <= lines[-1]["wall_time"] <= time.time()
    steps = [line["env_steps"] for line in lines]
    assert steps == sorted(steps) and steps[-1] >= 3000
    assert lines[-1]["eval_return"] > lines[0]["eval_return"]
    assert len(list((run_dir / "checkpoints").glob("ckpt-*.pkl"))) >= 1


def test_cli_module_env_id_form(tmp_path):
    result = run_cli(
        "--env",
        "custom_env_module:CustomLQ-v0",
        "--algo",
        "nres",
        "--truncation-length",
        "5",
        "--total-steps",
        "500",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["horizon"] == 10


def test_bad_input_in_a_subprocess_is_one_line_without_traceback(tmp_path):
    result = run_cli("--env", "swimer", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "did you mean swimmer" in result.stderr
    assert not (tmp_path / "r").exists()


def test_async_envs_with_module_env_id_and_single_eval_episode(tmp_path):
    result = run_cli(
        "--env",
        "custom_env_module:CustomLQ-v0",
        "--async-envs",
        "--truncation-length",
        "5",
        "--total-steps",
        "300",
        "--eval-episodes",
        "1",
        "--no-progress",
        "--run-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 0, result.stderr
