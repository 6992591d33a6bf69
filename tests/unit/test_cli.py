"""The train command in-process: bad input, run directories, presets (its
subprocess runs are in e2e/test_cli_subprocess.py)."""

import gymnasium as gym
import pytest
from spaces_envs import SequenceObservations

from pes_rl.cli.train import main

gym.register("VaryingLength-v0", entry_point=SequenceObservations, max_episode_steps=10)


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


def test_flags_override_presets_and_a_given_sigma_stays_constant():
    from pes_rl.cli.train import parse_config

    preset = parse_config(["--env", "swimmer"])
    assert preset.sigma_final is not None and preset.optimizer == "sgd"
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
