"""Runs and their groups, for ``pes_rl.plot``: reading run directories,
grouping the seeds of one configuration, and panels (labels:
``pes_rl.cli.run_labels``).

Runs on different environments (``env_id`` in ``config.json``) are drawn in
separate panels, one per environment, titled by it; runs are grouped per
panel and one legend below the panels names the groups, a group keeping its
colour in every panel it appears in.

What counts as "only the seed": config keys that do not change what a run
computes are ignored when grouping and never used in labels (``BOOKKEEPING``):
where results go and how they are shown (``run_dir``, ``progress``), how often
the mean policy is evaluated and on how many episodes (``eval_every``,
``eval_episodes``: evaluation draws from its own key stream and does not touch
training), checkpointing and resuming, and how the work is spread over
hardware (``async_envs``, ``devices``, ``updates_per_call``, the multi-host
flags), none of which changes an update, and ``preset``, a name for values
the config holds anyway. ``env`` is the name typed on the
command line; ``env_id``, the environment it resolved to, stands for it when
present. ``hidden_sizes`` is ignored for linear and recurrent policies, and
``recurrent_size`` unless the policy is a GRU or LSTM. ``total_steps`` is
kept: it sets the length of a run and the pace of the ``*_final`` decays.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pes_rl.cli.run_labels import distinguishing_keys, format_item, label_rank
from pes_rl.errors import ConfigError

X_AXES = {
    "env_steps": "training env steps",
    "seconds": "wall-clock seconds (evaluation included)",
    "train_seconds": "wall-clock seconds (evaluation excluded)",
}
BANDS = {"minmax": "min–max", "std": "± 1 std"}
# Config keys that do not change what a run computes: runs differing only in
# these are seeds of one experiment, and labels never show them.
BOOKKEEPING = (
    "seed",
    "preset",
    "run_dir",
    "progress",
    "resume",
    "checkpoint_every_updates",
    "checkpoint_every_seconds",
    "coordinator_address",
    "num_processes",
    "process_id",
    "eval_every",
    "eval_episodes",
    "async_envs",
    "workers",
    "num_workers",
    "ray_address",
    "devices",  # the name older runs recorded
    "num_devices",
    "updates_per_call",
    "wandb",
    "wandb_project",
)


@dataclass
class Run:
    path: Path
    config: dict[str, Any] | None  # None when the run has no config.json
    metrics: list[dict[str, Any]]

    def curve(self, x: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, eval_return) sorted by x; of evaluations at the same x (the
        final one repeats the last step count) the last one wins."""
        points: dict[float, float] = {}
        for i, row in enumerate(self.metrics, 1):
            for key in (x, "eval_return"):
                if not isinstance(row.get(key), int | float):
                    raise ConfigError(
                        f"{self.path / 'metrics.jsonl'} line {i} has no number {key!r}"
                    )
            points[float(row[x])] = float(row["eval_return"])
        xs = np.array(sorted(points))
        return xs, np.array([points[v] for v in xs])


@dataclass
class Group:
    label: str
    runs: list[Run]
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray  # band, equal to mean for a single run
    high: np.ndarray


def load_run(path: str | Path) -> Run:
    """Read a run directory written by ``python -m pes_rl.train``."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run directory {path} does not exist")
    metrics_file = path / "metrics.jsonl"
    if not metrics_file.is_file():
        raise ConfigError(f"{path} has no metrics.jsonl; is it a run directory?")
    metrics = []
    lines = _read_text(metrics_file).splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            # A run still writing (or killed mid-write) can leave a partial
            # last line: skip it rather than refuse the whole run.
            if i == len(lines):
                continue
            raise ConfigError(f"{metrics_file} line {i} is not JSON") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{metrics_file} line {i} is not a JSON object")
        metrics.append(row)
    if not metrics:
        raise ConfigError(f"{metrics_file} has no evaluations yet")
    config = None
    config_file = path / "config.json"
    if config_file.is_file():
        try:
            config = json.loads(_read_text(config_file))
        except json.JSONDecodeError:
            raise ConfigError(f"{config_file} is not valid JSON") from None
        if not isinstance(config, dict):
            raise ConfigError(f"{config_file} is not a JSON object")
    return Run(path, config, metrics)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {err.start}); is it a run directory's?"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None


def _effective_config(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``config`` that change what the run computes."""
    rest = {k: v for k, v in config.items() if k not in BOOKKEEPING}
    if "env_id" in rest:
        rest.pop("env", None)
    if rest.get("policy") in ("linear", "gru", "lstm"):
        rest.pop("hidden_sizes", None)
    if rest.get("policy") not in ("gru", "lstm"):
        rest.pop("recurrent_size", None)
    if rest.get("top_pairs") is None:  # all pairs, as before the setting
        rest.pop("top_pairs", None)
    return rest


