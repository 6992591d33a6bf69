"""What the agent needs of a loop: the members ``ESAgent`` (and the
checkpoint code beside it) use, met by ``HostLoop`` (Gymnasium envs on the
CPU) and ``JaxLoop`` (the jitted engine)."""

from typing import Any, Protocol, runtime_checkable

import numpy as np

from pes_rl.core.train_state import TrainState, UpdateMetrics


@runtime_checkable
class Loop(Protocol):
    per_call: int  # windows per device call (1 on the host loop)
    failure: str | None  # what made the last window non-finite, if known
    compile_seconds: float | None  # jitted engine: time spent compiling
    last_call_seconds: float | None  # the last device call's wall-clock
    device_description: str  # where training runs, e.g. "cpu" or "2 x gpu"

    # -- training -------------------------------------------------------------

    def prepare(self, ts: TrainState) -> None:
        """Training is about to start (the jitted engine starts compiling)."""

    def run(
        self, ts: TrainState, active: np.ndarray, learn: np.ndarray
    ) -> tuple[TrainState, UpdateMetrics]:
        """Windows with ``active`` [W, M] masks and ``learn`` [W] flags: the
        new state and each window's metrics as numpy (stops after a
        non-finite window)."""

    def normalizer(self, obs_stats: Any) -> tuple[Any, Any]:
        """``(mean, inv_std)`` of the observation statistics."""

    # -- using the result -----------------------------------------------------

    def mean_actions(
        self, ts: TrainState, unravel: Any, obs: np.ndarray, carry: Any = None
    ) -> Any:
        """The mean policy's env actions for a batch of observations; with
        the new carry when ``carry`` (a recurrent policy's) is given."""

    def evaluate(
        self, ts: TrainState, num_episodes: int, key: Any, unravel: Any
    ) -> tuple[np.ndarray, int, bool]:
        """Returns, env steps and finiteness of ``num_episodes`` episodes of
        the mean parameters."""

    def close(self) -> None:
        """Stop worker processes and compiles in flight, close the envs."""

    # -- checkpoints ----------------------------------------------------------

    def particles(self) -> Any:
        """The particles' env states and episode bookkeeping, to save."""

    def set_particles(self, particles: Any) -> None:
        """Continue the particles saved by ``particles``."""

    def reset_key_data(self) -> Any:
        """The state of the stream that draws reset seeds or keys."""

    def set_reset_key_data(self, data: Any) -> None:
        """Continue the stream saved by ``reset_key_data``."""
