"""The host loop: windows of Gymnasium environments stepped on the CPU.

Each window is the jitted ``ask`` -> K steps in Python, one jitted, vmapped
policy call per step -> the jitted ``finish``: the same TrainState and the
same pure update as the jitted engine, with the window in between.
"""

import pickle
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from pes_rl.core.keys import EVAL_SEED
from pes_rl.core.policies import ParticlePolicy, PolicySpec
from pes_rl.core.train_state import TrainState, UpdateMetrics, WindowOut
from pes_rl.envs.backends.gymnasium import GymnasiumBackend
from pes_rl.envs.backends.pool import UnsavableEnvError


class HostFunctions:
    """Jitted functions shared by agents of one recipe."""

    def __init__(self, update, policy: PolicySpec):
        self.ask = jax.jit(update.ask)
        self.finish = jax.jit(update.finish)
        self.normalizer = jax.jit(update.normalizer)
        self.policy = policy
        self.act_particles = policy.particle_actions()
        self.act_mean = policy.mean_actions()


class HostLoop:
    """``pes_rl.agents.loop.Loop`` on Gymnasium envs."""

    def __init__(
        self,
        functions: HostFunctions,
        backend: GymnasiumBackend,
        make_env: Callable,
        make_eval_backend: Callable[[int], GymnasiumBackend],
        truncation_length: int,
        mean_particle: int | None,
        obs_norm: bool,
    ):
        self.fns, self.backend, self.make_env = functions, backend, make_env
        self.make_eval_backend = make_eval_backend
        self.truncation_length = truncation_length
        self.mean_particle, self.obs_norm = mean_particle, obs_norm
        self._eval_backends: dict[int, GymnasiumBackend] = {}
        self.last_call_seconds: float | None = None
        self.compile_seconds = None
        self.per_call = 1  # windows per call of run() in learn()
        self.failure: str | None = None  # what made the last window non-finite

    def window(self, ts: TrainState, active: np.ndarray, learn: bool):
        ts, thetas, (mean, inv_std) = self.fns.ask(ts)
        policy = ParticlePolicy(
            self.fns.policy, self.fns.act_particles, thetas, mean, inv_std
        )
        result = self.backend.unroll(
            policy,
            self.truncation_length,
            active=active,
            broadcast_from=self.mean_particle,
            collect_obs=self.obs_norm,
            center=np.asarray(mean, np.float64),
        )
        self.failure = result.failure
        # Two result types on purpose: the backend's WindowResult is per env
        # (numpy, so blocks of envs on Ray workers combine), the update's
        # WindowOut holds totals. Totals reduced here in particle order: the
        # same numbers however the particles were split over workers. The
        # leaves go to the jitted finish as numpy: a jnp.asarray per leaf
        # took longer than the rest of a short window's host work.
        window = WindowOut(
            returns=np.asarray(result.returns, np.float32),
            episode_ended=np.asarray(result.episode_ended),
            env_steps=np.asarray(result.env_steps, np.int32),
            simulated_steps=np.asarray(result.env_steps, np.int32),
            completed_return_sum=np.float32(result.completed_returns.sum()),
            completed_count=np.int32(result.completed.sum()),
            obs_count=np.float32(result.obs_count.sum()),
            obs_sum=np.asarray(result.obs_sum.sum(axis=0), np.float32),
            obs_sum_sq=np.asarray(result.obs_sum_sq.sum(axis=0), np.float32),
            finite=np.bool_(result.failure is None),
        )
        return self.fns.finish(ts, window, learn, True)

    def run(self, ts: TrainState, active: np.ndarray, learn: np.ndarray):
        """Windows with ``active`` [W, M] masks and ``learn`` [W] flags:
        (state, metrics per window as numpy); stops after a non-finite one."""
        out = []
        for mask, learns in zip(active, learn, strict=True):
            ts, metrics = self.window(ts, mask, bool(learns))
            out.append(jax.device_get(metrics))
            if not metrics.finite:
                break
        return ts, UpdateMetrics(*map(np.stack, zip(*out, strict=True)))

    def normalizer(self, obs_stats):
        return self.fns.normalizer(obs_stats)

    def _mean_policy(self, ts: TrainState, unravel) -> Callable:
        """obs -> the mean policy's outputs, or (obs, carry) -> (outputs,
        carry) when recurrent; parameters and normaliser prepared once."""
        params = unravel(ts.theta)
        mean, inv_std = self.fns.normalizer(ts.obs_stats)

        def outputs(obs, carry=None):
            if carry is None:
                return np.asarray(self.fns.act_mean(params, obs, mean, inv_std))
            carry, out = self.fns.act_mean(params, carry, obs, mean, inv_std)
            return np.asarray(out), np.asarray(carry)

        return outputs

    def mean_actions(self, ts: TrainState, unravel, obs: np.ndarray, carry=None):
        """Env actions of the mean policy: clipped, or an argmax for discrete
        spaces; with the new carry when ``carry`` is given."""
        policy = self._mean_policy(ts, unravel)
        if carry is None:
            return self.backend.actions.decode(policy(obs))
        outputs, carry = policy(obs, carry)
        return self.backend.actions.decode(outputs), carry

    def evaluate(self, ts: TrainState, num_episodes: int, key: Any, unravel):
        """Returns, env steps and finiteness of ``num_episodes`` episodes of
        the mean policy, reset with seeds EVAL_SEED + i."""
        backend = self._eval_backends.get(num_episodes)
        if backend is None:  # one pool of evaluation envs at a time
            for old in self._eval_backends.values():
                old.close()
            self._eval_backends = {num_episodes: self.make_eval_backend(num_episodes)}
            backend = self._eval_backends[num_episodes]
        backend.reset(
            np.ones(num_episodes, bool), seeds=EVAL_SEED + np.arange(num_episodes)
        )
        result = backend.unroll(self._mean_policy(ts, unravel), backend.horizon)
        return result.returns, result.env_steps, result.failure is None

    def particles(self) -> dict:
        """The envs' states and bookkeeping; ``UnsavableEnvError`` where an
        env's state cannot be copied or pickled."""
        particles = self.backend.particles()
        if particles is None:  # Ray workers whose envs cannot be snapshotted
            raise UnsavableEnvError("the envs on the Ray workers cannot be copied")
        try:
            pickle.dumps(particles)  # in this process, copied but not yet pickled
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            message = f"the envs' state cannot be pickled ({err})"
            raise UnsavableEnvError(message) from None
        return particles

    def set_particles(self, particles: dict) -> None:
        self.backend.set_particles(particles)

    def reset_key_data(self):
        return self.backend.rng.bit_generator.state

    def set_reset_key_data(self, state) -> None:
        self.backend.rng.bit_generator.state = state

    @property
    def device_description(self) -> str:
        return self.backend.description

    def prepare(self, ts: TrainState) -> None:
        """Nothing to compile ahead: the jitted halves compile on first use."""

    def close(self) -> None:
        for backend in [self.backend, *self._eval_backends.values()]:
            backend.close()
        self._eval_backends.clear()
