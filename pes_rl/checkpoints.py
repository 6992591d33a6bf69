"""Checkpoint files of a run: ``RUN_DIR/checkpoints/ckpt-UPDATE.pkl``.

Each file is written atomically by ``agent.save``; the newest few are kept,
so a checkpoint that cannot be read (a disk error, a truncated copy) costs
one interval of training, not the run.
"""

import re
import sys
from pathlib import Path
from typing import Any

from pes_rl.errors import ConfigError

DIRECTORY = "checkpoints"
_NAME = re.compile(r"ckpt-(\d+)\.pkl")


def checkpoint_files(directory: str | Path) -> list[Path]:
    """Checkpoint files in ``directory`` (a run directory or its
    ``checkpoints/``), newest (most updates) first."""
    directory = Path(directory)
    if (directory / DIRECTORY).is_dir():
        directory = directory / DIRECTORY
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := _NAME.fullmatch(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(
    agent, directory: str | Path, extra: dict[str, Any] | None = None, keep: int = 3
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ckpt-{agent.num_updates:09d}.pkl"
    agent.save(path, extra=extra)
    for old in checkpoint_files(directory)[keep:]:
        old.unlink(missing_ok=True)
    return path


def read_latest(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """The newest readable checkpoint's state and path. An unreadable newer
    file is skipped with a warning on stderr."""
    from pes_rl.agents.es_agent import ESAgent

    files = checkpoint_files(directory)
    if not files:
        raise ConfigError(f"no checkpoint in {directory}")
    for path in files:
        try:
            return ESAgent.read_checkpoint(path), path
        except ValueError as err:
            print(f"warning: {err}; trying an older checkpoint", file=sys.stderr)
    raise ConfigError(f"no readable checkpoint in {directory}")


def load_latest(directory: str | Path, **overrides: Any):
    """(agent, extra, path) from the newest readable checkpoint."""
    from pes_rl.agents.es_agent import ESAgent

    state, path = read_latest(directory)
    return ESAgent.from_checkpoint(state, **overrides), state["extra"], path
