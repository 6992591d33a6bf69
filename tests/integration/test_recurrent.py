"""Recurrent policies: the carry is part of each particle's state, fresh at
every episode start, the same for both members of a pair, and carried across
windows, on both engines; predict, evaluate and checkpoints handle it."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents import PES
from pes_rl.core.keys import EVAL_SEED
from pes_rl.core.policies import ParticlePolicy
from pes_rl.core.problem_window import ProblemBackend
from pes_rl.envs.backends.gymnasium import GymnasiumBackend
from pes_rl.envs.memory import CueMemoryEnv
from pes_rl.errors import ConfigError

LENGTH = 7  # the memory task's episode length in these tests


def random_theta(agent, seed=0):
    """Parameters far from the zero-output start, so that actions depend on
    the carry."""
    return 0.5 * jax.random.normal(jax.random.key(seed), agent.theta.shape)


def memory_agent(backend, policy="gru", **kwargs):
    settings = dict(
        env="cue_memory",
        env_kwargs={"length": LENGTH},
        horizon=LENGTH,
        backend=backend,
        policy=policy,
        recurrent_size=6,
        num_particles=4,
        truncation_length=3,
        seed=0,
        preset=None,
    )
    return PES(**{**settings, **kwargs})


def host_returns(agent, theta, window: int, num_windows: int) -> np.ndarray:
    """Returns of every particle running ``theta`` over windows of
    ``window`` steps, on a fresh backend with the agent's reset seed."""
    spec, fns = agent.loop.fns.policy, agent.loop.fns
    backend = GymnasiumBackend(
        lambda: CueMemoryEnv(LENGTH), agent.num_envs, LENGTH, seed=123
    )
    backend.set_initial_carry(agent.initial_carry)
    thetas = jnp.broadcast_to(theta, (agent.num_envs,) + theta.shape)
    policy = ParticlePolicy(spec, fns.act_particles, thetas, jnp.zeros(2), jnp.ones(2))
    total = np.zeros(agent.num_envs)
    for _ in range(num_windows):
        total += backend.unroll(policy, window).returns
        starts = backend.needs_reset.copy()
        if starts.any():  # episodes ended: the next window starts them fresh
            backend.reset(starts)
            np.testing.assert_array_equal(
                backend.carry[starts], np.tile(agent.initial_carry, (starts.sum(), 1))
            )
    return total


def test_host_carry_persists_across_windows_and_restarts_every_episode():
    agent = memory_agent("gymnasium")
    theta = random_theta(agent)
    # Two episodes of 7 steps as windows of 3 steps (7 windows: an episode
    # spans windows, and the second starts inside one) or as whole windows.
    windows_of_3 = host_returns(agent, theta, 3, 6)
    whole = host_returns(agent, theta, LENGTH, 2)
    np.testing.assert_allclose(windows_of_3, whole, rtol=1e-6)
    assert np.abs(whole).max() > 0.1  # the answers depend on the carry
    np.testing.assert_array_equal(whole[0::2], whole[1::2])  # pairs share all
    agent.close()


