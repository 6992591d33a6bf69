"""Problems on the jitted engine: a user's own, the shipped ones, their
parity with the environment form, shared keys within a pair, the CLI
in-process (its subprocess run is in e2e/test_problems_cli.py)."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from custom_problem import NoisyRegression

from pes_rl.agents import NRES, PES, TruncatedES
from pes_rl.cli.train import main
from pes_rl.core.problem_window import ProblemBackend
from pes_rl.errors import ConfigError
from pes_rl.problems import make
from pes_rl.problems.toys import InfluenceBalancing, LinearQuadratic, LRScheduleToy

ROOT = Path(__file__).resolve().parents[2]


def test_a_users_problem_trains_from_python():
    agent = PES(
        problem=NoisyRegression(),
        num_particles=16,
        truncation_length=5,
        sigma=0.3,
        learning_rate=0.05,
        optimizer="adam",
        seed=0,
        preset=None,
    )
    before = agent.evaluate(4)
    agent.learn(20_000, progress_bar=False)
    # A larger learning rate fits the regression faster: theta goes up.
    assert float(agent.theta[0]) > -2.5
    assert agent.evaluate(4) > before
    with pytest.raises(ConfigError, match="a Problem has no observations"):
        agent.predict(np.zeros(2))


@pytest.mark.parametrize("cls", [PES, NRES, TruncatedES])
def test_the_linear_quadratic_problem_matches_its_environment_form(cls):
    settings = dict(num_particles=8, truncation_length=5, sigma=0.1, seed=3)
    settings |= dict(learning_rate=0.01, fitness_shaping="std")
    env_form = cls(env="linear_quadratic", **settings)
    problem_form = cls(problem=LinearQuadratic(), **settings)
    for _ in range(6):
        expected, got = env_form.update(), problem_form.update()
        np.testing.assert_allclose(
            got["window_return"], expected["window_return"], rtol=1e-4
        )
        np.testing.assert_allclose(got["grad"], expected["grad"], rtol=1e-3, atol=1e-3)
        assert got["env_steps"] == expected["env_steps"]
    np.testing.assert_allclose(problem_form.theta, env_form.theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        problem_form.evaluate_episodes(2), env_form.evaluate_episodes(2), rtol=1e-4
    )


class KeyEcho:
    """Reward: a uniform number drawn from the step key."""

    horizon = 10

    def init_params(self, key):
        return jnp.zeros(1)

    def init(self, key):
        return jax.random.uniform(key)

    def step(self, params, state, key):
        return state, jax.random.uniform(key) + state, jnp.zeros((), bool)


def test_pair_members_share_their_reset_and_step_keys():
    backend = ProblemBackend(KeyEcho(), 6)
    carry = backend.init(jax.random.key(0))
    params = jnp.zeros((6, 1))
    normalizer = (jnp.zeros(0), jnp.ones(0))
    _, out = jax.jit(backend.unroll, static_argnums=3)(
        carry, params, normalizer, 5, jnp.ones(6, bool)
    )
    returns = np.asarray(out.returns).reshape(3, 2)
    np.testing.assert_array_equal(returns[:, 0], returns[:, 1])
    assert len(set(returns[:, 0].tolist())) == 3


@pytest.mark.parametrize(
    "problem", [LinearQuadratic(), InfluenceBalancing(), LRScheduleToy()]
)
def test_shipped_problems_step_jitted_and_vmapped(problem):
    key = jax.random.key(1)
    params = jax.vmap(lambda _: problem.init_params(key))(jnp.arange(3))
    states = jax.vmap(problem.init)(jax.random.split(key, 3))
    step = jax.jit(jax.vmap(problem.step))
    states, rewards, done = step(params, states, jax.random.split(key, 3))
    assert rewards.shape == (3,) and done.shape == (3,)
    assert np.isfinite(np.asarray(rewards)).all()


def test_problems_by_name_and_their_errors():
    assert make("lr_schedule_toy").horizon == 100
    assert make("custom_problem:make").horizon == 20
    with pytest.raises(ConfigError, match="did you mean lr_schedule_toy"):
        make("lr_schedule_tyo")
    with pytest.raises(ConfigError, match="not a Problem: it has no horizon, init_"):
        PES(problem=object())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--problem", "no_such_problem"], "unknown problem"),
        (
            ["--problem", "lr_schedule_toy", "--policy", "mlp"],
            "--policy does not apply",
        ),
        (["--problem", "lr_schedule_toy", "--env", "swimmer"], "--env does not apply"),
        (["--problem", "lr_schedule_toy", "--obs-norm"], "obs_norm needs"),
    ],
)
def test_bad_problem_input_is_one_line(args, message, tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert main([*args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
    assert not run_dir.exists()


class FloatDoneScalarParams:
    """Brax's conventions: ``done`` a float; parameters a bare float."""

    horizon = 6

    def init_params(self, key):
        return 0.5

    def init(self, key):
        return jnp.zeros(())

    def step(self, params, state, key):
        state = state + params
        return state, -((state - 1.0) ** 2), (state > 10.0).astype(jnp.float32)


def test_float_done_and_scalar_parameters():
    agent = NRES(problem=FloatDoneScalarParams(), num_particles=4, truncation_length=3)
    agent.update()
    assert agent.theta.shape == (1,)


def test_evaluation_episodes_do_not_depend_on_the_batch():
    """Run i draws its init and step keys by its own index: asking for more
    episodes adds new ones and repeats none."""
    agent = PES(problem=NoisyRegression(), num_particles=4, truncation_length=5)
    four, eight = agent.evaluate_episodes(4), agent.evaluate_episodes(8)
    np.testing.assert_allclose(eight[:4], four, rtol=1e-6)
    assert len(set(np.round(eight, 6).tolist())) == 8
