"""learn() follows Stable-Baselines3: every call trains that many more env
steps, and any falsy answer from a callback other than None stops it."""

import numpy as np

from pes_rl.runs.callbacks import Callback


def test_a_numpy_false_from_a_function_stops_training(lq_pes):
    agent = lq_pes()
    agent.learn(
        10_000,
        callback=lambda info: np.bool_(info["update"] < 3),
        progress_bar=False,
    )
    assert agent.num_updates == 3


class _StopAt(Callback):
    def __init__(self, update: int):
        self.update = update

    def on_update(self, agent, info):
        return np.int64(info["update"] < self.update)  # 0 stops, 1 goes on


def test_a_falsy_answer_in_a_callback_list_stops_training(lq_pes):
    agent = lq_pes()
    agent.learn(10_000, callback=[_StopAt(4), lambda info: None], progress_bar=False)
    assert agent.num_updates == 4


def test_a_second_learn_trains_that_many_more_steps(lq_pes):
    # 8 particles x K = 5: 40 env steps per update after the warm-up.
    agent = lq_pes(stagger=False)
    agent.learn(2000, progress_bar=False)
    first_updates = agent.num_updates
    assert agent.env_steps == 2000
    agent.learn(2000, progress_bar=False)  # the counter restarts, as in SB3
    assert agent.env_steps == 2000
    assert agent.num_updates == 2 * first_updates
    agent.learn(2000, progress_bar=False, reset_num_timesteps=False)
    assert agent.env_steps == 4000
    assert agent.num_updates == 3 * first_updates
