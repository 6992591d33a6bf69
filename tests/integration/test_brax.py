"""The Brax backend: parity with the Gymnasium backend on the toy task (the
same seed draws the same noise on both), determinism, compile-once
(device sharding and the CLI: e2e/test_brax_cli.py)."""

import jax
import numpy as np
import pytest

from pes_rl.agents import NRES, PES, FullES, TruncatedES

TOY = dict(
    env="linear_quadratic",
    num_particles=8,
    truncation_length=5,
    sigma=0.1,
    learning_rate=0.01,
    fitness_shaping="std",
    seed=3,
    preset=None,  # the settings above, AgentConfig's for the rest
)


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


def test_deterministic():
    def run():
        agent = PES(**TOY, backend="brax", updates_per_call=3)
        agent.learn(1000, progress_bar=False)
        return np.asarray(agent.theta), agent.env_steps

    (theta_a, steps_a), (theta_b, steps_b) = run(), run()
    assert steps_a == steps_b
    np.testing.assert_array_equal(theta_a, theta_b)


def test_learn_in_calls_matches_single_updates():
    # Several updates per device call are the same updates as one per call.
    one = PES(**TOY, backend="brax", updates_per_call=1)
    four = PES(**TOY, backend="brax", updates_per_call=4)
    one.learn(2000, progress_bar=False)
    four.learn(2000, progress_bar=False)
    assert one.env_steps == four.env_steps
    np.testing.assert_allclose(one.theta, four.theta, rtol=1e-5, atol=1e-6)


def test_no_recompilation_after_the_first_update():
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **_: (
            compiles.append(event) if "backend_compile" in event else None
        )
    )
    agent = NRES(**{**TOY, "seed": 11}, backend="brax", updates_per_call=2)
    agent.update()
    agent.evaluate(4)
    compiles.clear()
    agent.learn(3000, progress_bar=False, reset_num_timesteps=False)
    agent.evaluate(4)
    agent.update()
    assert compiles == []


def test_callback_and_learning_on_brax():
    agent = PES(**{**TOY, "seed": 5}, backend="brax", updates_per_call=10)
    before = agent.evaluate(4)
    calls = []
    agent.learn(20_000, callback=calls.append, progress_bar=False)
    assert agent.evaluate(4) > before + 1.0
    assert len(calls) >= 2 and calls[-1]["env_steps"] == agent.env_steps


def test_save_and_load_on_brax(tmp_path):
    agent = PES(**{**TOY, "obs_norm": True}, backend="brax")
    for _ in range(3):
        agent.update()
    agent.save(tmp_path / "agent.pkl")
    restored = PES.load(tmp_path / "agent.pkl")
    assert restored.backend_name == "brax"
    np.testing.assert_array_equal(restored.theta, agent.theta)
    np.testing.assert_allclose(restored.obs_stats.mean, agent.obs_stats.mean)
    assert restored.evaluate(3) == pytest.approx(agent.evaluate(3))
    restored.update()


@pytest.mark.parametrize("updates_per_call", [1, 4])
def test_non_finite_reward_stops_before_the_parameters_change(updates_per_call):
    from pes_rl.envs.toy_brax import LinearQuadraticBrax
    from pes_rl.errors import NonFiniteError

    class Explodes(LinearQuadraticBrax):
        def step(self, state, action):
            state = super().step(state, action)
            t = state.info["t"]
            return state.replace(reward=jax.numpy.where(t == 12, jax.numpy.inf, 1.0))

    agent = PES(
        **{**TOY, "env": Explodes(), "horizon": 20},
        backend="brax",
        updates_per_call=updates_per_call,
    )
    agent.theta = agent.theta + 0.1
    theta = np.asarray(agent.theta)
    with pytest.raises(NonFiniteError, match="non-finite"):
        for _ in range(4):
            agent.update()
    np.testing.assert_array_equal(agent.theta, theta)
