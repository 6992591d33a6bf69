"""Does a clip of the outer gradient, relative to its running scale, help
PES on ``hyperparams_digits``? (Issue: rewards are divided by T, so a
fixed clip never fires.)

The estimate's global norm is clipped to ``c`` times an exponential mean
(decay 0.9) of the norms before it, ahead of the preset's Adam 0.03 ->
0.003; everything else is ``hyperparams_digits.py``'s PES run (seeds 3,
5, 7, 11, 200 inner runs, the final theta's meta-objective on 10 fresh
inner runs). ``--clip 0`` is that script's PES run. A clip is a nonlinear
function of the estimate: the clipped step's mean is no longer the
gradient's direction and length, so it trades bias for variance.

    python experiments/outer_clip_digits.py --clip 2   # ~8 min on 2 cores
"""

import argparse
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from hyperparams_digits import PRESET, SEEDS, SETTINGS, final_val_loss
from meta_common import train

from pes_rl.core.config import expected_windows
from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.digits import HyperparamsDigits


class ClipState(NamedTuple):
    scale: jax.Array  # running mean of the estimate's norm
    count: jax.Array


def relative_clip(factor: float, decay: float = 0.9) -> optax.GradientTransformation:
    def init(params):
        return ClipState(jnp.zeros(()), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        norm = optax.global_norm(updates)
        limit = jnp.where(state.count > 0, factor * state.scale, jnp.inf)
        shrink = jnp.minimum(1.0, limit / jnp.maximum(norm, 1e-12))
        scale = jnp.where(
            state.count > 0, decay * state.scale + (1 - decay) * norm, norm
        )
        clipped = jax.tree.map(lambda g: g * shrink, updates)
        return clipped, ClipState(scale, state.count + 1)

    return optax.GradientTransformation(init, update)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=float, default=2.0, help="0: no clip")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    problem = HyperparamsDigits(horizon=1000)
    budget = 200 * problem.horizon
    windows = expected_windows(
        budget, SETTINGS["num_particles"], SETTINGS["truncation_length"]
    )
    step = LinearDecay(PRESET["learning_rate"], PRESET["learning_rate_final"], windows)
    outer = optax.adam(step)
    if args.clip > 0:
        outer = optax.chain(relative_clip(args.clip), outer)
    settings = SETTINGS | {"optimizer": outer}
    finals = [
        train("PES", problem, s, budget, **settings)["theta"][-1] for s in args.seeds
    ]
    losses, meta = final_val_loss(problem, np.array(finals), jax.random.key(8))
    print(
        f"PES, clip {args.clip}: meta-objective per seed {np.round(meta, 4)}, "
        f"mean {meta.mean():.4f}; final validation loss {np.round(losses, 4)}"
    )


if __name__ == "__main__":
    main()
