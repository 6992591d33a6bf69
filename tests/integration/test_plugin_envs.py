"""Environments from other packages: state that cannot be saved (Box2D),
Dict and Tuple observations, env instances in checkpoints, and the hints
for ids that a plugin registers."""

import gymnasium as gym
import numpy as np
import pytest
import ray_envs  # noqa: F401  registers LockedToy-v0 (a lock: no copies)
from spaces_envs import SequenceObservations  # also registers DictCue-v0, TupleCue-v0

from pes_rl.agents import PES, FullES, TruncatedES
from pes_rl.errors import ConfigError
from pes_rl.runs.checkpoints import read

gym.register("VaryingLengthNoLimit-v0", entry_point=SequenceObservations)

SMALL = dict(num_particles=4, truncation_length=20, seed=1)
WARNING = "cannot be saved"


# -- 1. state that cannot be copied or pickled ------------------------------


@pytest.mark.parametrize("num_workers", [0, 1])
def test_unsavable_env_saves_without_particles_and_warns_once(
    num_workers, tmp_path, capsys
):
    agent = PES(env="LockedToy-v0", num_workers=num_workers, **SMALL)
    agent.update()
    agent.save(tmp_path / "a.pkl")
    agent.update()  # the worker process (if any) lives on
    agent.save(tmp_path / "b.pkl")
    agent.close()
    assert capsys.readouterr().err.count(WARNING) == 1
    assert read(tmp_path / "b.pkl")["particles"] is None
    restored = PES.load(tmp_path / "b.pkl", num_workers=num_workers)
    assert restored.num_updates == 2
    restored.update()  # episodes restart
    restored.close()


def test_truncated_es_refuses_an_env_it_cannot_copy():
    with pytest.raises(ConfigError) as err:
        TruncatedES(env="LockedToy-v0", **SMALL)
    message = str(err.value)
    assert "\n" not in message and "cannot be copied" in message
    assert "--algo pes" in message
    FullES(env="LockedToy-v0", **SMALL).close()  # starts from resets: fine


def test_box2d_env_saves_resumes_and_refuses_truncated_es(tmp_path, capsys):
    pytest.importorskip("Box2D")
    env = "LunarLanderContinuous-v3"
    agent = PES(env=env, **SMALL)
    for name in ("a.pkl", "b.pkl"):
        agent.update()
        agent.save(tmp_path / name)
    assert capsys.readouterr().err.count(WARNING) == 1
    restored = PES.load(tmp_path / "b.pkl")
    restored.update()
    assert restored.num_updates == 3
    with pytest.raises(ConfigError, match="SwigPyObject"):
        TruncatedES(env=env, **SMALL)


# -- 2. Dict and Tuple observations -----------------------------------------


@pytest.mark.parametrize("env", ["DictCue-v0", "TupleCue-v0"])
def test_dict_and_tuple_observations_are_flattened_and_learnt(env):
    agent = PES(
        env=env,
        num_particles=8,
        truncation_length=5,
        sigma=0.3,
        learning_rate=0.1,
        optimizer="adam",
        fitness_shaping="centered_ranks",
        policy_bias=True,
        preset=None,  # no obs-norm, as measured
    )
    space = gym.make(env).observation_space
    assert agent.flattened_observations == space
    before = agent.evaluate(20)
    agent.learn(4_000, progress_bar=False)
    after = agent.evaluate(20)
    assert before < -3 and after > -0.5, (before, after)  # best 0, zero action -5
    raw = gym.make(env)
    obs, _ = raw.reset(seed=0)  # the env's own (unflattened) observation
    cue = obs["cue"] if isinstance(obs, dict) else obs[1]
    assert abs(agent.predict(obs)[0] - cue[0]) < 0.5
    agent.close()


def test_missing_horizon_and_unusable_space_in_one_message():
    with pytest.raises(ConfigError) as err:
        PES(env="VaryingLengthNoLimit-v0", num_particles=2)
    message = str(err.value)
    assert "\n" not in message
    assert "no episode limit" in message and "got Sequence(" in message


def test_point_maze_from_the_plugin_resumes_exactly(tmp_path):
    pytest.importorskip("gymnasium_robotics")
    kwargs = dict(env="gymnasium_robotics:PointMaze_UMazeDense-v3", **SMALL)
    whole, stopped = PES(**kwargs), PES(**kwargs)
    for _ in range(3):  # mid-episode (T = 300, K = 20)
        whole.update()
        stopped.update()
    stopped.save(tmp_path / "maze.pkl")
    resumed = PES.load(tmp_path / "maze.pkl")
    for _ in range(3):
        whole.update()
        resumed.update()
    np.testing.assert_array_equal(resumed.theta, whole.theta)


# -- 3. an agent built from an env instance ---------------------------------


def _instance():
    """A wrapper holding a lambda: the instance cannot be pickled."""
    env = gym.make("linear_quadratic")
    return gym.wrappers.TransformReward(env, lambda r: 2.0 * r)


def test_agent_from_an_instance_saves_and_loads_with_env_given(tmp_path):
    whole, stopped = PES(env=_instance(), **SMALL), PES(env=_instance(), **SMALL)
    for _ in range(2):
        whole.update()
        stopped.update()
    stopped.save(tmp_path / "a.pkl")
    with pytest.raises(ConfigError) as err:
        PES.load(tmp_path / "a.pkl")
    assert "env=" in str(err.value) and "\n" not in str(err.value)
    resumed = PES.load(tmp_path / "a.pkl", env=_instance())
    for _ in range(2):
        whole.update()
        resumed.update()
    np.testing.assert_array_equal(resumed.theta, whole.theta)


# -- 4. ids that a plugin registers -----------------------------------------


@pytest.mark.parametrize(
    "env_id, prefixed",
    [
        ("FetchReachDense-v4", "gymnasium_robotics:FetchReachDense-v4"),
        ("dm_control/cartpole-swingup-v0", "shimmy:dm_control/cartpole-swingup-v0"),
    ],
)
def test_plugin_ids_get_their_module_prefix(env_id, prefixed, monkeypatch):
    monkeypatch.delitem(gym.registry, env_id, raising=False)  # not yet imported
    with pytest.raises(ConfigError) as err:
        PES(env=env_id)
    message = str(err.value)
    assert prefixed in message and "Reacher" not in message, message
