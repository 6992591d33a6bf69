"""The meta-learning problems (digits learning-rate schedule, 20
hyperparameters, learned optimiser): jittable and vmappable steps, the
minibatches and initialisations pairs share, the missing extra (their CLI
run: e2e/test_problems_cli.py)."""

import importlib.util
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents import PES
from pes_rl.core.problem_window import ProblemBackend
from pes_rl.errors import ConfigError
from pes_rl.problems import digits, make
from pes_rl.problems.digits import HyperparamsDigits, LRScheduleDigits
from pes_rl.problems.learned_optimizer import LearnedOptimizer

# find_spec, not importorskip: scikit-learn is imported by the tests that
# load the digits, not while every worker collects.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn"
)

SMALL = {
    "lr_schedule_train_loss": lambda: LRScheduleDigits(horizon=20),
    "lr_schedule_val_accuracy": lambda: LRScheduleDigits(
        horizon=20, objective="val_accuracy"
    ),
    "hyperparams": lambda: HyperparamsDigits(horizon=20),
    "learned_optimizer": lambda: LearnedOptimizer(horizon=20),
}


@pytest.mark.parametrize("name", SMALL)
def test_steps_jit_and_vmap_and_pairs_draw_the_same_minibatches(name):
    """The engine jits a window of the problem's step vmapped over six
    members. With the same theta everywhere, the two members of a pair start
    from the same weights and see the same data, so their runs are
    identical; other pairs draw other data and differ."""
    problem = SMALL[name]()
    backend = ProblemBackend(problem, 6)
    theta = problem.init_params(jax.random.key(0))
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (6, *jnp.shape(x))), theta)
    normalizer = (jnp.zeros(0), jnp.ones(0))
    carry, out = jax.jit(backend.unroll, static_argnums=3)(
        backend.init(jax.random.key(1)), params, normalizer, 10, jnp.ones(6, bool)
    )
    assert np.isfinite(np.asarray(out.returns)).all() and int(out.env_steps) == 60
    returns = np.asarray(out.returns).reshape(3, 2)
    np.testing.assert_array_equal(returns[:, 0], returns[:, 1])
    assert len(set(returns[:, 0].tolist())) == 3
    layers = np.asarray(jax.tree.leaves(carry.state["layers"])[0]).reshape(3, 2, -1)
    np.testing.assert_array_equal(layers[:, 0], layers[:, 1])


def test_minibatches_depend_on_the_key_only():
    training = LRScheduleDigits(horizon=5).training
    a, b = (
        training.batch(jax.random.key(3), "train"),
        training.batch(jax.random.key(3), "train"),
    )
    other = training.batch(jax.random.key(4), "train")
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], other[1])
    assert a[0].shape == (100, 64)


def test_a_diverging_run_is_charged_the_rest_of_its_horizon_at_once():
    """At the step where training diverges the run ends (done) with the
    worst loss for that step and every step left; later steps score
    nothing, so the run's total is the worst loss from there to the end."""
    problem = LRScheduleDigits(horizon=10)
    state = problem.init(jax.random.key(0))
    wild = jnp.array([4.0, -5.0])  # an initial learning rate of e^4
    rewards, dones = [], []
    step = jax.jit(problem.step)
    for k in jax.random.split(jax.random.key(1), 10):
        state, reward, done = step(wild, state, k)
        rewards.append(float(reward) * problem.horizon)
        dones.append(bool(done))
    assert bool(state["diverged"]) and dones[-1]
    first = dones.index(True)
    assert first < 9 and not any(dones[:first])
    steps_left = problem.horizon - first
    np.testing.assert_allclose(rewards[first], -digits.WORST_LOSS * steps_left, 1e-5)
    assert rewards[first + 1 :] == [0.0] * (9 - first)
    assert all(-digits.WORST_LOSS <= r <= 0 for r in rewards[:first])
    assert np.isfinite(np.asarray(jax.tree.leaves(state["layers"])[0])).all()


def test_a_step_never_scores_worse_than_divergence():
    """The per-step loss is clipped to WORST_LOSS (NaN at the cap), so a bad
    step that does not diverge cannot score below a diverged one."""
    assert digits.WORST_LOSS < digits.DIVERGED_LOSS
    losses = jnp.array([0.5, 15.4, 60.6, jnp.inf, jnp.nan, -1.0])
    np.testing.assert_allclose(
        digits.bounded(losses),
        [0.5, digits.WORST_LOSS, digits.WORST_LOSS, digits.WORST_LOSS]
        + [digits.WORST_LOSS, 0.0],
        rtol=1e-6,
    )
    problem = HyperparamsDigits(horizon=10)
    hot = jnp.concatenate([jnp.full(10, 1.5), jnp.zeros(10)])  # lr e^1.5
    state, step = problem.init(jax.random.key(0)), jax.jit(problem.step)
    for k in jax.random.split(jax.random.key(1), 10):
        state, reward, done = step(hot, state, k)
        per_step_cap = digits.WORST_LOSS * (1 if not done else 10)
        assert float(reward) * problem.horizon >= -per_step_cap - 1e-4


@pytest.mark.slow
def test_pes_learns_a_larger_learning_rate_on_a_short_schedule():
    """From lr e^-6 the mean training loss over 100 steps falls as the
    learning rate grows (the grid in experiments/ shows the optimum near
    e^-2): PES moves theta_0 up and the meta-objective improves."""
    problem = LRScheduleDigits(horizon=100)
    agent = PES(
        problem=problem,
        num_particles=8,
        truncation_length=10,
        sigma=0.1,
        learning_rate=0.05,
        optimizer="adam",
        stagger=False,
        updates_per_call=10,
        seed=0,
    )
    before = agent.evaluate(4)
    agent.learn(8 * 100 * 10, progress_bar=False)
    assert float(agent.theta[0]) > -6.0 + 1.0
    assert agent.evaluate(4) > before


def test_hyperparameters_map_blocks_in_order():
    problem = HyperparamsDigits(horizon=5)
    theta = jnp.arange(20, dtype=jnp.float32) / 10 - 1.0
    lr, momentum = problem.hyperparameters(theta)
    assert len(lr) == 5 and set(lr[0]) == {"w", "b"}
    np.testing.assert_allclose(lr[1]["b"], np.exp(theta[3]), rtol=1e-6)
    np.testing.assert_allclose(momentum[4]["w"], jax.nn.sigmoid(theta[18]), rtol=1e-6)


def test_the_learned_optimizer_starts_as_a_working_optimizer():
    """It starts as Adam 1e-3, which needs more than 50 steps to cut the
    loss by 30 % (2.30 -> 1.93 at 50, 1.02 at 150)."""
    problem = LearnedOptimizer(horizon=150)
    theta = problem.init_params(jax.random.key(0))
    state = problem.init(jax.random.key(1))
    step, losses = jax.jit(problem.step), []
    for k in jax.random.split(jax.random.key(2), 150):
        state, reward, _ = step(theta, state, k)
        losses.append(-float(reward) * problem.horizon)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    width = int(state["mask"].sum())
    assert 16 <= width <= 64


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    digits.digits_split.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'pes_rl\[meta\]'"):
            make("hyperparams_digits")
    finally:
        digits.digits_split.cache_clear()
