"""Discrete and MultiDiscrete action spaces: an argmax head, and a clear
error for the spaces still unsupported."""

import gymnasium as gym
import numpy as np
import pytest
from spaces_envs import PickTargets, SequenceObservations, TupleActions

from pes_rl.agents import PES
from pes_rl.envs.adapters.spaces import action_decoder
from pes_rl.errors import ConfigError

gym.register("PickTargets-v0", entry_point=PickTargets, max_episode_steps=10)
gym.register(
    "SequenceObservations-v0", entry_point=SequenceObservations, max_episode_steps=10
)
gym.register("TupleActions-v0", entry_point=TupleActions, max_episode_steps=10)


def test_decoders_take_the_argmax_per_sub_space_and_clip_boxes():
    discrete = action_decoder(gym.spaces.Discrete(3, start=-1))
    assert discrete.size == 3
    np.testing.assert_array_equal(
        discrete.decode([[0.1, 0.5, -2.0], [3.0, 0.0, 0.0]]), [0, -1]
    )
    multi = action_decoder(gym.spaces.MultiDiscrete([2, 3], start=[0, 5]))
    assert multi.size == 5
    np.testing.assert_array_equal(
        multi.decode([[0.0, 1.0, 0.2, 0.1, 0.3], [2.0, 1.0, 0.0, 4.0, 0.0]]),
        [[1, 7], [0, 6]],
    )
    box = action_decoder(gym.spaces.Box(-1.0, 2.0, (2,)))
    np.testing.assert_array_equal(box.decode([[-3.0, 1.5]]), [[-1.0, 1.5]])
    square = action_decoder(gym.spaces.Box(-1.0, 1.0, (2, 2)))
    assert square.size == 4
    assert square.decode(np.zeros((3, 4))).shape == (3, 2, 2)


def test_cartpole_actions_are_integers_of_the_action_space():
    agent = PES(env="CartPole-v1", num_particles=4, truncation_length=20, seed=0)
    agent.update()
    action = agent.predict(np.zeros(4))
    assert agent.loop.backend.actions.size == 2
    assert np.issubdtype(np.asarray(action).dtype, np.integer)
    assert gym.spaces.Discrete(2).contains(action)
    assert agent.predict(np.zeros((3, 4))).shape == (3,)
    assert np.isfinite(agent.evaluate(2))
    agent.close()


def test_a_linear_policy_learns_a_multi_discrete_choice():
    agent = PES(
        env="PickTargets-v0",
        num_particles=10,
        truncation_length=10,
        sigma=0.1,
        learning_rate=0.05,
        optimizer="adam",
        fitness_shaping="centered_ranks",
        seed=0,
        preset=None,
    )
    before = agent.evaluate(2)
    agent.learn(6_000, progress_bar=False)
    np.testing.assert_array_equal(agent.predict(np.ones(1)), PickTargets.TARGETS)
    assert before < 20 and agent.evaluate(2) == 20  # 2 points x 10 steps
    agent.close()


@pytest.mark.parametrize(
    "env, words",
    [
        ("SequenceObservations-v0", ["flatten into a vector", "Sequence"]),
        ("TupleActions-v0", ["Discrete", "MultiDiscrete", "Tuple"]),
    ],
)
def test_unsupported_spaces_are_one_line_errors(env, words):
    with pytest.raises(ConfigError) as err:
        PES(env=env, num_particles=2)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
