"""The algorithms, each one object declared once and found in one registry.

An algorithm is an estimator (``pes_rl.core.estimators``) and a way to start
windows; what else differs between algorithms (an extra particle, K = T,
staggered pairs) follows from the window start:

| name   | agent         | estimator      | window start                          |
|--------|---------------|----------------|---------------------------------------|
| `pes`  | `PES`         | `pes`          | persistent particles                  |
| `nres` | `NRES`        | `nres`         | persistent particles                  |
| `tes`  | `TruncatedES` | `truncated_es` | shared: one state moved by theta      |
| `es`   | `FullES`      | `truncated_es` | reset: K = T, whole episodes          |

The agents (``pes_rl.agents``), the builder and the command line read these
objects; ``register`` adds one, which ``--algo NAME`` and
``pes_rl.agents.agent_class(NAME)`` then know.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pes_rl.core import estimators
from pes_rl.errors import ConfigError

WindowStart = Literal["persistent", "shared", "reset"]
WINDOW_STARTS = ("persistent", "shared", "reset")


@dataclass(frozen=True)
class Algorithm:
    name: str
    """On the command line (``--algo``), in presets and run directories."""
    agent_name: str
    """The agent class's name, which checkpoints record."""
    label: str
    """In plot legends."""
    summary: str
    """What it is, in a few words (``--help``)."""
    estimator: Callable[..., estimators.Estimator]
    """``(fitness_shaping) -> Estimator``, and ``top_pairs=b`` when the
    agent's ``top_pairs`` is set; sigma is the training state's."""
    window_start: WindowStart
    """persistent: each particle continues its own episode (pairs may be
    staggered over the horizon); shared: one more particle runs theta
    unperturbed and every window starts all particles from its state;
    reset: every window is a whole episode from reset (K = T)."""

    def __post_init__(self):
        if self.window_start not in WINDOW_STARTS:
            raise ValueError(
                f"unknown window start {self.window_start!r}: use one of "
                f"{', '.join(WINDOW_STARTS)}"
            )

    @property
    def persistent(self) -> bool:
        """Particles keep their episodes across windows (pairs may stagger)."""
        return self.window_start == "persistent"

    @property
    def extra_particle(self) -> bool:
        """One more particle, unperturbed, whose state starts every window."""
        return self.window_start == "shared"

    @property
    def whole_episodes(self) -> bool:
        """K = T: one update per episode, every window from reset."""
        return self.window_start == "reset"

    def num_envs(self, num_particles: int) -> int:
        """Environments (inner runs) stepped per window."""
        return num_particles + self.extra_particle

    def window(self, truncation_length: int, horizon: int) -> int:
        """K as the agent runs it: the horizon for whole episodes, else at
        most the horizon."""
        return horizon if self.whole_episodes else min(truncation_length, horizon)


REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` under its name (and its agent name); returns it."""
    for other in REGISTRY.values():
        if {algorithm.name, algorithm.agent_name} & {other.name, other.agent_name}:
            raise ValueError(
                f"algorithm {algorithm.name!r} ({algorithm.agent_name}) clashes "
                f"with {other.name!r} ({other.agent_name})"
            )
    REGISTRY[algorithm.name] = algorithm
    return algorithm


def get(name: str) -> Algorithm:
    """The algorithm called ``name`` (``pes``) or whose agent is (``PES``)."""
    for algorithm in REGISTRY.values():
        if name in (algorithm.name, algorithm.agent_name):
            return algorithm
    raise ConfigError(f"unknown algorithm {name!r}: use one of {', '.join(REGISTRY)}")


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def help_text() -> str:
    """The registered algorithms, for ``--algo``'s help."""
    items = [f"{a.name} ({a.summary})" for a in REGISTRY.values()]
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


PES = register(Algorithm("pes", "PES", "PES", "PES", estimators.pes, "persistent"))
NRES = register(
    Algorithm("nres", "NRES", "NRES", "NRES", estimators.nres, "persistent")
)
TRUNCATED_ES = register(
    Algorithm(
        "tes", "TruncatedES", "TES", "truncated ES", estimators.truncated_es, "shared"
    )
)
FULL_ES = register(
    Algorithm(
        "es", "FullES", "FullES", "full-episode ES", estimators.truncated_es, "reset"
    )
)
