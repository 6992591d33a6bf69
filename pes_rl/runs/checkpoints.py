"""Checkpoint files: ``RUN_DIR/checkpoints/ckpt-UPDATE.pkl``.

A checkpoint is a pickled dict (``ESAgent.save`` makes it): the training
state, the particles, counters, the config and the caller's extra data,
after a header line holding the SHA-256 of the pickle. The checksum is
checked before unpickling, so a damaged file (a flipped bit, a truncated
copy) is refused as unreadable instead of crashing or loading wrong
numbers. It is no defence against a crafted file: unpickling runs code, so
load only checkpoints you trust. Each file is written atomically
(``pes_rl.runs.files``); the newest few are kept, so a checkpoint that cannot be
read costs one interval of training, not the run.
"""

import hashlib
import io
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from pes_rl.core.multihost import is_main_process
from pes_rl.core.train_state import TrainState
from pes_rl.errors import ConfigError
from pes_rl.runs.files import make_dir, write_atomic

FORMAT = 2
DIRECTORY = "checkpoints"
_NAME = re.compile(r"ckpt-(\d+)\.pkl")
# The header line: this prefix, 64 hex digits of the pickle's SHA-256, b"\n".
HEADER = b"pes_rl checkpoint sha256:"


def write(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Pickle ``payload`` to ``path`` atomically. Particles whose state
    cannot be pickled (an env holding a handle) are left out: a resume then
    restarts their episodes."""
    try:
        data = pickle.dumps(payload)
    except (TypeError, AttributeError, pickle.PicklingError) as err:
        print(
            f"warning: the particles cannot be saved ({err}); a resume from "
            f"{path} restarts their episodes",
            file=sys.stderr,
        )
        data = pickle.dumps({**payload, "particles": None})
    digest = hashlib.sha256(data).hexdigest().encode()
    write_atomic(path, HEADER + digest + b"\n" + data)


def _pickle_of(path: str | os.PathLike, data: bytes) -> bytes:
    """The pickle a checkpoint file holds, once its checksum matches. Files
    of earlier versions have no header: a bare pickle (protocol 2 or later)."""
    if data.startswith(HEADER):
        digest, _, pickled = data[len(HEADER) :].partition(b"\n")
        if hashlib.sha256(pickled).hexdigest().encode() != digest:
            raise ValueError(f"{path} is damaged (its checksum does not match)")
        return pickled
    if data.startswith(b"\x80"):
        return data
    raise ValueError(f"{path} is not a pes_rl checkpoint")


# Where the modules of the flat layout (before pes_rl.core, .runs, .cli and
# the env backends' folders) went, so that checkpoints and saved agents
# written then still load.
MOVED_MODULES = {
    "pes_rl.algorithms": "pes_rl.core.algorithms",
    "pes_rl.callbacks": "pes_rl.runs.callbacks",
    "pes_rl.checkpoints": "pes_rl.runs.checkpoints",
    "pes_rl.cli_config": "pes_rl.cli.flags",
    "pes_rl.cli_rules": "pes_rl.cli.rules",
    "pes_rl.config": "pes_rl.core.config",
    "pes_rl.envs.brax_problem": "pes_rl.envs.adapters.brax_problem",
    "pes_rl.envs.gymnasium_backend": "pes_rl.envs.backends.gymnasium",
    "pes_rl.envs.playground": "pes_rl.envs.adapters.playground",
    "pes_rl.envs.pool": "pes_rl.envs.backends.pool",
    "pes_rl.envs.problem_backend": "pes_rl.core.problem_window",
    "pes_rl.envs.ray_cluster": "pes_rl.envs.backends.ray_cluster",
    "pes_rl.envs.ray_workers": "pes_rl.envs.backends.ray_workers",
    "pes_rl.envs.spaces": "pes_rl.envs.adapters.spaces",
    "pes_rl.envs.window_rules": "pes_rl.core.window_rules",
    "pes_rl.estimators": "pes_rl.core.estimators",
    "pes_rl.evaluate": "pes_rl.cli.evaluate",
    "pes_rl.files": "pes_rl.runs.files",
    "pes_rl.keys": "pes_rl.core.keys",
    "pes_rl.multihost": "pes_rl.core.multihost",
    "pes_rl.normalization": "pes_rl.core.normalization",
    "pes_rl.plot": "pes_rl.cli.plot",
    "pes_rl.policies": "pes_rl.core.policies",
    "pes_rl.presets": "pes_rl.agents.presets",
    "pes_rl.resources": "pes_rl.agents.resources",
    "pes_rl.run_dir": "pes_rl.runs.run_dir",
    "pes_rl.run_groups": "pes_rl.cli.run_groups",
    "pes_rl.schedules": "pes_rl.core.schedules",
    "pes_rl.tracking": "pes_rl.runs.tracking",
    "pes_rl.train": "pes_rl.cli.train",
    "pes_rl.train_state": "pes_rl.core.train_state",
    "pes_rl.video": "pes_rl.cli.video",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def read(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's dict; ``ValueError`` for a file that is not a readable
    pes_rl checkpoint."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ValueError(f"{path} cannot be read ({err})") from None
    pickled = _pickle_of(path, data)
    try:
        payload = _Unpickler(io.BytesIO(pickled)).load()
    except ImportError as err:  # a user's env or problem module
        raise ConfigError(
            f"{path} needs a module that is not importable: {err}"
        ) from None
    except Exception as err:  # damaged, from a version without checksums
        raise ValueError(
            f"{path} is not a pes_rl checkpoint ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in (1, FORMAT):
        raise ValueError(f"{path} is not a pes_rl checkpoint")
    return _upgrade(payload) if payload["format"] == 1 else payload


def _upgrade(old: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the first format (before the one training state):
    its particles restart their episodes. With obs_norm its policy cannot be
    restored: that format normalised differently (no bias, another std
    floor) and its parameters had drifted from their normaliser."""
    if old["config"].get("obs_norm"):
        raise ConfigError(
            "this checkpoint was made before the observation-normalisation fix "
            "(format 1) and its obs_norm policy cannot be restored exactly; "
            "train again"
        )
    stats = type(old["obs_stats"])(*(np.float32(x) for x in old["obs_stats"]))
    state = TrainState(
        theta=old["theta"],
        opt_state=old["opt_state"],
        est_state=old["est_state"],
        obs_stats=jax.tree.map(np.asarray, stats),
        key=old["key"],
        hyper=None,  # the agent's own, with num_updates (restore_state)
    )
    counters = ("env_steps", "simulated_steps", "eval_env_steps", "num_updates")
    return {
        "format": FORMAT,
        "algorithm": old["algorithm"],
        "config": old["config"],
        "state": state,
        "counters": {k: old.get(k, old["env_steps"]) for k in counters},
        "reset_rng": old["reset_rng"],
        "warmed_up": False,
        "particles": None,
        "extra": old.get("extra", {}),
    }


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
    """``agent.save`` into ``directory/ckpt-UPDATE.pkl``, keeping the newest
    ``keep`` files. With several processes every process calls it (the
    state is gathered) and process 0 alone writes."""
    directory = Path(directory)
    path = directory / f"ckpt-{agent.num_updates:09d}.pkl"
    main = is_main_process()
    if main:
        make_dir(directory)
    agent.save(path, extra=extra)
    if main:
        for old in checkpoint_files(directory)[keep:]:
            old.unlink(missing_ok=True)
    return path


BEST = "best.pkl"


def save_best(agent, directory: str | Path, evaluation: dict[str, Any]) -> Path:
    """``agent.save`` into ``directory/best.pkl``: the best evaluated policy
    so far, with its evaluation in the extra data. It is not one of the
    rotating ``ckpt-*`` files, so resumes never start from it."""
    directory = Path(directory)
    if is_main_process():
        make_dir(directory)
    path = directory / BEST
    agent.save(path, extra={"evaluation": evaluation})
    return path


def read_latest(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """The newest readable checkpoint and its path. An unreadable newer file
    is skipped with a warning on stderr."""
    files = checkpoint_files(directory)
    if not files:
        raise ConfigError(f"no checkpoint in {directory}")
    for path in files:
        try:
            return read(path), path
        except ValueError as err:
            print(f"warning: {err}; trying an older checkpoint", file=sys.stderr)
    raise ConfigError(f"no readable checkpoint in {directory}")
