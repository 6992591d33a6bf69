import os
from pathlib import Path

import pytest

# XLA compilation is about two thirds of the integration tier's time. JAX's
# persistent compilation cache keeps the compiled programs in this checkout
# (.jax_cache, ignored by git) for the next run: the same executables, so
# the same numbers. A fresh clone starts cold. Set JAX_COMPILATION_CACHE_DIR
# to move it. A size limit turns on the cache's file lock, which the
# pytest-xdist workers need. Only the processes that run tests use it:
# reading an entry logs an XLA warning on stderr, which the CLI's subprocess
# tests check.
CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(
    Path(__file__).resolve().parents[1] / ".jax_cache"
)


def _use_compilation_cache() -> None:
    import jax

    jax.config.update("jax_compilation_cache_dir", CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_compilation_cache_max_size", 2**30)


E2E = Path(__file__).resolve().parent / "e2e"
# LLVM at -O0 (about 4x faster compiles); the older CPU emitters compile
# about twice as fast again as the fusion emitters on these small programs.
FAST_COMPILE = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
)


def pytest_configure(config):
    """A session of the unit and integration tiers alone compiles with
    LLVM's optimisation and XLA's fusion emitters off (``FAST_COMPILE``):
    XLA compiles several times faster, and compiling is most of these
    tiers' time. The numbers move in the last bits, and
    no test of these tiers compares against numbers stored from an
    optimised build. A session that includes e2e compiles as users do: it
    reproduces stored results and starts CLI subprocesses, which inherit
    the environment. The variable is read when JAX first starts its
    backend, after this hook. The pytest-xdist controller runs no test: it
    imports neither JAX nor the library, and starts its workers sooner."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        _use_compilation_cache()
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if any(path.is_relative_to(E2E) or E2E.is_relative_to(path) for path in paths):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in FAST_COMPILE:
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    os.environ["XLA_FLAGS"] = flags


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist the tests of one module run on one worker: they
    share what they build (samples, exact gradients, compiled engines)
    through caches of that process. End-to-end tests start subprocesses,
    Ray clusters and multi-host runs with fixed CPU counts: they run one at
    a time, on one worker. (pytest 9 ignores xdist_group marks.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return "e2e" if path.startswith("tests/e2e/") else path

    return ByModule(config, log)


@pytest.fixture
def lq_pes():
    """A small PES agent on the linear-quadratic toy task."""

    from pes_rl.agents import PES

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
