"""Counting XLA compilations in a block, as JAX reports them."""

import contextlib

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
# A program read from the persistent compilation cache (tests/conftest.py)
# was compiled all the same, in an earlier run: it counts.
CACHE_READ = "/jax/compilation_cache/cache_retrieval_time_sec"


@contextlib.contextmanager
def compiles():
    """The names of the functions compiled inside the block."""
    names = []

    def listen(event, duration, **kwargs):
        if event in (BACKEND_COMPILE, CACHE_READ):
            names.append(kwargs.get("fun_name", "(from the persistent cache)"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
