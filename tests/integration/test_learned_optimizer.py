"""The learned optimiser's options: its step parametrisation (a scaled log
step, damped MLP outputs), one fixed task sequence, the validation-loss
objective."""

import functools
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.errors import ConfigError
from pes_rl.problems import digits, make
from pes_rl.problems.learned_optimizer import LearnedOptimizer

# find_spec, not importorskip: scikit-learn is imported by the tests that
# load the digits, not while every worker collects.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn"
)


@functools.cache
def jitted_step(problem):
    return jax.jit(problem.step)  # compiled once per problem


def run(problem, theta, init_key, step_keys):
    state, step, rewards = problem.init(init_key), jitted_step(problem), []
    for k in step_keys:
        state, reward, _ = step(theta, state, k)
        rewards.append(float(reward) * problem.horizon)
    return state, np.array(rewards)


def test_fixed_tasks_train_every_run_on_one_task_and_minibatch_sequence():
    """With ``fixed_tasks`` the keys are ignored: two runs from different
    init and step keys are the same run; without it they differ."""
    keys_a = jax.random.split(jax.random.key(1), 5)
    keys_b = jax.random.split(jax.random.key(2), 5)
    for fixed in (True, False):
        problem = LearnedOptimizer(horizon=5, fixed_tasks=fixed)
        theta = problem.init_params(jax.random.key(0))
        a, rewards_a = run(problem, theta, jax.random.key(3), keys_a)
        b, rewards_b = run(problem, theta, jax.random.key(4), keys_b)
        same = np.array_equal(rewards_a, rewards_b) and np.array_equal(
            a["layers"][0]["w"], b["layers"][0]["w"]
        )
        assert same == fixed


def test_the_validation_objective_scores_the_same_training_on_other_data():
    """The objective changes the score, not the training: the same layers
    after 20 steps, other (bounded) rewards, and validation losses that
    fall as the model trains."""
    theta = LearnedOptimizer().init_params(jax.random.key(0))
    keys = jax.random.split(jax.random.key(2), 20)
    results = {
        objective: run(
            LearnedOptimizer(horizon=20, objective=objective),
            theta,
            jax.random.key(1),
            keys,
        )
        for objective in ("train_loss", "val_loss")
    }
    (train_state, train), (val_state, val) = results.values()
    np.testing.assert_array_equal(
        train_state["layers"][1]["w"], val_state["layers"][1]["w"]
    )
    assert not np.allclose(train, val)
    assert (val <= 0).all() and (val >= -digits.WORST_LOSS).all()
    assert val[-5:].mean() > val[:5].mean()


def test_the_scaled_log_step_and_the_damped_outputs_set_the_step():
    """A log-step meta-parameter u multiplies every step by
    exp(step_scale * u): ln 32 / step_scale gives tuned Adam's 32x. An MLP
    magnitude output m changes the log step by output_scale * m."""
    problem = LearnedOptimizer(step_scale=10.0, output_scale=0.1)
    theta = problem.init_params(jax.random.key(0))
    features = jax.random.normal(jax.random.key(1), (5, 7))
    base = problem.propose(theta, features)
    up = problem.propose({**theta, "log_step": jnp.log(32.0) / 10.0}, features)
    np.testing.assert_allclose(up, 32.0 * base, rtol=1e-5)
    last = theta["mlp"][-1]
    bias = {"w": last["w"], "b": jnp.array([0.0, 1.0])}  # m = 1 everywhere
    damped = problem.propose({**theta, "mlp": theta["mlp"][:-1] + [bias]}, features)
    np.testing.assert_allclose(damped, np.exp(0.1) * base, rtol=1e-5)


def test_a_bad_option_names_the_choices():
    with pytest.raises(ConfigError, match="train_loss, val_loss"):
        make("learned_optimizer", objective="val_accuracy")
    with pytest.raises(ConfigError, match="must be > 0"):
        make("learned_optimizer", step_scale=0.0)
