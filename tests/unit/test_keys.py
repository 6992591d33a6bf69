"""Random streams: split once from the root, never sharing a key."""

import jax
import numpy as np
import pytest

from pes_rl.agents import PES
from pes_rl.core.keys import EVAL_SEED, key_streams


def handed_out(key: jax.Array, count: int) -> list[jax.Array]:
    """The keys a stream hands out and carries when split once per use."""
    keys = []
    for _ in range(count):
        key, used = jax.random.split(key)
        keys += [key, used]
    return keys


def distinct(keys: list[jax.Array]) -> bool:
    data = {tuple(np.asarray(jax.random.key_data(k)).tolist()) for k in keys}
    return len(data) == len(keys)


@pytest.mark.parametrize("seed", [0, 3, EVAL_SEED])
def test_named_streams_share_no_key(seed):
    streams = key_streams(seed)
    evaluation = [jax.random.fold_in(streams.evaluation, i) for i in range(50)]
    keys = [streams.init, *handed_out(streams.noise, 50)]
    keys += [*handed_out(streams.resets, 50), streams.evaluation, *evaluation]
    assert distinct(keys)


def test_brax_perturbations_and_resets_use_separate_streams():
    agent = PES(
        env="linear_quadratic", num_particles=4, truncation_length=5, backend="brax"
    )
    # The agent splits its noise key once per window, its reset key once per
    # reset and its step key (for problems' minibatches) once per window: the
    # chains must never meet.
    carry = agent.loop.carry
    keys = handed_out(agent.key, 50) + handed_out(carry.key, 50)
    assert distinct(keys + handed_out(carry.step_key, 50))
