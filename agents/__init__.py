"""Agent classes (installed as ``pes_rl.agents``).

Each agent is an estimator and a way to start windows:

| agent         | estimator                 | window start                       |
|---------------|---------------------------|------------------------------------|
| `PES`         | `estimators.pes`          | persistent particles               |
| `NRES`        | `estimators.nres`         | persistent particles               |
| `TruncatedES` | `estimators.truncated_es` | shared: one state moved by theta   |
| `FullES`      | `estimators.truncated_es` | reset: K = T, whole episodes       |
"""

from pathlib import Path
from typing import Any

from pes_rl import estimators
from pes_rl.agents.es_agent import ESAgent
from pes_rl.checkpoints import read_latest


class PES(ESAgent):
    """Persistent ES (Vicol et al. 2021): fresh noise every window, returns
    weighted by the perturbations accumulated since the episode began.
    Unbiased."""

    estimator, window_start = staticmethod(estimators.pes), "persistent"
    algo = "pes"


class NRES(ESAgent):
    """Noise-Reuse ES (Li et al. 2023): one perturbation per episode, reused
    in every window. Unbiased, lower variance than PES."""

    estimator, window_start = staticmethod(estimators.nres), "persistent"
    algo = "nres"


class TruncatedES(ESAgent):
    """Truncated ES (PES paper, Algorithm 1): all particles start each window
    from a shared state advanced with the unperturbed parameters. Biased by
    truncation, by design."""

    estimator, window_start = staticmethod(estimators.truncated_es), "shared"
    algo = "tes"


class FullES(ESAgent):
    """Full-episode ES (Salimans et al. 2017): K = horizon, every update
    starts particles from reset. Unbiased, one update per episode."""

    estimator, window_start = staticmethod(estimators.truncated_es), "reset"
    algo = "es"


ALGORITHMS = {"pes": PES, "nres": NRES, "tes": TruncatedES, "es": FullES}


def load_latest(directory: str | Path, **overrides: Any):
    """(agent, its extra data, path) from a run directory's newest readable
    checkpoint."""
    saved, path = read_latest(directory)
    return ESAgent.from_checkpoint(saved, **overrides), saved["extra"], path


__all__ = [
    "ALGORITHMS",
    "ESAgent",
    "FullES",
    "NRES",
    "PES",
    "TruncatedES",
    "load_latest",
]
