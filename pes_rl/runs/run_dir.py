"""The run directory of ``python -m pes_rl.train``: its default name, its
exclusive ownership by one run, and its metrics file.

A run owns its directory from the moment it writes to it until it ends: it
holds an advisory lock on ``RUN_DIR/.lock`` (released by the kernel when the
process ends, even when it is killed), so a second run into the same
directory, started at the same time or later, ends with one line and
changes nothing of the first. Its files are written through
``pes_rl.runs.files``: whole or not at all, never through a planted symlink, and
writable by their owner alone.
"""

import fcntl
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from pes_rl.errors import ConfigError
from pes_rl.runs.checkpoints import DIRECTORY as CHECKPOINT_DIR
from pes_rl.runs.checkpoints import checkpoint_files
from pes_rl.runs.files import (
    append_line,
    file_mode,
    make_dir,
    remove_temporaries,
    write_text_atomic,
)

LOCK = ".lock"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


def default_run_dir(env: str, algo: str, seed: int) -> Path:
    """``runs/ENV-ALGO-seedS-TIME-XXXX``: the random suffix keeps runs
    started within the same second (a parallel sweep) apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{env.replace(':', '_').replace('/', '_')}-{algo}-seed{seed}"
    return Path("runs") / f"{name}-{stamp}-{secrets.token_hex(2)}"


def _holds_results(path: Path) -> bool:
    return path.is_dir() and any(p.name != LOCK for p in path.iterdir())


def _in_use(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and the shared lock with it


def check_new(path: Path) -> None:
    """Refuse a directory a new run cannot use, before anything is built."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run directory {path} exists and is not a directory")
    if _holds_results(path):
        if _in_use(path):
            raise ConfigError(f"run directory {path} is in use by another run")
        if (path / CONFIG).is_file() and not checkpoint_files(path):
            raise ConfigError(
                f"run directory {path} holds a run stopped before its first "
                f"checkpoint; start it again with --resume {path}, or choose a "
                "new one"
            )
        raise ConfigError(f"run directory {path} is not empty; choose a new one")


class Claim:
    """Exclusive ownership of a run directory; ``release()`` or process exit
    ends it."""

    def __init__(self, path: Path, new: bool):
        self.path = path
        try:
            if new:
                make_dir(path)
        except OSError as err:
            raise ConfigError(f"cannot create run directory {path}: {err}") from None
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW  # it is truncated
            self._fd = os.open(path / LOCK, flags, file_mode())
        except OSError as err:
            raise ConfigError(f"cannot use run directory {path}: {err}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise ConfigError(
                f"run directory {path} is in use by another run"
                + (f" (pid {owner})" if owner else "")
            ) from None
        if new and _holds_results(path):  # a run that finished in between
            self.release()
            raise ConfigError(f"run directory {path} is not empty; choose a new one")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def read_metrics(path: Path, upto_env_steps: int) -> list[str]:
    """The metrics lines up to a checkpoint's env steps; a line cut off by a
    crash and lines the resumed run will redo are dropped."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("env_steps", float("inf")) <= upto_env_steps:
            kept.append(line)
    return kept


def write_metrics_line(path: Path, line: dict[str, Any]) -> None:
    """Append ``line``; one at the same env steps as the last line replaces
    it (the final evaluation after a periodic one on the last update), so
    env_steps increase strictly down the file."""
    lines = path.read_text().splitlines() if path.exists() else []
    if lines and json.loads(lines[-1]).get("env_steps") == line["env_steps"]:
        lines[-1] = json.dumps(line)
        write_text_atomic(path, "".join(m + "\n" for m in lines))
        return
    append_line(path, json.dumps(line))


def write_config(run_dir: Path, record: dict[str, Any]) -> None:
    write_text_atomic(run_dir / CONFIG, json.dumps(record, indent=2) + "\n")


def prepare_resume(run_dir: Path, total_steps: int, upto_env_steps: int) -> None:
    """Before a resume: the new budget into config.json, metrics lines past
    the checkpoint (work to be redone) dropped, and the temporary files of
    writes a kill cut short removed. Each file is replaced whole, so a kill
    here loses nothing."""
    for directory in (run_dir, run_dir / CHECKPOINT_DIR):
        remove_temporaries(directory)
    stored = json.loads((run_dir / CONFIG).read_text())
    stored["total_steps"] = total_steps  # the budget from now on
    write_config(run_dir, stored)
    metrics = read_metrics(run_dir / METRICS, upto_env_steps)
    write_text_atomic(run_dir / METRICS, "".join(m + "\n" for m in metrics))
