"""Whole training runs through the train command's ``main``, in-process:
what the first lines say, warnings, a run stopped by a non-finite
observation, and envs from elsewhere: one that cannot be saved, one with
Dict observations (its bad-input checks, which train nothing, are in
unit/test_cli.py and unit/test_new_user.py)."""

import gymnasium as gym
import numpy as np
import ray_envs  # noqa: F401  registers LockedToy-v0 (a lock: no copies)
import spaces_envs  # noqa: F401  registers DictCue-v0

from pes_rl.cli.train import main
from pes_rl.envs import LinearQuadraticEnv
from pes_rl.runs.checkpoints import checkpoint_files


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

    restored = PES.load(checkpoint_files(run_dir)[0])
    assert np.isfinite(np.asarray(restored.theta)).all()
    assert 0 < restored.env_steps <= 4000


def test_the_first_line_names_the_preset(tmp_path, capsys):
    args = ["--env", "Swimmer-v5", "--total-steps", "1", "--no-stagger"]
    args += ["--eval-episodes", "1"]
    assert main([*args, "--run-dir", str(tmp_path / "a")]) == 0
    assert "swimmer preset" in capsys.readouterr().err.splitlines()[0]
    args = ["--env", "InvertedPendulum-v5", "--total-steps", "1", "--no-stagger"]
    args += ["--eval-episodes", "1"]
    assert main([*args, "--run-dir", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "generic defaults" in err[0]
    assert any("--total-steps 1 buys about 1 updates" in x for x in err), err


def test_surprising_flags_get_a_warning(tmp_path, capsys):
    args = ["--env", "swimmer", "--sigma", "0.2", "--total-steps", "2000"]
    assert main([*args, "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if "warning:" in x]
    assert any("replaces the swimmer preset's decay 0.3 -> 0.05" in x for x in warnings)
    assert any("warm-up alone takes 9000 env steps" in x for x in warnings)


def test_cli_checkpoints_and_resumes_an_unsavable_env(tmp_path, capsys):
    run_dir = tmp_path / "run"
    flags = ["--env", "LockedToy-v0", "--eval-every", "1000", "--no-progress"]
    assert main([*flags, "--total-steps", "3000", "--run-dir", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert err.count("cannot be saved") == 1, err  # one line for several checkpoints
    assert checkpoint_files(run_dir)
    assert main(["--resume", str(run_dir), "--total-steps", "5000"]) == 0
    assert "resuming" in capsys.readouterr().err
    tes = ["--algo", "tes", "--run-dir", str(tmp_path / "tes")]
    assert main([*flags, *tes]) == 2
    assert "--algo pes" in capsys.readouterr().err
    assert not (tmp_path / "tes").exists()


def test_cli_says_it_flattens_in_its_first_line(tmp_path, capsys):
    args = ["--env", "DictCue-v0", "--total-steps", "400", "--no-progress"]
    assert main([*args, "--run-dir", str(tmp_path / "run")]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert "Dict observations flattened" in first, first
