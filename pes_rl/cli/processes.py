"""A run's processes and signals: an error in any process of a multi-host
run stops all, SIGINT and SIGTERM stop every process after the update in
progress with a checkpoint, and ``--coordinator-address`` joins the run."""

import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any

from pes_rl.core.multihost import any_process
from pes_rl.errors import ConfigError
from pes_rl.runs.callbacks import Callback, CheckpointCallback


def together(step: Callable[[], Any]) -> Any:
    """``step()``; where processes train together, an error in any of them
    stops all (the others would wait for it in the first device call)."""
    try:
        result, error = step(), None
    except Exception as err:
        result, error = None, err
    if any_process(error is not None):
        raise error or ConfigError(
            "another process of this run stopped; see its output"
        )
    return result


def printer(main: bool):
    """``print`` on process 0; the other processes of a multi-process run
    stay quiet."""
    return print if main else (lambda *args, **kwargs: None)


class Interrupted(Exception):
    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class SignalStop(Callback):
    """On SIGINT or SIGTERM, finish the current update, save a checkpoint
    and stop training."""

    def __init__(self, checkpoints: CheckpointCallback):
        self.checkpoints = checkpoints
        self.agent = None
        self.signal_name: str | None = None
        self.exit_status = 0

    @contextlib.contextmanager
    def installed(self):
        def handler(signum, frame):
            if self.signal_name is not None:  # a second signal: stop now
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(signum).name
            self.exit_status = 128 + signum
            print(
                f"{self.signal_name}: stopping after {self._in_progress()}, then "
                "saving a checkpoint; a second signal stops at once",
                file=sys.stderr,
                flush=True,
            )

        previous = {
            sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _in_progress(self) -> str:
        """What the stop waits for: on the jitted engine a whole device call."""
        agent = self.agent
        if agent is None or agent.backend_name in ("gymnasium", "mujoco"):
            return "the update in progress"
        updates = agent.config.updates_per_call
        seconds = agent.last_call_seconds
        took = (
            f"the last took {seconds:.0f} s"
            if seconds is not None
            else "the first waits for its compilation"
        )
        return f"the device call in progress (up to {updates} updates; {took})"

    def on_training_start(self, agent):
        self.agent = agent

    def on_update(self, agent, info):
        # Processes of a multi-process run stop together, whichever had the
        # signal (a collective: each process asks after every call).
        if not any_process(self.signal_name is not None):
            return None
        if self.signal_name is None:
            self.signal_name = "a signal to another process"
            self.exit_status = 128 + signal.SIGTERM
        self.checkpoints.save(agent)
        return False


def init_distributed(config) -> None:
    """Join a multi-host run: every process runs the same command with the
    same seed and computes the same updates; XLA shards the particles over
    all hosts' devices."""
    given = [
        config.coordinator_address is not None,
        config.num_processes is not None,
        config.process_id is not None,
    ]
    if not any(given):
        return
    if not all(given):
        raise ConfigError(
            "multi-host runs need --coordinator-address, --num-processes "
            "and --process-id together"
        )
    import jax

    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes,
        process_id=config.process_id,
    )
