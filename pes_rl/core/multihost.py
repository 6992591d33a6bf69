"""Multi-process JAX (``jax.distributed.initialize``): every process runs the
same program on the same values, and the jitted engine's arrays span every
process's devices.

Such an array cannot be made with ``jax.device_put`` of a committed array or
a typed key, nor read on the host where it is split over other processes'
devices. ``to_global`` builds it from the value every process holds (numpy,
keys as key data); ``to_host`` gathers it. Both are collective where an array
spans other processes: every process must call them, in the same order. With
one process both are what they replace (``jax.device_put``,
``jax.device_get``), so single-process runs are unchanged bit for bit.
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


def is_main_process() -> bool:
    """Process 0, the one that writes files (always true with one process)."""
    return jax.process_index() == 0


def _spread(x: Any) -> bool:
    """An array on devices of other processes too."""
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def to_global(x: Any, sharding: jax.sharding.Sharding) -> jax.Array:
    """``x`` (an array, a typed key, numpy; the same value on every process)
    placed on ``sharding``."""
    if sharding.is_fully_addressable:
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x  # as device_put would, without its 45 us per leaf
        return jax.device_put(x, sharding)
    if _spread(x):  # already global: kept, or resharded on the devices
        if x.sharding == sharding:
            return x
        return jax.jit(_identity, out_shardings=sharding)(x)
    if _is_key(x):
        data = to_global(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    value = np.asarray(x)
    return jax.make_array_from_callback(
        value.shape, sharding, lambda index: value[index]
    )


def _identity(tree):
    return tree


def _replicated(sharding: jax.sharding.Sharding) -> jax.sharding.Sharding:
    if isinstance(sharding, NamedSharding):
        return sharding.update(spec=PartitionSpec())
    return jax.sharding.GSPMDSharding.get_replicated(sharding._device_assignment)


def to_host(tree: Any) -> Any:
    """``jax.device_get(tree)``; arrays split over other processes' devices
    are first gathered (one collective for the whole tree; replicated ones
    are read here)."""
    leaves, treedef = jax.tree.flatten(tree)
    for i, x in enumerate(leaves):
        if _spread(x) and x.is_fully_replicated:  # this process has it all
            leaves[i] = x.addressable_data(0)
    spread = [i for i, x in enumerate(leaves) if _spread(x)]
    if spread:
        gathered = jax.jit(
            _identity, out_shardings=[_replicated(leaves[i].sharding) for i in spread]
        )([leaves[i] for i in spread])
        for i, x in zip(spread, gathered, strict=True):
            leaves[i] = x.addressable_data(0)
    return jax.device_get(jax.tree.unflatten(treedef, leaves))


def any_process(flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (a collective with
    more than one process): decisions made from a process's own clock or
    signals, taken together."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
    return bool(np.any(flags))


def check_same(value: Any, what: str) -> None:
    """Refuse to go on where processes hold different ``value`` (a
    collective with more than one process)."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    multihost_utils.assert_equal(
        value, fail_message=f"the processes hold different {what}"
    )
