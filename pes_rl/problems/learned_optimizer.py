"""Meta-training a learned optimiser: a small MLP applied to every
parameter of an inner model (Metz et al., "Understanding and correcting
pathologies in the training of learned optimizers", ICML 2019; the PES
paper's learned-optimiser experiment).

The tasks: a digits MLP (64-H-10, scikit-learn's bundled digits, see
``pes_rl.problems.digits``) with a hidden width H drawn from ``widths`` and
a random initialisation, trained for T steps on minibatches. Theta is the
optimiser: for each parameter it reads the gradient, momenta at three
timescales, an Adam-style ratio, the parameter and the fraction of training
done, each feature divided by its root mean square over the tensor, and
proposes a step ``-exp(log_lr + mlp_m) (skip . f + mlp_d)``. It starts as a
normalised Adam with a step of 1e-3 (``skip`` on the Adam ratio, the MLP's
last layer at zero), so meta-training begins from a working optimiser.
The meta-objective is the mean training loss along the run.
"""

from typing import Any

import jax
import jax.numpy as jnp

from pes_rl.problems.digits import WORST_LOSS, DigitsTraining, advance, bounded

MOMENTUM_DECAYS = (0.5, 0.9, 0.99)
SECOND_MOMENT_DECAY = 0.999
FEATURES = ("grad", "m0.5", "m0.9", "m0.99", "adam", "param", "progress")
ADAM_FEATURE = FEATURES.index("adam")


def masked_logits(layers: list, mask: jax.Array, x: jax.Array) -> jax.Array:
    hidden = jax.nn.relu(x @ layers[0]["w"] + layers[0]["b"]) * mask
    return hidden @ layers[1]["w"] + layers[1]["b"]


def masked_loss(layers: list, mask: jax.Array, x: jax.Array, y: jax.Array):
    log_probs = jax.nn.log_softmax(masked_logits(layers, mask, x))
    return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean()


class LearnedOptimizer:
    """``hidden``: the optimiser MLP's two hidden layers (434 meta-parameters
    at 16). ``widths``: the range of the task's hidden width (inclusive);
    units above it are masked out, so every task has the same shapes."""

    def __init__(
        self,
        horizon: int = 1000,
        hidden: int = 16,
        widths: tuple[int, int] = (16, 64),
        batch_size: int = 64,
    ):
        self.horizon, self.hidden, self.widths = horizon, hidden, tuple(widths)
        sizes = (64, self.widths[1], 10)
        self.training = DigitsTraining(horizon, sizes, "train_loss", batch_size)

    def init_params(self, key: jax.Array) -> dict[str, Any]:
        """The MLP's hidden layers random, its output layer zero; the skip
        weights pick the Adam ratio; a step of 1e-3."""
        sizes = (len(FEATURES), self.hidden, self.hidden)
        keys = jax.random.split(key, len(sizes) - 1)
        layers = [
            {
                "w": jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in),
                "b": jnp.zeros(n_out),
            }
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]
        layers.append({"w": jnp.zeros((self.hidden, 2)), "b": jnp.zeros(2)})
        skip = jnp.zeros(len(FEATURES)).at[ADAM_FEATURE].set(1.0)
        return {"mlp": layers, "skip": skip, "log_lr": jnp.log(1e-3)}

    def init(self, key: jax.Array) -> dict[str, Any]:
        width_key, init_key = jax.random.split(key)
        low, high = self.widths
        width = jax.random.randint(width_key, (), low, high + 1)
        layers = self.training.init(init_key)["layers"]
        zeros = jax.tree.map(jnp.zeros_like, layers)
        return {
            "layers": layers,
            "mask": (jnp.arange(high) < width).astype(jnp.float32),
            "momenta": [zeros] * len(MOMENTUM_DECAYS),
            "second_moment": zeros,
            "t": jnp.zeros((), jnp.int32),
            "diverged": jnp.zeros((), bool),
        }

    def propose(self, params: dict, features: jax.Array) -> jax.Array:
        """The step for parameters with ``features`` [..., F]."""
        x = features
        for layer in params["mlp"][:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        out = x @ params["mlp"][-1]["w"] + params["mlp"][-1]["b"]
        direction = features @ params["skip"] + out[..., 0]
        log_scale = jnp.clip(params["log_lr"] + out[..., 1], -20.0, 2.0)
        return -jnp.exp(log_scale) * direction

    def step(self, params: dict, state: dict, key: jax.Array):
        x, y = self.training.batch(key, "train")
        loss, grads = jax.value_and_grad(masked_loss)(
            state["layers"], state["mask"], x, y
        )
        momenta = [
            jax.tree.map(lambda m, g, b=decay: b * m + (1 - b) * g, moment, grads)
            for decay, moment in zip(MOMENTUM_DECAYS, state["momenta"], strict=True)
        ]
        b2 = SECOND_MOMENT_DECAY
        second = jax.tree.map(
            lambda v, g: b2 * v + (1 - b2) * g**2, state["second_moment"], grads
        )
        progress = state["t"] / self.horizon

        def update(p, g, m1, m2, m3, v):
            adam = m2 / (jnp.sqrt(v) + 1e-8)
            raw = jnp.stack([g, m1, m2, m3, adam, p], axis=-1)
            rms = jnp.sqrt(jnp.mean(raw**2, axis=tuple(range(p.ndim))) + 1e-12)
            time = jnp.broadcast_to(progress, p.shape)[..., None]
            features = jnp.concatenate([raw / rms, time], axis=-1)
            return p + self.propose(params, features)

        layers = jax.tree.map(update, state["layers"], grads, *momenta, second)
        new = {"layers": layers, "momenta": momenta, "second_moment": second}
        return advance(state, new, loss, -bounded(loss), -WORST_LOSS, self.horizon)
