"""Meta-learning problems on scikit-learn's bundled digits (1,797 8x8
images, a stand-in for MNIST: nothing is downloaded).

- ``LRScheduleDigits``: theta = (log initial learning rate, log decay) of
  the inverse-time decay ``lr_t = e^theta_0 / (1 + t/T)^(e^theta_1)`` for
  SGD with momentum training a 64-100-100-10 MLP (the PES paper's MNIST
  schedule, google-research ``persistent_es/schedule.py``).
- ``HyperparamsDigits``: theta = a log learning rate and a logit momentum
  for each of the 10 parameter blocks (5 weight matrices, 5 bias vectors)
  of an MLP with 4 hidden layers: 20 hyperparameters (the PES paper's
  "tuning many hyperparameters").

A step trains the inner model on one minibatch drawn from the step key,
which the two members of an antithetic pair share, so they see the same
data (and the same initial weights, from the shared reset key). Rewards are
divided by T, so a run's return is the mean of its per-step objective.

Losses are scored within [0, ``WORST_LOSS``] (NaN at the cap), the clip
learned_optimization applies to its meta-losses, so no step scores worse
than divergence. A run that diverges (a training loss above
``DIVERGED_LOSS`` or a non-finite value) ends there with ``done``, charged
the worst score for this step and every step left at once
(``pes_rl.problems.charge_rest``): its total is that of scoring the worst
value to the end, and PES does not weigh a frozen run's later steps by
fresh noise.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pes_rl.errors import ConfigError
from pes_rl.problems import charge_rest

DIVERGED_LOSS = 10.0  # a training loss above it ends the run: about 4x chance's
WORST_LOSS = 1.5 * math.log(10)  # the cap of a step's loss, 10 classes
OBJECTIVES = ("train_loss", "val_accuracy", "val_loss")


@functools.cache
def digits_split(num_val: int = 597, seed: int = 0) -> dict[str, np.ndarray]:
    """The digits shuffled by ``seed``: the first 1,797 - ``num_val`` for
    training, the rest for validation; pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(
            "the digits problems need scikit-learn: pip install 'pes_rl[meta]'"
        ) from None
    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    images = (images[order] / 16.0).astype(np.float32)
    labels = labels[order].astype(np.int32)
    cut = len(labels) - num_val
    return {
        "x_train": images[:cut],
        "y_train": labels[:cut],
        "x_val": images[cut:],
        "y_val": labels[cut:],
    }


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    """He-initialised layers ``{"w": [in, out], "b": [out]}``."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(2.0 / n_in),
            "b": jnp.zeros(n_out),
        }
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_logits(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def cross_entropy(layers, x: jax.Array, y: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(mlp_logits(layers, x))
    return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean()


def accuracy(layers, x: jax.Array, y: jax.Array) -> jax.Array:
    return (mlp_logits(layers, x).argmax(-1) == y).mean()


def all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.array([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


class DigitsTraining:
    """Shared by the digits problems: the data on the device, minibatches
    from a key, the inner run's state and the objective of a step."""

    def __init__(
        self,
        horizon: int,
        sizes: tuple[int, ...],
        objective: str,
        batch_size: int,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}"
            )
        self.horizon, self.sizes = horizon, tuple(sizes)
        self.objective, self.batch_size = objective, batch_size
        self.data = {k: jnp.asarray(v) for k, v in digits_split().items()}

    def batch(self, key: jax.Array, split: str) -> tuple[jax.Array, jax.Array]:
        """``batch_size`` examples of ``split`` (train or val), drawn with
        replacement from ``key``."""
        x, y = self.data[f"x_{split}"], self.data[f"y_{split}"]
        index = jax.random.randint(key, (self.batch_size,), 0, len(y))
        return x[index], y[index]

    def init(self, key: jax.Array) -> dict[str, Any]:
        layers = init_mlp(key, self.sizes)
        return {
            "layers": layers,
            "velocity": jax.tree.map(jnp.zeros_like, layers),
            "t": jnp.zeros((), jnp.int32),
            "diverged": jnp.zeros((), bool),
        }

    def train_step(self, state: dict, key: jax.Array, lr: Any, momentum: Any):
        """One step of SGD with (heavy-ball) momentum; ``lr`` and
        ``momentum`` are scalars or trees like the layers. Returns the new
        state, the reward of the step and whether the run ended."""
        train_key, val_key = jax.random.split(key)
        x, y = self.batch(train_key, "train")
        loss, grads = jax.value_and_grad(cross_entropy)(state["layers"], x, y)
        lr = _broadcast(lr, grads)
        momentum = _broadcast(momentum, grads)
        velocity = jax.tree.map(
            lambda v, g, m: m * v + g, state["velocity"], grads, momentum
        )
        layers = jax.tree.map(lambda p, v, a: p - a * v, state["layers"], velocity, lr)
        if self.objective == "train_loss":
            score, worst = -bounded(loss), -WORST_LOSS
        else:
            x_val, y_val = self.batch(val_key, "val")
            if self.objective == "val_accuracy":
                score, worst = accuracy(layers, x_val, y_val), 0.0
            else:
                score = -bounded(cross_entropy(layers, x_val, y_val))
                worst = -WORST_LOSS
        new = {"layers": layers, "velocity": velocity}
        return advance(state, new, loss, score, worst, self.horizon)


def bounded(loss: jax.Array) -> jax.Array:
    """``loss`` clipped to [0, WORST_LOSS], NaN at the cap."""
    return jnp.where(jnp.isnan(loss), WORST_LOSS, jnp.clip(loss, 0.0, WORST_LOSS))


