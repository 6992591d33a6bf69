"""Weights & Biases tracking (``--wandb``, the ``wandb`` extra).

``WandbWriter`` takes the TensorBoard writer's ``add_scalar`` calls, so W&B
gets the same scalars against training env steps (``env_steps`` is the step
metric: a resume that redoes work logs smaller steps again, which W&B's own
step counter would refuse; unlike TensorBoard's purged events, the redone
stretch then appears twice). The run lives in ``RUN_DIR/wandb``, its id and
project in ``RUN_DIR/wandb.json``: a resume continues the same W&B run, and
``python -m pes_rl.evaluate RUN_DIR --video`` adds its video to it. Set
``WANDB_MODE=offline`` to log without a network (``wandb sync`` uploads
later).
"""

import contextlib
import errno
import json
import secrets
from pathlib import Path
from typing import Any

from pes_rl.errors import ConfigError, MissingDependencyError
from pes_rl.runs.callbacks import tensorboard_writer
from pes_rl.runs.files import disk_full, write_text_atomic

ID_FILE = "wandb.json"
DEFAULT_PROJECT = "pes_rl"


def import_wandb():
    try:
        import wandb
    except ImportError:
        raise MissingDependencyError(
            "--wandb needs Weights & Biases: pip install 'pes_rl[wandb]'"
        ) from None
    return wandb


def _init(run_dir: Path, project: str | None, config: dict | None, new: bool):
    """Start (``new``) or continue the run directory's W&B run."""
    wandb = import_wandb()
    id_file = run_dir / ID_FILE
    if new or not id_file.exists():
        run = {"id": secrets.token_hex(4), "project": project or DEFAULT_PROJECT}
        write_text_atomic(id_file, json.dumps(run) + "\n")
    run = json.loads(id_file.read_text())
    try:
        tracker = wandb.init(
            project=run["project"],
            name=run_dir.name,
            id=run["id"],
            resume="allow",
            dir=str(run_dir),
            config=config,
        )
    except Exception as err:  # no login, no network, ...
        reason = " ".join(str(err).split())
        raise ConfigError(
            f"W&B did not start ({reason}); log in with `wandb login`, or set "
            "WANDB_MODE=offline"
        ) from None
    tracker.define_metric("env_steps")
    tracker.define_metric("*", step_metric="env_steps")
    return tracker


class WandbWriter:
    def __init__(
        self,
        run_dir: str | Path,
        config: dict[str, Any],
        project: str | None = None,
        resume: bool = False,
    ):
        self.run = _init(Path(run_dir), project, config, new=not resume)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: value, "env_steps": step})

    def flush(self) -> None:
        pass  # W&B streams each point as it is logged

    def close(self) -> None:
        self.run.finish()


class TensorBoardWriter:
    """A tensorboardX ``SummaryWriter`` whose ``flush`` puts every point
    added so far on disk. tensorboardX's own flush writes only what its
    writer thread has taken from its queue: this one stops that thread
    (it writes all that was queued before the stop), flushes the file and
    starts another thread."""

    def __init__(self, writer):
        self.writer = writer

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        for file_writer in (self.writer.all_writers or {}).values():
            events = file_writer.event_writer
            worker = getattr(events, "_worker", None)
            if worker is None or not hasattr(events, "_event_queue"):
                self._one_line_if_full(events.flush)  # closed, or another version
                continue
            worker.stop()
            self._one_line_if_full(events.flush)
            events._worker = type(worker)(
                events._event_queue, events._ev_writer, events._flush_secs
            )
            events._worker.start()

    def close(self) -> None:
        self._one_line_if_full(self.writer.close)

    def _one_line_if_full(self, step) -> None:
        try:
            step()
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise disk_full(Path(self.writer.logdir) / "events.out.tfevents") from None


class Writers:
    """Several writers as one."""

    def __init__(self, *writers):
        self.writers = writers

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        for writer in self.writers:
            writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


class NoWriter:
    """The writer of a process that writes nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_writers(
    run_dir: Path,
    write: bool,
    wandb: bool,
    project: str | None,
    resume: bool,
    env_steps: int,
):
    """The run's scalar writer: TensorBoard, and W&B too with ``wandb``. On
    resume, TensorBoard events after ``env_steps`` are purged: work redone."""
    if not write:
        return NoWriter()
    writer = TensorBoardWriter(
        tensorboard_writer(run_dir, env_steps if resume else None)
    )
    if not wandb:
        return writer
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
        return Writers(writer, WandbWriter(run_dir, config, project, resume))
    except BaseException:
        writer.close()
        raise


def close_quietly(writer) -> None:
    """Close ``writer`` after an error: on a full disk its last flush fails
    too, and that error would hide the one that stopped the run."""
    with contextlib.suppress(OSError):
        writer.close()


def tracked(run_dir: str | Path) -> bool:
    return (Path(run_dir) / ID_FILE).exists()


def log_video(run_dir: str | Path, path: str | Path, env_steps: int) -> None:
    """Add a recorded episode (mp4) to the run's W&B run."""
    wandb = import_wandb()
    run = _init(Path(run_dir), None, None, new=False)
    try:
        run.log({"eval/video": wandb.Video(str(path)), "env_steps": env_steps})
    finally:
        run.finish()
