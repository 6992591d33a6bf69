import os
from pathlib import Path

import jax
import pytest

from pes_rl.agents import PES

# XLA compilation is about two thirds of the integration tier's time. JAX's
# persistent compilation cache keeps the compiled programs in this checkout
# (.jax_cache, ignored by git) for the next run: the same executables, so
# the same numbers. A fresh clone starts cold. Set JAX_COMPILATION_CACHE_DIR
# to move it. A size limit turns on the cache's file lock, which the
# pytest-xdist workers need. Only this process uses it: reading an entry
# logs an XLA warning on stderr, which the CLI's subprocess tests check.
CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(
    Path(__file__).resolve().parents[1] / ".jax_cache"
)
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
jax.config.update("jax_compilation_cache_max_size", 2**30)

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_configure(config):
    """A session of the unit and integration tiers alone compiles with
    LLVM's optimisation off: XLA compiles about 4x faster, and compiling
    is most of these tiers' time. The numbers move in the last bits, and
    no test of these tiers compares against numbers stored from an
    optimised build. A session that includes e2e compiles as users do: it
    reproduces stored results and starts CLI subprocesses, which inherit
    the environment. The variable is read when JAX first starts its
    backend, after this hook."""
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if any(path.is_relative_to(E2E) or E2E.is_relative_to(path) for path in paths):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()


@pytest.fixture
def lq_pes():
    """A small PES agent on the linear-quadratic toy task."""

    def make(**kwargs):
        settings = dict(
            env="linear_quadratic",
            num_particles=8,
            truncation_length=5,
            sigma=0.1,
            learning_rate=0.005,
            fitness_shaping="std",
            seed=0,
        )
        return PES(**{**settings, **kwargs})

    return make
