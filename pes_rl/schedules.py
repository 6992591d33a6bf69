"""Schedules for sigma and the learning rate: a picklable, hashable value
that optax and the estimators call with a step count."""

from dataclasses import dataclass

import jax.numpy as jnp


@dataclass(frozen=True)
class LinearDecay:
    """From ``start`` to ``end`` linearly over ``steps`` counts, then ``end``.

    Counts are optimiser updates for a learning rate and windows (warm-up
    included) for sigma. Without ``steps`` the decay is sized by the agent's
    first ``learn`` call (the windows its budget buys) and is ``start``
    until then."""

    start: float
    end: float
    steps: int | None = None

    def __call__(self, count):
        if self.steps is None:
            return jnp.full(jnp.shape(count), self.start, jnp.float32)
        fraction = jnp.clip(count / self.steps, 0.0, 1.0)
        return self.start + fraction * (self.end - self.start)
