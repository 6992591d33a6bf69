"""Whole runs on the mujoco backend: the same numbers as on the Gymnasium
backend, exact resume, the CLI's first line, video (its pools, backends and
choice: integration/test_mujoco_backend.py)."""

import numpy as np
import pytest
from mujoco_runs import assert_same_infos, mujoco_agent, updates

from pes_rl.agents import PES, TruncatedES
from pes_rl.cli.train import main
from pes_rl.errors import ConfigError


@pytest.mark.parametrize(
    ("cls", "env", "policy"),
    [
        (PES, "swimmer", "linear"),
        (PES, "hopper", "gru"),
        (TruncatedES, "ant", "linear"),
    ],
)
def test_runs_identically_on_both_backends(cls, env, policy):
    """Staggered warm-up, obs-norm, a recurrent carry, evaluation with fixed
    seeds, truncated ES's copies of one env into all: the same parameters
    and numbers on both backends."""
    runs = []
    for backend in ("gymnasium", "mujoco"):
        agent = mujoco_agent(backend, env, cls, policy=policy)
        try:
            infos = updates(agent, 8)
            runs.append((np.asarray(agent.theta), infos, agent.evaluate(3)))
            assert agent.backend_name == backend
        finally:
            agent.close()
    (theta_a, infos_a, eval_a), (theta_b, infos_b, eval_b) = runs
    np.testing.assert_array_equal(theta_a, theta_b)
    assert_same_infos(infos_a, infos_b)
    assert eval_a == eval_b


def test_checkpoint_resumes_exactly(tmp_path):
    """Saved mid-episode and loaded, the run continues as if never stopped."""
    straight = mujoco_agent("mujoco", "hopper")
    stopped = mujoco_agent("mujoco", "hopper")
    try:
        updates(straight, 5)
        updates(stopped, 5)
        stopped.save(tmp_path / "agent")
        resumed = PES.load(tmp_path / "agent")
        try:
            assert resumed.backend_name == "mujoco"
            assert_same_infos(updates(resumed, 4), updates(straight, 4))
            np.testing.assert_array_equal(resumed.theta, straight.theta)
        finally:
            resumed.close()
    finally:
        straight.close()
        stopped.close()


@pytest.mark.parametrize(
    ("flags", "backend"),
    [([], "mujoco"), (["--backend", "gymnasium"], "gymnasium")],
)
def test_cli_first_line_names_the_backend(flags, backend, tmp_path, capsys):
    run = ["--env", "swimmer", "--total-steps", "200", "--num-particles", "2"]
    run += ["--truncation-length", "100", "--eval-episodes", "1"]
    assert main([*run, *flags, "--run-dir", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"NRES on Swimmer-v5 ({backend} backend, cpu")


def test_video_replays_the_first_evaluation_episode(tmp_path):
    """Videos render through a Gymnasium env; its episode is the batch's."""
    from pes_rl.cli.video import record

    agent = mujoco_agent("mujoco", horizon=20)
    try:
        agent.update()
        try:
            video = record(agent, tmp_path / "swimmer.mp4")
        except ConfigError as err:  # no renderer or encoder here
            pytest.skip(str(err))
        assert video["frames"] == 21
        assert video["return"] == agent.evaluate_episodes(1)[0]
    finally:
        agent.close()
