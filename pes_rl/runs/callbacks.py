"""Callbacks for ``agent.learn``, in the style of Stable-Baselines3.

A callback sees the agent and the info dict of each update (on Brax, of
each device call's last update) and stops training by returning a falsy
value other than None (False, numpy's False, 0):

    from pes_rl.runs.callbacks import CheckpointCallback, EvalCallback

    agent.learn(
        1_000_000,
        callback=[
            EvalCallback(every_env_steps=50_000, stop_at_return=350),
            CheckpointCallback("runs/ckpts", every_updates=100),
            lambda info: info["grad_norm"] < 1e6,  # plain functions work too
        ],
    )
"""

import math
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pes_rl.core.multihost import any_process
from pes_rl.runs.checkpoints import save_checkpoint
from pes_rl.runs.files import NOT_GROUP_OR_OTHERS, make_dir


class Callback:
    def on_training_start(self, agent) -> None:
        """Called once when ``learn`` starts."""

    def on_update(self, agent, info: dict[str, Any]) -> bool | None:
        """Called after an update; return False to stop training."""
        return None

    def on_training_end(self, agent) -> None:
        """Called once when ``learn`` returns normally."""


class FunctionCallback(Callback):
    """Wraps ``f(info) -> bool | None``."""

    def __init__(self, function: Callable[[dict[str, Any]], bool | None]):
        self.function = function

    def on_update(self, agent, info):
        return self.function(info)


class CallbackList(Callback):
    """Runs every callback; training stops if any of them says stop."""

    def __init__(self, callbacks: Iterable[Any]):
        self.callbacks = [as_callback(c) for c in callbacks]

    def on_training_start(self, agent):
        for callback in self.callbacks:
            callback.on_training_start(agent)

    def on_update(self, agent, info):
        results = [callback.on_update(agent, info) for callback in self.callbacks]
        return False if any(stops(r) for r in results) else None

    def on_training_end(self, agent):
        for callback in self.callbacks:
            callback.on_training_end(agent)


def stops(result: Any) -> bool:
    """A callback's answer stops training when it is falsy but not None
    (False, ``numpy.False_``, 0), as in Stable-Baselines3."""
    return result is not None and not result


def as_callback(callback: Any) -> Callback:
    """None, a Callback, a function of the info dict, or a list of these."""
    if callback is None:
        return CallbackList([])
    if isinstance(callback, Callback):
        return callback
    if isinstance(callback, list | tuple):
        return CallbackList(callback)
    if callable(callback):
        return FunctionCallback(callback)
    raise TypeError(f"not a callback: {callback!r}")