def advance(
    state: dict, new: dict, loss: jax.Array, score: jax.Array, worst, horizon: int
) -> tuple[dict, jax.Array, jax.Array]:
    """The next state, the reward (divided by ``horizon``) and ``done``.
    The fields in ``new`` replace ``state``'s and the step scores ``score``,
    unless the run diverges now (``loss`` above ``DIVERGED_LOSS``, or
    ``loss`` or the new layers not finite): then the fields keep their old
    values, the step charges ``worst`` for itself and every step left, and
    the run is done. Steps after that change nothing and score nothing."""
    ended = state["diverged"]
    diverges = ~jnp.isfinite(loss) | (loss > DIVERGED_LOSS) | ~all_finite(new["layers"])
    diverged = ended | diverges
    kept = jax.tree.map(
        lambda n, o: jnp.where(diverged, o, n), new, {k: state[k] for k in new}
    )
    reward, done = charge_rest(diverges, score, worst, horizon - state["t"])
    reward = jnp.where(ended, 0.0, reward) / horizon
    state = {**state, **kept, "t": state["t"] + 1, "diverged": diverged}
    return state, reward, done | ended


def _broadcast(value: Any, like: Any) -> Any:
    """A scalar as a tree like ``like``; a tree as it is."""
    if isinstance(value, list | dict):
        return value
    return jax.tree.map(lambda _: value, like)


class LRScheduleDigits:
    """A 64-100-100-10 MLP trained for ``horizon`` steps of SGD with momentum
    0.9 (minibatches of 100) under ``lr_t = e^theta_0 / (1 + t/T)^(e^theta_1)``.
    ``objective``: train_loss (reward minus the minibatch's loss) or
    val_accuracy (the accuracy on a validation minibatch after the step,
    not differentiable)."""

    def __init__(
        self,
        horizon: int = 5000,
        objective: str = "train_loss",
        theta0: tuple[float, float] = (-6.0, 0.0),
        batch_size: int = 100,
        momentum: float = 0.9,
    ):
        self.horizon, self.theta0, self.momentum = horizon, theta0, momentum
        self.training = DigitsTraining(
            horizon, (64, 100, 100, 10), objective, batch_size
        )

    def init_params(self, key: jax.Array) -> jax.Array:
        return jnp.asarray(self.theta0, jnp.float32)

    def init(self, key: jax.Array) -> dict[str, Any]:
        return self.training.init(key)

    def learning_rate(self, params: jax.Array, t: jax.Array) -> jax.Array:
        """Clipped so that a wild theta gives a diverged run, not overflow."""
        initial = jnp.exp(jnp.clip(params[0], -15.0, 5.0))
        decay = jnp.exp(jnp.clip(params[1], -10.0, 5.0))
        return initial / (1.0 + t / self.horizon) ** decay

    def step(self, params: jax.Array, state: dict, key: jax.Array):
        lr = self.learning_rate(params, state["t"])
        return self.training.train_step(state, key, lr, self.momentum)


class HyperparamsDigits:
    """An MLP with 4 hidden layers of ``width`` units trained for
    ``horizon`` steps of SGD with momentum, each of its 10 parameter blocks
    with its own learning rate ``e^theta[i]`` and momentum
    ``sigmoid(theta[10 + i])`` (blocks in order w0, b0, w1, b1, ...). The
    objective is minus the validation loss on a minibatch after each step.
    The initial theta is drawn from ``init_box`` ((low, high) of the log
    learning rate, then of the logit momentum, uniform in each; by default
    ``random_box``, where our random search draws)."""

    random_box = ((np.log(1e-4), np.log(1.0)), (-3.0, 3.0))

    def __init__(
        self,
        horizon: int = 1000,
        width: int = 50,
        objective: str = "val_loss",
        batch_size: int = 100,
        init_box: tuple | None = None,
    ):
        self.horizon = horizon
        self.init_box = self.random_box if init_box is None else init_box
        sizes = (64, width, width, width, width, 10)
        self.training = DigitsTraining(horizon, sizes, objective, batch_size)
        self.num_blocks = 2 * (len(sizes) - 1)

    def init_params(self, key: jax.Array) -> jax.Array:
        return self.sample(key, 1, self.init_box)[0]

    def sample(self, key: jax.Array, count: int, box: tuple | None = None):
        """``count`` thetas drawn uniformly from ``box`` (``random_box``)."""
        (lr_low, lr_high), (m_low, m_high) = box or self.random_box
        lr_key, momentum_key = jax.random.split(key)
        shape = (count, self.num_blocks)
        log_lr = jax.random.uniform(lr_key, shape, minval=lr_low, maxval=lr_high)
        logit = jax.random.uniform(momentum_key, shape, minval=m_low, maxval=m_high)
        return jnp.concatenate([log_lr, logit], axis=1).astype(jnp.float32)

    def hyperparameters(self, params: jax.Array) -> tuple[list, list]:
        """Learning rates and momenta as trees like the layers."""
        lr = jnp.exp(jnp.clip(params[: self.num_blocks], -15.0, 3.0))
        momentum = jax.nn.sigmoid(params[self.num_blocks :])

        def as_layers(values):
            return [
                {"w": values[2 * i], "b": values[2 * i + 1]}
                for i in range(self.num_blocks // 2)
            ]

        return as_layers(lr), as_layers(momentum)

    def init(self, key: jax.Array) -> dict[str, Any]:
        return self.training.init(key)

    def step(self, params: jax.Array, state: dict, key: jax.Array):
        lr, momentum = self.hyperparameters(params)
        return self.training.train_step(state, key, lr, momentum)
