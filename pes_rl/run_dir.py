"""The run directory of ``python -m pes_rl.train``: its default name, its
exclusive ownership by one run, and its metrics file.

A run owns its directory from the moment it writes to it until it ends: it
holds an advisory lock on ``RUN_DIR/.lock`` (released by the kernel when the
process ends, even when it is killed), so a second run into the same
directory, started at the same time or later, ends with one line and
changes nothing of the first.
"""

import fcntl
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from pes_rl.errors import ConfigError

LOCK = ".lock"


def default_run_dir(env: str, algo: str, seed: int) -> Path:
    """``runs/ENV-ALGO-seedS-TIME-XXXX``: the random suffix keeps runs
    started within the same second (a parallel sweep) apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{env.replace(':', '_').replace('/', '_')}-{algo}-seed{seed}"
    return Path("runs") / f"{name}-{stamp}-{secrets.token_hex(2)}"


def _holds_results(path: Path) -> bool:
    return path.is_dir() and any(p.name != LOCK for p in path.iterdir())


def check_new(path: Path) -> None:
    """Refuse a directory a new run cannot use, before anything is built."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run directory {path} exists and is not a directory")
    if _holds_results(path):
        raise ConfigError(f"run directory {path} is not empty; choose a new one")


class Claim:
    """Exclusive ownership of a run directory; ``release()`` or process exit
    ends it."""

    def __init__(self, path: Path, new: bool):
        self.path = path
        try:
            if new:
                path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create run directory {path}: {err}") from None
        try:
            self._fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(m + "\n" for m in lines))
        os.replace(tmp, path)
        return
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
