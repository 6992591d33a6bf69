"""The Brax backend: determinism, updates per call, compile-once, callbacks,
save and load, non-finite rewards (its parity with the Gymnasium backend:
e2e/test_brax_parity.py; device sharding and the CLI: e2e/test_brax_cli.py)."""

import jax
import numpy as np
import pytest
from brax_toy import TOY
from compile_events import compiles

from pes_rl.agents import NRES, PES


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
    agent = NRES(**{**TOY, "seed": 11}, backend="brax", updates_per_call=2)
    agent.update()
    agent.evaluate(4)
    with compiles() as compiled:
        agent.learn(3000, progress_bar=False, reset_num_timesteps=False)
        agent.evaluate(4)
        agent.update()
    assert compiled == []


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
