"""The train command: a smoke run in a subprocess, and bad input."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from spaces_envs import SequenceObservations

from pes_rl.envs import LinearQuadraticEnv
from pes_rl.train import main

TESTS = Path(__file__).parent
gym.register("VaryingLength-v0", entry_point=SequenceObservations, max_episode_steps=10)


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
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


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "no_such_env"], "unknown gymnasium environment"),
        (["--num-particles", "7"], "even"),
        (["--num-particles", "0"], "positive integer"),
        (["--sigma", "0"], "sigma"),
        (["--sigma", "-1"], "sigma"),
        (["--truncation-length", "0"], "truncation_length"),
        (["--horizon", "0"], "horizon"),
        (["--horizon", "ten"], "invalid int"),
        (["--algo", "ppo"], "invalid choice"),
        (["--policy", "cnn"], "invalid choice"),
        (["--optimizer", "rmsprop"], "invalid choice"),
        (["--backend", "brax", "--env", "nosuch"], "unknown brax environment"),
        (["--env", "nosuchmodule:Env-v0"], "cannot import module"),
        (["--env", "VaryingLength-v0"], "observations that flatten into a vector"),
        (["--env", "Blackjack-v1"], "no episode limit: pass horizon"),
        (["--seed", "-1"], "seed must be a non-negative integer"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert main([*args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert not run_dir.exists()


def test_run_dir_that_is_a_file_or_holds_results(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("keep me")
    assert main(["--env", "linear_quadratic", "--run-dir", str(path)]) == 2
    assert path.read_text() == "keep me"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "metrics.jsonl").write_text("{}\n")
    assert main(["--env", "linear_quadratic", "--run-dir", str(tmp_path / "full")]) == 2
    assert (tmp_path / "full" / "metrics.jsonl").read_text() == "{}\n"
    assert "not a directory" in capsys.readouterr().err


class BlowsUp(LinearQuadraticEnv):
    """Finite for a while, then NaN observations."""

    steps_taken = 0

    def step(self, action):
        BlowsUp.steps_taken += 1
        obs, reward, term, trunc, info = super().step(action)
        if BlowsUp.steps_taken > 4000:
            obs = obs * np.nan
        return obs, reward, term, trunc, info


def test_non_finite_observation_stops_and_keeps_the_checkpoint(tmp_path, capsys):
    gym.register(id="BlowsUp-v0", entry_point=BlowsUp, max_episode_steps=20)
    run_dir = tmp_path / "run"
    code = main(
        [
            "--env",
            "BlowsUp-v0",
            "--truncation-length",
            "5",
            "--no-progress",
            "--eval-every",
            "1000",
            "--run-dir",
            str(run_dir),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "non-finite" in err and "particle" in err and "step" in err
    from pes_rl.agents import PES
    from pes_rl.checkpoints import checkpoint_files

    restored = PES.load(checkpoint_files(run_dir)[0])
    assert np.isfinite(np.asarray(restored.theta)).all()
    assert 0 < restored.env_steps <= 4000


def test_flags_override_presets_and_a_given_sigma_stays_constant():
    from pes_rl.train import parse_config

    preset = parse_config(["--env", "swimmer"])
    assert preset.sigma_final is not None and preset.optimizer == "adam"
    config = parse_config(
        ["--env", "swimmer", "--sigma", "0.2", "--num-particles", "8"]
    )
    assert (config.sigma, config.sigma_final, config.num_particles) == (0.2, None, 8)
    assert config.learning_rate_final == preset.learning_rate_final


def test_unwritable_run_dir_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["--env", "linear_quadratic", "--run-dir", str(blocker / "sub")]
    assert main(args) == 2
    assert "cannot create run directory" in capsys.readouterr().err


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
