"""Agent API: determinism, learning smoke, env-step accounting, persistence."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pes_rl.agents import NRES, PES, FullES, TruncatedES
from pes_rl.envs import LinearQuadraticEnv, register
from pes_rl.errors import ConfigError, NonFiniteError


@pytest.mark.parametrize("cls", [PES, NRES, TruncatedES, FullES])
def test_same_seed_gives_identical_parameters(cls):
    def run(seed):
        agent = cls(
            env="linear_quadratic",
            num_particles=6,
            truncation_length=5,
            sigma=0.1,
            learning_rate=0.05,
            seed=seed,
            preset=None,
        )
        infos = [agent.update() for _ in range(5)]
        return np.asarray(agent.theta), [i["env_steps"] for i in infos]

    theta_a, steps_a = run(0)
    theta_b, steps_b = run(0)
    theta_c, _ = run(1)
    np.testing.assert_array_equal(theta_a, theta_b)
    assert steps_a == steps_b
    assert not np.array_equal(theta_a, theta_c)


def test_swimmer_is_deterministic_per_seed():
    def run():
        agent = PES(
            env="swimmer", num_particles=4, truncation_length=10, horizon=40, seed=7
        )
        for _ in range(3):
            agent.update()
        return np.asarray(agent.theta)

    np.testing.assert_array_equal(run(), run())


def test_pes_learns_the_toy_task(lq_pes):
    agent = lq_pes(num_particles=20)
    start = agent.evaluate(2)
    agent.learn(15_000, progress_bar=False)
    # Zero actions score -20; the best open-loop linear policy about -1.
    assert start == pytest.approx(-20.0)
    assert agent.evaluate(2) > -3.0


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
def test_env_steps_count_live_training_transitions(lq_pes, backend):
    # 8 particles, K = 5, T = 20: 4 pairs staggered at offsets 0, 1, 2, 3
    # windows, a warm-up of 3 windows running 1 + 2 + 3 pair-windows.
    agent = lq_pes(backend=backend)
    info = agent.update()
    assert info["env_steps"] == (1 + 2 + 3) * 2 * 5 + 8 * 5
    assert agent.update()["env_steps"] == info["env_steps"] + 8 * 5
    # Brax's vmap also computes idle members' steps; they are not env steps.
    simulated = (3 + 2) * 8 * 5 if backend == "brax" else agent.env_steps
    assert agent.simulated_steps == simulated
    # Truncated ES also steps the shared trajectory: N + 1 envs per window.
    tes = TruncatedES(
        env="linear_quadratic", num_particles=8, truncation_length=5, backend=backend
    )
    assert tes.update()["env_steps"] == 9 * 5
    # Evaluation is counted separately.
    agent.evaluate(3)
    assert agent.eval_env_steps == 3 * 20
    assert agent.env_steps == info["env_steps"] + 8 * 5


def test_full_es_runs_whole_episodes():
    agent = FullES(
        env="linear_quadratic", num_particles=4, truncation_length=5, preset=None
    )
    assert agent.truncation_length == agent.horizon == 20
    info = agent.update()
    assert info["env_steps"] == 4 * 20
    assert info["episodes_completed"] == 4


def test_update_info_and_predict(lq_pes):
    agent = lq_pes()
    info = agent.update()
    assert {"grad", "env_steps", "window_return"} <= set(info)
    assert isinstance(info["grad"], np.ndarray)
    assert info["grad"].shape == (2,)
    obs = np.array([1.0, 0.5], np.float32)
    assert agent.predict(obs).shape == (1,)
    assert agent.predict(np.stack([obs, obs])).shape == (2, 1)
    kernel = np.asarray(jax.tree.leaves(agent.params)[0]).ravel()
    np.testing.assert_allclose(agent.predict(obs), kernel @ obs, rtol=1e-6)


def test_save_and_load_restore_the_agent(tmp_path, lq_pes):
    agent = lq_pes(optimizer="adam", obs_norm=True)
    for _ in range(3):
        agent.update()
    agent.save(tmp_path / "agent.pkl")
    restored = PES.load(tmp_path / "agent.pkl")
    np.testing.assert_array_equal(restored.theta, agent.theta)
    assert restored.env_steps == agent.env_steps
    assert restored.num_updates == 3
    np.testing.assert_array_equal(restored.obs_stats.mean, agent.obs_stats.mean)
    chex_equal = jax.tree.map(np.array_equal, restored.opt_state, agent.opt_state)
    assert all(jax.tree.leaves(chex_equal))
    assert restored.evaluate(2) == agent.evaluate(2)
    restored.update()


def test_load_continues_the_sigma_schedule(tmp_path, lq_pes):
    from pes_rl.core.schedules import LinearDecay

    agent = lq_pes(sigma=LinearDecay(0.3, 0.01, 10))
    for _ in range(12):
        agent.update()
    agent.save(tmp_path / "agent.pkl")
    restored = PES.load(tmp_path / "agent.pkl")
    assert int(restored.state.hyper.updates) == int(agent.state.hyper.updates) > 10
    restored.update()
    assert np.abs(np.asarray(restored.est_state.eps)).max() < 0.1


def test_mlp_and_custom_flax_policy(lq_pes):
    import flax.linen as nn

    class Affine(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(1)(obs) * 0.5

    assert lq_pes(policy="mlp", hidden_sizes=(4,)).update()["grad"].shape == (
        2 * 4 + 4 + 4 * 1 + 1,
    )
    assert lq_pes(policy=Affine()).update()["grad"].shape == (3,)


def test_custom_env_registration_and_instances():
    register(
        "lq_short",
        gymnasium=LinearQuadraticEnv,
        max_episode_steps=10,
        episode_length=10,
    )
    agent = PES(env="lq_short", num_particles=4, truncation_length=5)
    assert agent.horizon == 10
    agent.update()
    instance = gym.wrappers.TimeLimit(LinearQuadraticEnv(rho=0.5), 12)
    assert PES(env=instance, num_particles=4, truncation_length=4).horizon == 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_particles": 5}, "even"),
        ({"num_particles": -2}, "positive integer"),
        ({"sigma": 0.0}, "sigma"),
        ({"truncation_length": 0}, "truncation_length"),
        ({"horizon": 2.5}, "horizon"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"policy": "cnn"}, "policy"),
        ({"fitness_shaping": "rank"}, "fitness shaping"),
        ({"env": "swimer"}, "did you mean swimmer"),
        ({"backend": "tpu"}, "unknown backend"),
        ({"backend": "brax", "num_devices": 99}, "device"),
        ({"backend": "brax", "env": "swimer"}, "did you mean swimmer"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PES(**{"env": "linear_quadratic", **kwargs})


def test_non_finite_reward_stops_before_the_parameters_change():
    class Explodes(LinearQuadraticEnv):
        def step(self, action):
            obs, reward, term, trunc, info = super().step(action)
            return obs, (np.inf if self.t == 12 else reward), term, trunc, info

    env = gym.wrappers.TimeLimit(Explodes(), 20)
    agent = PES(
        env=env,
        num_particles=4,
        truncation_length=5,
        stagger=False,
        optimizer=optax.sgd(0.1),
        preset=None,
    )
    agent.update()
    agent.update()
    theta = np.asarray(agent.theta)
    with pytest.raises(NonFiniteError, match="particle 0 at step 12"):
        agent.update()
    np.testing.assert_array_equal(agent.theta, theta)


class FirstActionDecides(gym.Env):
    """Reward 1 per step; terminates at step 3 if the episode's first action
    was positive. With theta = 0 the two members of a pair act with opposite
    signs, so exactly one of them terminates early."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.ones(1, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t == 1:
            self.doomed = bool(action[0] > 0)
        return np.ones(1, np.float32), 1.0, self.t >= 3 and self.doomed, False, {}