def _group_key(run: Run) -> str:
    if run.config is None:
        return f"dir:{run.path.resolve()}"
    return json.dumps(_effective_config(run.config), sort_keys=True)


def _label_keys(groups: list[list[Run]]) -> list[str]:
    """The fewest config keys that tell ``groups`` apart."""
    return distinguishing_keys(
        [_effective_config(g[0].config) for g in groups if g[0].config is not None]
    )


def _labels(groups: list[list[Run]], keys: list[str] | None = None) -> list[str]:
    """Name each group by ``keys`` (default: the fewest config keys that tell
    the groups apart) and its number of seeds."""
    if keys is None:
        keys = _label_keys(groups)
    labels = []
    for runs in groups:
        config = runs[0].config
        if config is None:
            label = runs[0].path.name
        elif keys:
            config = _effective_config(config)
            label = ", ".join(format_item(k, config.get(k)) for k in keys)
        elif "algo" in config:
            label = format_item("algo", config["algo"])
        else:
            label = runs[0].path.name
        if len(runs) > 1:
            seeds = {json.dumps((r.config or {}).get("seed")) for r in runs}
            label += f" ({len(runs)} {'seeds' if len(seeds) == len(runs) else 'runs'})"
        labels.append(label)
    return labels


def _check_axes(x: str, band: str) -> None:
    if x not in X_AXES:
        raise ConfigError(f"unknown x axis {x!r}: use one of {', '.join(X_AXES)}")
    if band not in BANDS:
        raise ConfigError(f"unknown band {band!r}: use one of {', '.join(BANDS)}")


def _split(runs: Iterable[Run]) -> list[list[Run]]:
    """The runs grouped by what they compute, in order of first appearance."""
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(_group_key(run), []).append(run)
    return list(by_key.values())


def _aggregate(label: str, group: list[Run], x: str, band: str) -> Group:
    curves = [run.curve(x) for run in group]
    start = max(xs[0] for xs, _ in curves)
    end = min(xs[-1] for xs, _ in curves)
    if start > end:
        raise ConfigError(
            f"the seeds of {label!r} cover no common range of {x}; plot them separately"
        )
    grid = np.unique(np.concatenate([xs for xs, _ in curves]))
    grid = grid[(grid >= start) & (grid <= end)]
    ys = np.stack([np.interp(grid, xs, y) for xs, y in curves])
    mean = ys.mean(axis=0)
    if band == "minmax":
        low, high = ys.min(axis=0), ys.max(axis=0)
    else:
        std = ys.std(axis=0)
        low, high = mean - std, mean + std
    return Group(label, group, grid, mean, low, high)


def group_runs(
    runs: Iterable[Run], x: str = "env_steps", band: str = "minmax"
) -> list[Group]:
    """Group runs that differ only in the seed and aggregate each group.

    The runs of a group are interpolated linearly onto the union of their
    evaluation points, restricted to the x range all of them cover (no
    extrapolation: a run that stopped early shortens its group's curve).
    """
    _check_axes(x, band)
    members = _split(runs)
    return [
        _aggregate(label, group, x, band)
        for label, group in zip(_labels(members), members, strict=True)
    ]


def _env_of(run: Run) -> str | None:
    if run.config is None:
        return None
    env = run.config.get("env_id") or run.config.get("env")
    return None if env is None else str(env)


def _panels(runs: list[Run]) -> list[tuple[str | None, list[Run]]]:
    """The runs split by environment, in order of first appearance. Runs
    without a config.json join the only environment, or get their own panel."""
    by_env: dict[str | None, list[Run]] = {}
    for run in runs:
        by_env.setdefault(_env_of(run), []).append(run)
    known = [env for env in by_env if env is not None]
    if len(known) <= 1:
        return [(known[0] if known else None, runs)]
    return list(by_env.items())


def panel_groups(
    runs: list[Run], x: str, band: str
) -> list[tuple[str | None, list[Group]]]:
    """The runs split into panels by environment, each panel's runs grouped
    and aggregated. One set of label keys serves all panels (the union of
    what each needs), so a label means the same in every panel."""
    _check_axes(x, band)
    panels = _panels(runs)
    members = [_split(panel_runs) for _, panel_runs in panels]
    keys = sorted(
        {k for groups in members for k in _label_keys(groups)}, key=label_rank
    )
    return [
        (
            env,
            [
                _aggregate(label, group, x, band)
                for label, group in zip(_labels(groups, keys), groups, strict=True)
            ],
        )
        for (env, _), groups in zip(panels, members, strict=True)
    ]
