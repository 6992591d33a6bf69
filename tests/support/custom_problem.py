"""A user's own Problem, in its own file: noisy linear regression trained by
SGD, whose log learning rate is the one parameter meta-learned. Minibatch
noise comes from the step key, so pair members see the same data."""

import jax
import jax.numpy as jnp


class NoisyRegression:
    horizon = 20

    def init_params(self, key):
        return jnp.array([-3.0])  # log learning rate

    def init(self, key):
        return jnp.zeros(2)

    def step(self, params, weights, key):
        inputs = jax.random.normal(key, (8, 2))
        targets = inputs @ jnp.array([1.0, -2.0])

        def loss(w):
            return jnp.mean((inputs @ w - targets) ** 2)

        weights = weights - jnp.exp(params[0]) * jax.grad(loss)(weights)
        return weights, -loss(weights), jnp.zeros((), bool)


def make(**kwargs):
    return NoisyRegression(**kwargs)