class EvalCallback(Callback):
    """Evaluate the mean policy every ``every_env_steps`` training steps (and
    at the start); stop once the mean return reaches ``stop_at_return``.
    ``on_result(result)`` receives each evaluation's dict."""

    def __init__(
        self,
        every_env_steps: int,
        num_episodes: int = 5,
        stop_at_return: float | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.every_env_steps = every_env_steps
        self.num_episodes = num_episodes
        self.stop_at_return = stop_at_return
        self.on_result = on_result
        self.next_eval: int | None = None
        self.results: list[dict[str, Any]] = []
        self.last_duration = 0.0

    def evaluate(self, agent) -> dict[str, Any]:
        start = time.perf_counter()
        returns = agent.evaluate_episodes(self.num_episodes)
        agent.last_eval_return = float(returns.mean())
        result = {
            "env_steps": agent.env_steps,
            "update": agent.num_updates,
            "eval_return": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": self.num_episodes,
            "eval_env_steps": agent.eval_env_steps,
        }
        self.results.append(result)
        self.last_duration = time.perf_counter() - start  # seconds
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _reached(self, result: dict[str, Any]) -> bool:
        return (
            self.stop_at_return is not None
            and result["eval_return"] >= self.stop_at_return
        )

    def on_training_start(self, agent):
        if self.next_eval is None:  # a resumed schedule keeps its place
            self.next_eval = agent.env_steps
        self._evaluate_if_due(agent)

    def on_update(self, agent, info):
        return self._evaluate_if_due(agent)

    def _evaluate_if_due(self, agent) -> bool | None:
        if agent.env_steps < self.next_eval:
            return None
        # Advanced first, so a checkpoint written during the evaluation
        # resumes after it. The grid stays 0, every, 2 * every, ...
        while self.next_eval <= agent.env_steps:
            self.next_eval += self.every_env_steps
        return False if self._reached(self.evaluate(agent)) else None


class CheckpointCallback(Callback):
    """Save the agent into ``directory`` every ``every_updates`` updates
    and/or every ``every_seconds`` seconds, keeping the newest ``keep``
    files (``ckpt-UPDATE.pkl``). ``extra()`` adds data to each file;
    ``flush()``, called before each file is written, puts what a logger
    holds in memory on disk (``writer.flush``), so a kill loses no point
    logged before the checkpoint a resume starts from."""

    def __init__(
        self,
        directory: str | Path,
        every_updates: int | None = None,
        every_seconds: float | None = None,
        keep: int = 3,
        extra: Callable[[], dict[str, Any]] | None = None,
        flush: Callable[[], None] | None = None,
    ):
        self.directory = Path(directory)
        self.every_updates = every_updates
        self.every_seconds = every_seconds
        self.keep = keep
        self.extra = extra
        self.flush = flush
        self._last_update = 0
        self._last_time = time.monotonic()

    def save(self, agent) -> Path:
        if self.flush is not None:
            self.flush()
        path = save_checkpoint(
            agent, self.directory, self.extra() if self.extra else None, self.keep
        )
        self._last_update, self._last_time = agent.num_updates, time.monotonic()
        return path

    def on_training_start(self, agent):
        self._last_update, self._last_time = agent.num_updates, time.monotonic()

    def on_update(self, agent, info):
        due_updates = (
            self.every_updates is not None
            and agent.num_updates - self._last_update >= self.every_updates
        )
        due_time = (
            self.every_seconds is not None
            and time.monotonic() - self._last_time >= self.every_seconds
        )
        # A process's own clock decides for all (saving is collective when
        # several processes train together).
        if due_updates or (self.every_seconds is not None and any_process(due_time)):
            self.save(agent)
        return None


class StopOnReturn(Callback):
    """Stop once the latest evaluation (``agent.last_eval_return``, set by
    ``agent.evaluate`` or an EvalCallback listed before this one) reaches
    ``threshold``."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def on_update(self, agent, info):
        return False if agent.last_eval_return >= self.threshold else None


class TensorBoardCallback(Callback):
    """Per update: window return, training episode return, env-steps/s,
    gradient norm, sigma and the learning rate, against training env steps,
    into a ``tensorboardX.SummaryWriter`` (``tensorboard_writer``)."""

    def __init__(self, writer):
        self.writer = writer
        self.last: tuple[float, int] | None = None

    def on_update(self, agent, info):
        now, steps = time.perf_counter(), agent.env_steps
        if self.last is not None and now > self.last[0]:
            rate = (steps - self.last[1]) / (now - self.last[0])
            self.writer.add_scalar("train/env_steps_per_s", rate, steps)
        self.last = (now, steps)
        for name in ("window_return", "grad_norm", "train_episode_return"):
            if not math.isnan(info[name]):
                self.writer.add_scalar(f"train/{name}", info[name], steps)
        self.writer.add_scalar("train/sigma", agent.sigma, steps)
        self.writer.add_scalar("train/learning_rate", agent.learning_rate, steps)
        return None


def tensorboard_writer(run_dir: str | Path, purge_step: int | None = None):
    """Event files in ``RUN_DIR/tensorboard``; on a resume, events past
    ``purge_step`` (work redone) are purged."""
    from tensorboardX import SummaryWriter

    directory = make_dir(Path(run_dir) / "tensorboard")
    writer = SummaryWriter(str(directory), purge_step=purge_step, flush_secs=10)
    for path in directory.glob("events.out.tfevents.*"):  # made with the umask
        status = path.lstat()
        if stat.S_ISREG(status.st_mode) and status.st_uid == os.getuid():
            path.chmod(stat.S_IMODE(status.st_mode) & ~NOT_GROUP_OR_OTHERS)
    return writer
