"""The Brax backend against the Gymnasium backend on the toy task, for every
algorithm, with and without early termination (the same seed draws the same
noise on both). In e2e for time: each case compiles its own Brax engine."""

import numpy as np
import pytest
from brax_toy import TOY

from pes_rl.agents import NRES, PES, FullES, TruncatedES


@pytest.mark.parametrize("cls", [PES, NRES, TruncatedES, FullES])
@pytest.mark.parametrize("terminate_above", [None, 1.5])
def test_same_windows_and_gradients_as_gymnasium(cls, terminate_above):
    kwargs = {**TOY, "env_kwargs": {"terminate_above": terminate_above}}
    gym_agent = cls(**kwargs)
    brax_agent = cls(**kwargs, backend="brax")
    ended = 0
    for _ in range(8):
        expected, got = gym_agent.update(), brax_agent.update()
        np.testing.assert_allclose(
            got["window_return"], expected["window_return"], rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(got["grad"], expected["grad"], rtol=1e-3, atol=1e-3)
        assert got["episodes_completed"] == expected["episodes_completed"]
        assert got["env_steps"] == expected["env_steps"]
        np.testing.assert_allclose(
            got["train_episode_return"], expected["train_episode_return"], rtol=1e-4
        )
        ended += expected["episodes_completed"]
    assert ended > 0
    np.testing.assert_allclose(brax_agent.theta, gym_agent.theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        brax_agent.evaluate_episodes(3), gym_agent.evaluate_episodes(3), rtol=1e-4
    )
