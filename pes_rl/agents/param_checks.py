"""Checks on a policy's or Problem's parameters before anything is
compiled: they fit in memory, they initialise, and obs_norm can
re-express them."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pes_rl.agents.resources import check_parameters, tree_bytes
from pes_rl.core.normalization import first_layer, reexpress_params
from pes_rl.core.policies import carry_layout
from pes_rl.errors import ConfigError


def parameter_shapes(init: Callable, key) -> Any:
    """theta's shapes without computing it; None if ``init`` cannot be traced
    (``initialise`` then reports what is wrong, if anything)."""
    try:
        return jax.eval_shape(init, key)
    except Exception:
        return None


def check_parameter_memory(shapes: Any, num_particles: int) -> None:
    """Refuse parameters too many to hold, from their shapes alone."""
    if shapes is not None:
        check_parameters(tree_bytes(shapes) // 4, num_particles)


def state_bytes(problem, streams) -> float:
    """One inner run's state (an env's, for Brax): what each evaluation
    episode holds on the jitted engine."""
    try:
        return float(tree_bytes(jax.eval_shape(problem.init, streams.init)))
    except Exception:
        return 0.0


def check_reexpressible(module, problem, params, obs_dim: int) -> None:
    """obs_norm moves the statistics by re-expressing the first layer
    (``Dense_0``); refuse a policy whose outputs that would change, such as
    one reading the observation elsewhere too."""
    message = (
        "obs_norm needs a policy whose only reader of the observation is a "
        "first Dense layer named Dense_0 (as the linear and mlp policies): the "
        "agent re-expresses it when the statistics change"
    )
    layer = first_layer(params)
    if layer is None or layer["kernel"].shape[0] != obs_dim:
        raise ConfigError(message)
    if module is None:  # a Problem: its step reads the observation
        return
    keys = jax.random.split(jax.random.key(0), 5)
    obs = jax.random.normal(keys[0], (8, obs_dim))
    old = (
        jax.random.normal(keys[1], (obs_dim,)),
        jnp.exp(jax.random.normal(keys[2], (obs_dim,))),
    )
    new = (
        jax.random.normal(keys[3], (obs_dim,)),
        jnp.exp(jax.random.normal(keys[4], (obs_dim,))),
    )
    if "bias" not in layer:  # scaled, not centred
        old, new = (old[0] * 0, old[1]), (new[0] * 0, new[1])
    params = jax.tree.map(lambda x: x + 0.1, params)  # not all zero
    layout = carry_layout(module, obs_dim)
    if layout.unravel is None:
        apply = jax.vmap(module.apply, in_axes=(None, 0))  # one observation at a time
    else:
        carry = layout.unravel(layout.initial)
        apply = jax.vmap(lambda p, o: module.apply(p, carry, o), in_axes=(None, 0))
    before = apply(params, (obs - old[0]) * old[1])
    after = apply(reexpress_params(params, old, new), (obs - new[0]) * new[1])
    close = jax.tree.map(
        lambda a, b: np.allclose(a, b, rtol=1e-3, atol=1e-3), before, after
    )
    if not all(jax.tree.leaves(close)):
        raise ConfigError(message)


def initialise(init: Callable, *args):
    try:
        return init(*args)
    except Exception as err:
        raise ConfigError(f"the parameters cannot be initialised: {err}") from err
