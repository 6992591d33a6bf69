"""The random streams of a run, split once from the root key.

Each stream has one use: ``init`` the policy's initial parameters, ``noise``
the perturbations (split once per window), ``resets`` the environments' reset
seeds or keys. ``evaluation`` is the same for every training seed, so that
evaluation curves of different runs start from the same states; it is derived
by a path no training stream takes. Under JAX's threefry,
``split(key, n)[i] == fold_in(key, i)``, so streams are never made with both.
"""

from typing import NamedTuple

import jax
import numpy as np

# Evaluation episode i starts from fold_in(evaluation, i) (Brax) or from reset
# seed EVAL_SEED + i (Gymnasium), whatever the training seed.
EVAL_SEED = 1_000_000
_EVALUATION_TAG = 0x5EED_E7A1  # fold_in(key(0), tag): a path training never takes


class KeyStreams(NamedTuple):
    init: jax.Array
    noise: jax.Array
    resets: jax.Array
    evaluation: jax.Array


def key_streams(seed: int) -> KeyStreams:
    init, noise, resets = jax.random.split(jax.random.key(seed), 3)
    evaluation = jax.random.fold_in(jax.random.key(0), _EVALUATION_TAG)
    return KeyStreams(init=init, noise=noise, resets=resets, evaluation=evaluation)


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded from a key (the Gymnasium backend's resets)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)))