@pytest.mark.parametrize("cls", [PES, NRES])
def test_accumulators_survive_an_early_termination_until_the_pair_ends(cls):
    env = gym.wrappers.TimeLimit(FirstActionDecides(), 20)
    agent = cls(
        env=env,
        num_particles=2,
        truncation_length=5,
        stagger=False,
        optimizer=optax.set_to_zero(),
        preset=None,
    )
    first_eps = None
    for window in range(4):
        info = agent.update()
        assert list(agent.loop.backend.clock) == [5 * (window + 1)] * 2
        # The terminated member absorbs: its episode return stays at 3.
        np.testing.assert_array_equal(
            sorted(agent.loop.backend.episode_return), [3.0, 5.0 * (window + 1)]
        )
        if window == 0:
            first_eps = np.asarray(agent.est_state.eps)
        xi = np.asarray(agent.est_state.score)
        if window < 3:
            assert np.all(xi != 0)  # one member ended, the pair did not
            if cls is NRES:
                np.testing.assert_array_equal(agent.est_state.eps, first_eps)
        else:  # the horizon ended the pair's episode: start afresh
            if cls is PES:
                np.testing.assert_array_equal(xi, 0.0)
            assert np.all(agent.est_state.redraw)
            assert info["episodes_completed"] == 2
    assert agent.env_steps == 20 + 3  # the terminated member was not stepped


