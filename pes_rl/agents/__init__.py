"""Agent classes (installed as ``pes_rl.agents``).

Each agent runs one algorithm of ``pes_rl.core.algorithms`` (an estimator and a
way to start windows, declared there once): ``PES``, ``NRES``,
``TruncatedES`` and ``FullES``. ``agent_class(name)`` gives the class of
any registered algorithm, a registered one without a class of its own too.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pes_rl.agents.es_agent import ESAgent, agent_class
from pes_rl.core import algorithms
from pes_rl.runs.checkpoints import read_latest


class PES(ESAgent):
    """Persistent ES (Vicol et al. 2021): fresh noise every window, returns
    weighted by the perturbations accumulated since the episode began.
    Unbiased."""

    algorithm = algorithms.PES


class NRES(ESAgent):
    """Noise-Reuse ES (Li et al. 2023): one perturbation per episode, reused
    in every window. Unbiased, lower variance than PES."""

    algorithm = algorithms.NRES


class TruncatedES(ESAgent):
    """Truncated ES (PES paper, Algorithm 1): all particles start each window
    from a shared state advanced with the unperturbed parameters. Biased by
    truncation, by design."""

    algorithm = algorithms.TRUNCATED_ES


class FullES(ESAgent):
    """Full-episode ES (Salimans et al. 2017): K = horizon, every update
    starts particles from reset. Unbiased, one update per episode."""

    algorithm = algorithms.FULL_ES


class _AgentClasses(Mapping):
    """The agent class of each registered algorithm, by its name: a view of
    ``pes_rl.core.algorithms.REGISTRY``, not a second table."""

    def __getitem__(self, name: str) -> type[ESAgent]:
        if name not in algorithms.REGISTRY:
            raise KeyError(name)
        return agent_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(algorithms.REGISTRY)

    def __len__(self) -> int:
        return len(algorithms.REGISTRY)


ALGORITHMS = _AgentClasses()


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
    "agent_class",
    "load_latest",
]
