"""Reaching Ray: the lazy import, and joining or starting a cluster with
clear errors where Ray itself would hang or wait."""

import os
import socket
import sys
import time
import warnings

from pes_rl.errors import ConfigError, MissingDependencyError


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            'Ray workers need Ray: pip install "pes_rl[ray]" (or -e ".[ray]")'
        ) from None
    return ray


def connect(ray, address: str | None, num_workers: int) -> None:
    """Join the cluster at ``address`` ("auto": the one running here), or
    start Ray on this machine; a running session is used as it is. Each
    worker holds one CPU."""
    if not ray.is_initialized():
        _init(ray, address, num_workers)
    deadline = time.monotonic() + 10  # CPUs of just-closed workers come back
    while (free := ray.available_resources().get("CPU", 0)) < num_workers:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if free < num_workers:  # the workers would wait for CPUs forever
        raise ConfigError(
            f"the Ray cluster has {free:g} free CPUs for {num_workers} workers "
            "(one CPU each): add nodes, or use fewer workers"
        )


def _init(ray, address: str | None, num_workers: int) -> None:
    options = {"include_dashboard": False, "log_to_driver": False}
    # Ray starts its daemons with fork + exec, which is safe under JAX's threads.
    warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
    if address is None:
        # Workers import what this process can (an env module of the cwd).
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        ray.init(
            num_cpus=max(num_workers, os.cpu_count() or 1),
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            **options,
        )
    else:
        if address != "auto":
            _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as err:
            raise ConfigError(f"--ray-address {address}: {err}") from None


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Ray retries an unreachable address for minutes: fail fast instead."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError):
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster answers there (HOST:PORT "
            "of the head node's GCS, 6379 by default, or auto)"
        ) from None
