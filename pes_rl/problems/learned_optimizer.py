"""Meta-training a learned optimiser: a small MLP applied to every
parameter of an inner model (Metz et al., "Understanding and correcting
pathologies in the training of learned optimizers", ICML 2019; the PES
paper's learned-optimiser experiment).

The tasks: a digits MLP (64-H-10, scikit-learn's bundled digits, see
``pes_rl.problems.digits``) with a hidden width H drawn from ``widths`` and
a random initialisation, trained for T steps on minibatches. Theta is the
optimiser: for each parameter it reads the gradient, momenta at three
timescales, the parameter (each divided by its root mean square over the
tensor), Adam's bias-corrected ratio m / sqrt(v) (scale-free already) and
the fraction of training done, and proposes the step

    -exp(ln s0 + c_lr * theta_lr + c_out * m) * (skip . f + c_out * d)

where (d, m) are the MLP's two outputs. It starts with ``skip`` on the
Adam ratio, the MLP's last layer at zero and s0 = 1e-3: Adam with a
learning rate of 1e-3, a working optimiser, with tuned Adam (ln 32 away)
along one meta-parameter.

The two scales set how far one unit of theta moves the step, and so how
far an outer optimiser whose updates have a fixed size (Adam) and a fixed
perturbation sigma can take it. ``step_scale`` c_lr multiplies the log
step's meta-parameter: Adam's few thousand outer updates move a
meta-parameter by a few units, so with c_lr = 1 a tuned step 30x larger
than s0 (ln 30 = 3.4) is out of reach; at 10 it is reachable, and sigma
perturbs the log step by 10 sigma. ``output_scale`` c_out damps the MLP's
outputs (learned_optimization's ``mlp_lopt`` multiplies them by 1e-3), so
a perturbation of its weights changes each parameter's step by a few
per cent, not by a factor e per unit.

Options: ``objective`` train_loss (the minibatch's loss before the step)
or val_loss (a validation minibatch's loss after it), bounded by
``digits.bounded``; ``fixed_tasks`` trains on one task and one sequence of
minibatches (drawn from ``task_seed``, the keys ignored), as NRES's
learned-optimiser code does, instead of a new task per run.
"""

from typing import Any

import jax
import jax.numpy as jnp

from pes_rl.problems.digits import WORST_LOSS, DigitsTraining, advance, bounded

MOMENTUM_DECAYS = (0.5, 0.9, 0.99)
SECOND_MOMENT_DECAY = 0.999
FEATURES = ("grad", "m0.5", "m0.9", "m0.99", "adam", "param", "progress")
ADAM_FEATURE = FEATURES.index("adam")
OBJECTIVES = ("train_loss", "val_loss")


def masked_logits(layers: list, mask: jax.Array, x: jax.Array) -> jax.Array:
    hidden = jax.nn.relu(x @ layers[0]["w"] + layers[0]["b"]) * mask
    return hidden @ layers[1]["w"] + layers[1]["b"]


def masked_loss(layers: list, mask: jax.Array, x: jax.Array, y: jax.Array):
    log_probs = jax.nn.log_softmax(masked_logits(layers, mask, x))
    return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean()


class LearnedOptimizer:
    """``hidden``: the optimiser MLP's two hidden layers (442 meta-parameters
    at 16). ``widths``: the range of the task's hidden width (inclusive);
    units above it are masked out, so every task has the same shapes.
    ``initial_step``, ``step_scale``, ``output_scale``: s0, c_lr, c_out
    above."""

    def __init__(
        self,
        horizon: int = 1000,
        hidden: int = 16,
        widths: tuple[int, int] = (16, 64),
        batch_size: int = 64,
        objective: str = "train_loss",
        fixed_tasks: bool = False,
        task_seed: int = 0,
        initial_step: float = 1e-3,
        step_scale: float = 10.0,
        output_scale: float = 0.1,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}"
            )
        if not (initial_step > 0 and step_scale > 0 and output_scale > 0):
            raise ValueError("initial_step, step_scale and output_scale must be > 0")
        self.horizon, self.hidden, self.widths = horizon, hidden, tuple(widths)
        self.objective, self.fixed_tasks = objective, bool(fixed_tasks)
        self.task_key = jax.random.key(task_seed)
        self.initial_step, self.step_scale = initial_step, step_scale
        self.output_scale = output_scale
        sizes = (64, self.widths[1], 10)
        self.training = DigitsTraining(horizon, sizes, "train_loss", batch_size)

    def init_params(self, key: jax.Array) -> dict[str, Any]:
        """The MLP's hidden layers random, its output layer zero; the skip
        weights pick the Adam ratio; a step of ``initial_step``."""
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
        return {"mlp": layers, "skip": skip, "log_step": jnp.zeros(())}

    def init(self, key: jax.Array) -> dict[str, Any]:
        if self.fixed_tasks:
            key = self.task_key
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
        out = (x @ params["mlp"][-1]["w"] + params["mlp"][-1]["b"]) * self.output_scale
        direction = features @ params["skip"] + out[..., 0]
        log_step = jnp.log(self.initial_step) + self.step_scale * params["log_step"]
        log_scale = jnp.clip(log_step + out[..., 1], -20.0, 2.0)
        return -jnp.exp(log_scale) * direction

    def step(self, params: dict, state: dict, key: jax.Array):
        if self.fixed_tasks:
            key = jax.random.fold_in(self.task_key, state["t"])
        x, y = self.training.batch(key, "train")
        loss, grads = jax.value_and_grad(masked_loss)(
            state["layers"], state["mask"], x, y
        )
        layers, momenta, second = self.update(params, state, grads)
        if self.objective == "val_loss":
            x_val, y_val = self.training.batch(jax.random.fold_in(key, 1), "val")
            score = bounded(masked_loss(layers, state["mask"], x_val, y_val))
        else:
            score = bounded(loss)
        new = {"layers": layers, "momenta": momenta, "second_moment": second}
        return advance(state, new, loss, -score, -WORST_LOSS, self.horizon)

    def update(self, params: dict, state: dict, grads: list):
        """The layers after one step of the learned optimiser, and its
        updated momenta and second moment."""
        momenta = [
            jax.tree.map(lambda m, g, b=decay: b * m + (1 - b) * g, moment, grads)
            for decay, moment in zip(MOMENTUM_DECAYS, state["momenta"], strict=True)
        ]
        b2 = SECOND_MOMENT_DECAY
        second = jax.tree.map(
            lambda v, g: b2 * v + (1 - b2) * g**2, state["second_moment"], grads
        )
        progress = state["t"] / self.horizon
        count = state["t"] + 1  # Adam's bias corrections
        first_fix = 1 - MOMENTUM_DECAYS[1] ** count
        second_fix = 1 - b2**count

        def update(p, g, m1, m2, m3, v):
            adam = (m2 / first_fix) / (jnp.sqrt(v / second_fix) + 1e-8)
            raw = jnp.stack([g, m1, m2, m3, adam, p], axis=-1)
            rms = jnp.sqrt(jnp.mean(raw**2, axis=tuple(range(p.ndim))) + 1e-12)
            rms = rms.at[ADAM_FEATURE].set(1.0)  # Adam's ratio is scale-free
            time = jnp.broadcast_to(progress, p.shape)[..., None]
            features = jnp.concatenate([raw / rms, time], axis=-1)
            return p + self.propose(params, features)

        layers = jax.tree.map(update, state["layers"], grads, *momenta, second)
        return layers, momenta, second