def test_progress_bar_shows_the_eval_return_once_there_is_one(lq_pes, capsys):
    agent = lq_pes()
    agent.learn(2000)
    shown = capsys.readouterr().err
    assert "window_return" in shown and "eval_return" not in shown
    agent.evaluate(2)
    agent.learn(4000)
    assert "eval_return" in capsys.readouterr().err


def test_an_env_instance_keeps_its_time_limit_and_its_name():
    instance = gym.make("linear_quadratic", max_episode_steps=12)
    agent = PES(env=instance, num_particles=4, truncation_length=4)
    assert (agent.horizon, agent.env_name) == (12, "linear_quadratic")
    with pytest.raises(ConfigError, match="exceeds the 12-step time limit"):
        PES(env=instance, num_particles=4, truncation_length=4, horizon=20)


@pytest.mark.parametrize("wrapper", ["EpisodeWrapper", "AutoResetWrapper"])
def test_brax_envs_that_reset_themselves_are_refused(wrapper):
    from brax.envs.wrappers import training

    from pes_rl.envs.toy_brax import LinearQuadraticBrax

    env = LinearQuadraticBrax()
    if wrapper == "EpisodeWrapper":
        env = training.EpisodeWrapper(env, episode_length=20, action_repeat=1)
    else:
        env = training.AutoResetWrapper(env)
    with pytest.raises(ConfigError, match=f"wrapped in {wrapper}"):
        PES(env=env, backend="brax", horizon=20, num_particles=4)


def test_obs_norm_refuses_a_policy_that_reads_the_observation_twice():
    import flax.linen as nn

    class Skip(nn.Module):
        @nn.compact
        def __call__(self, obs):
            hidden = nn.tanh(nn.Dense(4)(obs))
            return nn.Dense(1)(jnp.concatenate([hidden, obs]))

    with pytest.raises(ConfigError, match="only reader of the observation"):
        PES(env="linear_quadratic", policy=Skip(), obs_norm=True, num_particles=4)
    PES(env="linear_quadratic", policy=Skip(), num_particles=4)  # fine without


@pytest.mark.parametrize("obs_norm", [False, True])
def test_a_first_format_checkpoint(tmp_path, lq_pes, obs_norm):
    """Checkpoints written before the one training state load (their
    particles restart), except obs_norm ones, whose policy normalised
    differently."""
    import pickle

    agent = lq_pes(obs_norm=obs_norm)
    for _ in range(3):
        agent.update()
    old = {
        "format": 1,
        "algorithm": "PES",
        "config": {**agent.config.as_kwargs(), "policy_bias": False},
        "theta": np.asarray(agent.theta),
        "opt_state": jax.device_get(agent.opt_state),
        "obs_stats": jax.device_get(agent.obs_stats),
        "env_steps": agent.env_steps,
        "eval_env_steps": 0,
        "num_updates": agent.num_updates,
        "windows": agent.num_updates,  # unread: no warm-up in that format
        "est_state": jax.device_get(agent.est_state),
        "key": np.asarray(jax.random.key_data(agent.key)),
        "reset_rng": agent.loop.reset_key_data(),
        "extra": {},
    }
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(old))
    if obs_norm:
        with pytest.raises(ConfigError, match="before the observation-norm"):
            PES.load(tmp_path / "old.pkl")
        return
    restored = PES.load(tmp_path / "old.pkl")
    np.testing.assert_array_equal(restored.theta, agent.theta)
    assert restored.num_updates == 3 and restored.env_steps == agent.env_steps
    restored.update()