def test_jitted_carry_persists_across_windows_and_restarts_every_episode():
    agent = memory_agent("brax")
    problem = agent.problem
    theta = random_theta(agent)
    params = jax.vmap(agent._unravel)(jnp.broadcast_to(theta, (4,) + theta.shape))
    normalizer = (jnp.zeros(2), jnp.ones(2))
    active = jnp.ones(4, bool)

    def returns(window, num_windows):
        backend = ProblemBackend(problem, 4)
        unroll = jax.jit(backend.unroll, static_argnums=3)  # one compile per window
        carry, total = backend.init(jax.random.key(5)), np.zeros(4)
        for _ in range(num_windows):
            carry, out = unroll(carry, params, normalizer, window, active)
            total += np.asarray(out.returns)
        return total, carry

    windows_of_3, _ = returns(3, 6)
    whole, carry = returns(LENGTH, 2)
    np.testing.assert_allclose(windows_of_3, whole, rtol=1e-6)
    assert np.abs(whole).max() > 0.1
    np.testing.assert_array_equal(whole[0::2], whole[1::2])
    assert carry.state.carry.shape == (4, agent.initial_carry.size)
    assert not np.allclose(carry.state.carry, agent.initial_carry)


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
def test_predict_carries_the_state_and_matches_evaluate(backend):
    agent = memory_agent(backend, policy="lstm", num_particles=2)
    agent.theta = random_theta(agent, seed=1)
    size = agent.initial_carry.size
    assert agent.recurrent and size == 2 * 6  # an LSTM's (c, h)
    # One evaluation episode, replayed with predict and the state it returns.
    evaluated = agent.evaluate_episodes(1)[0]
    if backend == "gymnasium":
        env = CueMemoryEnv(LENGTH)
        obs, _ = env.reset(seed=EVAL_SEED)
        step = env.step
    else:
        env = agent.problem.env
        state = env.reset(jax.random.key_data(jax.random.fold_in(agent._eval_key, 0)))
        obs = np.asarray(state.obs)

        def step(action):
            nonlocal state
            state = env.step(state, jnp.asarray(action))
            return np.asarray(state.obs), float(state.reward), bool(state.done), 0, 0

    carry, total = None, 0.0
    for t in range(LENGTH):
        action, carry = agent.predict(obs, carry, episode_start=t == 0)
        assert carry.shape == (size,)
        obs, reward, *_ = step(action)
        total += reward
    assert total == pytest.approx(evaluated, abs=1e-5)
    # A batch; episode_start restarts a row's state.
    batch = np.ones((3, 2), np.float32)
    _, state = agent.predict(batch)
    assert state.shape == (3, size)
    _, moved = agent.predict(batch, state)
    _, restarted = agent.predict(batch, moved, episode_start=[True, False, True])
    _, continued = agent.predict(batch, moved)
    assert not np.allclose(continued, state)
    np.testing.assert_allclose(restarted[[0, 2]], state[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(restarted[1], continued[1], rtol=1e-6)
    with pytest.raises(ConfigError, match="flat carry"):
        agent.predict(batch, np.zeros((3, size + 1)))
    agent.close()


def test_stateless_policies_keep_predict_obs_to_action():
    agent = memory_agent("gymnasium", policy="mlp", num_particles=2)
    assert not agent.recurrent and agent.initial_carry.size == 0
    assert agent.predict(np.zeros(2)).shape == (1,)
    # Code written for recurrent policies still unpacks (action, state).
    action, state = agent.predict(np.zeros((3, 2)), None, episode_start=True)
    assert action.shape == (3, 1) and state is None
    agent.close()


class CustomRecurrent(nn.Module):
    """A hand-written recurrent policy: an exponential trace of the
    observation read by a linear layer."""

    @nn.nowrap
    def initialize_carry(self, rng, input_shape):
        return jnp.zeros(input_shape)

    @nn.compact
    def __call__(self, carry, obs):
        carry = 0.9 * carry + obs
        return carry, nn.Dense(1)(carry)


@pytest.mark.parametrize(
    "policy", [nn.GRUCell(features=5), CustomRecurrent()], ids=["cell", "module"]
)
def test_any_flax_recurrent_module_is_a_policy(policy):
    agent = memory_agent("gymnasium", policy=policy, num_particles=2)
    assert agent.recurrent
    agent.update()
    assert agent.predict(np.zeros(2))[1].shape == agent.initial_carry.shape
    agent.close()


def test_obs_norm_re_expresses_a_recurrent_policy():
    agent = memory_agent("gymnasium", obs_norm=True)
    for _ in range(3):
        agent.update()
    assert np.isfinite(agent.evaluate(2))
    agent.close()


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
def test_a_loaded_recurrent_agent_continues_exactly(tmp_path, backend):
    kwargs = dict(sigma=0.3, learning_rate=0.05, optimizer="adam")
    uninterrupted = memory_agent(backend, **kwargs)
    for _ in range(5):
        uninterrupted.update()
    stopped = memory_agent(backend, **kwargs)
    for _ in range(2):  # mid-episode: 3 windows per episode
        stopped.update()
    stopped.save(tmp_path / "a.pkl")
    resumed = PES.load(tmp_path / "a.pkl")
    for _ in range(3):
        resumed.update()
    np.testing.assert_array_equal(resumed.theta, uninterrupted.theta)
    for agent in (uninterrupted, stopped, resumed):
        agent.close()
