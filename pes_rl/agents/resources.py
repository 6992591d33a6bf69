"""Memory estimates before allocating: sizes this machine cannot hold are
refused with one line holding the estimate, rather than swapping or being
killed part way through building an agent."""

import math
import numbers
import os
import tracemalloc
from collections.abc import Callable
from typing import Any

from pes_rl.errors import ConfigError

FLOAT32_BYTES = 4
# Copies of the per-particle parameters [N, D] alive at once in an update:
# the perturbations, the particles' parameters and PES's accumulated noise.
PARTICLE_COPIES = 3
# Of the mean: theta, its gradient, and up to two optimiser moments (Adam).
MEAN_COPIES = 4


def available_bytes() -> int | None:
    """Memory this machine can still give (Linux's MemAvailable), or None
    where it cannot tell."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(size: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def check_fits(what: str, estimate: float) -> None:
    """ConfigError when ``estimate`` bytes (for ``what``) exceed the memory
    available now."""
    available = available_bytes()
    if available is not None and estimate > available:
        raise ConfigError(
            f"{what} need about {format_bytes(estimate)}, more than the "
            f"{format_bytes(available)} of memory available"
        )


def parameter_bytes(num_params: int, num_particles: int) -> int:
    """A lower bound on what the parameters of the mean and the particles
    take during an update."""
    copies = PARTICLE_COPIES * num_particles + MEAN_COPIES
    return FLOAT32_BYTES * num_params * copies


def check_parameters(num_params: int, num_particles: int) -> None:
    check_fits(
        f"{num_particles} particles of {num_params:,} parameters",
        parameter_bytes(num_params, num_particles),
    )


def resident_bytes() -> int | None:
    """This process's resident memory (Linux), or None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def bytes_per_env(make_env: Callable[[], Any], probes: int = 2) -> float:
    """Memory per env over ``probes`` envs built after a first one (which
    pays for imports and caches): the growth of this process's resident
    size (C libraries' memory, such as MuJoCo's) or of Python's allocations
    (below a page), whichever is larger."""
    first = make_env()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    traced = tracemalloc.get_traced_memory()[0]
    resident = resident_bytes()
    envs = [make_env() for _ in range(probes)]
    traced = tracemalloc.get_traced_memory()[0] - traced
    if resident is not None and (now := resident_bytes()) is not None:
        resident = now - resident
    if not tracing:
        tracemalloc.stop()
    for env in [first, *envs]:
        env.close()
    return max(0.0, traced / probes, (resident or 0) / probes)


def tree_bytes(shapes: Any) -> int:
    """Bytes of a pytree of arrays or ``jax.ShapeDtypeStruct``s."""
    import jax

    return sum(
        math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes)
    )


def check_evaluation_size(num_episodes: Any, env_bytes: float) -> None:
    """ConfigError unless ``num_episodes`` is a positive integer whose
    evaluation envs (one per episode) fit in memory."""
    if (
        isinstance(num_episodes, bool)
        or not isinstance(num_episodes, numbers.Integral)
        or num_episodes <= 0
    ):
        raise ConfigError(
            f"num_episodes must be a positive integer, got {num_episodes!r}"
        )
    check_fits(
        f"{num_episodes} evaluation episodes (an env each, about "
        f"{format_bytes(env_bytes)} per env)",
        num_episodes * env_bytes,
    )
