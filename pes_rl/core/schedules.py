"""Schedules for sigma and the learning rate.

``LinearDecay`` is how a user declares one: a picklable, hashable value.
``Rate`` is the same schedule as arrays, which the training state carries,
so that the jitted update takes sigma and the learning rate as inputs: a
sweep over their values, or a decay sized later, compiles once. Both count
optimiser updates taken (``Hyperparams.updates`` in ``pes_rl.core.train_state``).
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@dataclass(frozen=True)
class LinearDecay:
    """From ``start`` to ``end`` linearly over ``steps`` counts, then ``end``.

    Counts are optimiser updates taken, for sigma and the learning rate
    alike (the windows of the staggered warm-up take none: they run at
    ``start``). Without ``steps`` the decay is sized by the agent's first
    ``learn`` call (the updates its budget buys) and is ``start`` until
    then."""

    start: float
    end: float
    steps: int | None = None

    def __call__(self, count):
        return as_rate(self).at(count)


@struct.dataclass
class Rate:
    """``start + clip(count * per_count, 0, 1) * change``: a number
    (``change`` 0) or a ``LinearDecay`` as float32 arrays.

    ``change`` is taken in float64 and ``per_count`` (1 / steps) in float32 on
    the host, as XLA folded them when the decay was a compiled-in constant,
    so a traced rate gives the same numbers bit for bit."""

    start: jax.Array  # [] float32
    change: jax.Array  # [] float32, end - start
    per_count: jax.Array  # [] float32, 1 / steps; 0 until a decay is sized

    def at(self, count) -> jax.Array:
        fraction = jnp.clip(count * self.per_count, 0.0, 1.0)
        return self.start + fraction * self.change


def as_rate(value) -> Rate:
    """A number or a ``LinearDecay`` as a ``Rate``; any other schedule (a
    callable) is compiled in instead and its ``Rate`` is unused (zeros)."""
    if isinstance(value, LinearDecay):
        start, change = value.start, value.end - value.start
        per_count = 0.0 if value.steps is None else np.float32(1) / value.steps
    elif callable(value):
        start = change = per_count = 0.0
    else:
        start, change, per_count = value, 0.0, 0.0
    return Rate(*(jnp.asarray(np.float32(x)) for x in (start, change, per_count)))


def compiled_in(value):
    """The part of a schedule the update compiles: a callable other than a
    ``LinearDecay``, else None (numbers and decays are traced)."""
    return value if callable(value) and not isinstance(value, LinearDecay) else None
