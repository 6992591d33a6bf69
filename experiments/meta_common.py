"""Shared helpers of the meta-learning scripts (``lr_schedule_digits.py``,
``hyperparams_digits.py``, ``learned_optimizer.py``): run an agent on a
Problem while recording theta, and score thetas by whole inner runs.

Not a library module: the scripts import it from ``experiments/``.
"""

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.agents import NRES, PES, FullES, TruncatedES

METHODS = {"PES": PES, "NRES": NRES, "TES": TruncatedES, "FullES": FullES}
COLORS = {
    "PES": "tab:blue",
    "NRES": "tab:green",
    "TES": "tab:red",
    "FullES": "0.3",
    "random search": "tab:orange",
    "Adam": "tab:purple",
}


def train(
    method: str, problem: Any, seed: int, total_steps: int, **settings: Any
) -> dict[str, np.ndarray]:
    """Train ``method`` on ``problem`` for ``total_steps`` inner steps (all
    particles, warm-up included) and return theta (flat), the inner steps
    and the wall-clock (training only) after every device call."""
    agent = METHODS[method](problem=problem, seed=seed, preset=None, **settings)
    flat = lambda: np.asarray(ravel_pytree(agent.params)[0])  # noqa: E731
    thetas, steps, seconds = [flat()], [0], [0.0]
    start = time.perf_counter()

    def record(info):
        thetas.append(flat())
        steps.append(agent.env_steps)
        seconds.append(time.perf_counter() - start)

    agent.learn(total_steps, callback=record, progress_bar=False)
    agent.close()
    return {
        "theta": np.array(thetas),
        "steps": np.array(steps),
        "seconds": np.array(seconds),
    }


def inner_returns(
    problem: Any, thetas: np.ndarray, key: jax.Array, runs: int = 1
) -> np.ndarray:
    """The mean return of ``runs`` whole inner runs (T steps) of every
    theta in ``thetas`` [n, D] (flat, as ``train`` records them). Run i uses
    the same initialisation and minibatches for every theta (common random
    numbers), so differences between thetas are not sampling noise."""
    return inner_rewards(problem, thetas, key, runs)[0].sum(-1).mean(-1)


def inner_rewards(problem: Any, thetas: np.ndarray, key: jax.Array, runs: int = 1):
    """Per step rewards [n, runs, T] of whole inner runs, as
    ``inner_returns``, and the final inner states ([runs, n, ...])."""
    unravel = ravel_pytree(problem.init_params(jax.random.key(0)))[1]
    rewards, states = _jitted_rewards(
        problem, jax.vmap(unravel)(jnp.asarray(thetas)), key, runs
    )
    return np.asarray(rewards), states


def _rewards(problem, params, key, runs: int):
    init_key, step_key = jax.random.split(key)
    n = jax.tree.leaves(params)[0].shape[0]

    def one_run(run):
        state = problem.init(jax.random.fold_in(init_key, run))
        states = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), state)
        keys = jax.random.split(jax.random.fold_in(step_key, run), problem.horizon)

        def step(states, k):
            states, reward, _ = jax.vmap(problem.step, in_axes=(0, 0, None))(
                params, states, k
            )
            return states, reward

        return jax.lax.scan(step, states, keys)  # [n, ...], [T, n]

    final, rewards = jax.lax.map(one_run, jnp.arange(runs))
    return jnp.transpose(rewards, (2, 0, 1)), final


_jitted_rewards = jax.jit(_rewards, static_argnums=(0, 3))
