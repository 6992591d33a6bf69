"""Learning curves: ``python -m pes_rl.plot RUN_DIR [RUN_DIR ...] -o curves.png``.

Runs whose ``config.json`` differ only in the seed are drawn as one line (the
mean over seeds) with a band (min–max or ± one std across seeds).
"""

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pes_rl.errors import ConfigError

X_AXES = {
    "env_steps": "training env steps",
    "seconds": "wall-clock seconds (evaluation included)",
    "train_seconds": "wall-clock seconds (evaluation excluded)",
}
BANDS = {"minmax": "min–max", "std": "± 1 std"}
# Config keys that do not change what a run learns: runs differing only in
# these are seeds of one experiment.
# Bookkeeping that does not change what a run computes.
IGNORED_KEYS = (
    "seed",
    "run_dir",
    "progress",
    "resume",
    "checkpoint_every_updates",
    "checkpoint_every_seconds",
    "coordinator_address",
    "num_processes",
    "process_id",
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
    lines = metrics_file.read_text().splitlines()
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
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError:
            raise ConfigError(f"{config_file} is not valid JSON") from None
        if not isinstance(config, dict):
            raise ConfigError(f"{config_file} is not a JSON object")
    return Run(path, config, metrics)


def _group_key(run: Run) -> str:
    if run.config is None:
        return f"dir:{run.path.resolve()}"
    rest = {k: v for k, v in run.config.items() if k not in IGNORED_KEYS}
    return json.dumps(rest, sort_keys=True)


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(map(str, value)) if value else "[]"
    return str(value)


def _labels(groups: list[list[Run]]) -> list[str]:
    """Name each group by the config keys whose values differ between groups."""
    configs = [g[0].config for g in groups if g[0].config is not None]
    keys = sorted({k for c in configs for k in c} - set(IGNORED_KEYS))
    differing = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
    labels = []
    for runs in groups:
        config = runs[0].config
        if config is None:
            label = runs[0].path.name
        elif differing:
            label = ", ".join(f"{k}={_format_value(config.get(k))}" for k in differing)
        else:
            label = " on ".join(
                str(config[k]) for k in ("algo", "env_id") if k in config
            ) or str(runs[0].path.name)
        if len(runs) > 1:
            seeds = {json.dumps((r.config or {}).get("seed")) for r in runs}
            label += f" ({len(runs)} {'seeds' if len(seeds) == len(runs) else 'runs'})"
        labels.append(label)
    return labels


def group_runs(
    runs: Iterable[Run], x: str = "env_steps", band: str = "minmax"
) -> list[Group]:
    """Group runs that differ only in the seed and aggregate each group.

    The runs of a group are interpolated linearly onto the union of their
    evaluation points, restricted to the x range all of them cover (no
    extrapolation: a run that stopped early shortens its group's curve).
    """
    if x not in X_AXES:
        raise ConfigError(f"unknown x axis {x!r}: use one of {', '.join(X_AXES)}")
    if band not in BANDS:
        raise ConfigError(f"unknown band {band!r}: use one of {', '.join(BANDS)}")
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(_group_key(run), []).append(run)
    members = list(by_key.values())
    groups = []
    for label, group in zip(_labels(members), members, strict=True):
        curves = [run.curve(x) for run in group]
        start = max(xs[0] for xs, _ in curves)
        end = min(xs[-1] for xs, _ in curves)
        if start > end:
            raise ConfigError(
                f"the seeds of {label!r} cover no common range of {x}; "
                "plot them separately"
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
        groups.append(Group(label, group, grid, mean, low, high))
    return groups


def plot_runs(
    run_dirs: Sequence[str | Path],
    output: str | Path | None = None,
    x: str = "env_steps",
    title: str | None = None,
    band: str = "minmax",
):
    """Draw eval_return against ``x`` for the runs in ``run_dirs`` and save
    the figure to ``output`` (any format matplotlib writes) if given.

    Returns the matplotlib ``Figure``. Raises ``ConfigError`` on bad input.
    """
    # Figure without pyplot: no global backend switch and no GUI, so this
    # works headless and does not disturb a user's interactive session.
    from matplotlib.figure import Figure

    if not run_dirs:
        raise ConfigError("no run directories given")
    unique = list(dict.fromkeys(Path(p).resolve() for p in run_dirs))
    runs = [load_run(p) for p in unique]
    groups = group_runs(runs, x=x, band=band)

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, group in enumerate(groups):
        color = f"C{i % 10}"
        marker = "o" if group.x.size < 30 else None
        ax.plot(
            group.x, group.mean, color=color, marker=marker, ms=3, label=group.label
        )
        if len(group.runs) > 1:
            ax.fill_between(group.x, group.low, group.high, color=color, alpha=0.2)
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel("evaluation return (mean policy)")
    if title is None:
        envs = {r.config.get("env_id") for r in runs if r.config is not None}
        title = envs.pop() if len(envs) == 1 and None not in envs else None
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_title = None
    if any(len(g.runs) > 1 for g in groups):
        legend_title = f"line: mean over seeds, band: {BANDS[band]}"
    ax.legend(title=legend_title, fontsize="small", title_fontsize="small")
    if output is not None:
        try:
            fig.savefig(output, dpi=150)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot write {output}: {err}") from None
    return fig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, exit status 2 (through main), instead of usage + message.
        raise ConfigError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pes_rl.plot",
        description="Plot evaluation return curves of training runs. Runs whose "
        "config.json differs only in the seed are drawn as one line (mean over "
        "seeds) with a band; lines are labelled by the config keys that differ.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument(
        "-o", "--output", required=True, help="image file to write, e.g. curves.png"
    )
    parser.add_argument(
        "--x",
        choices=tuple(X_AXES),
        default="env_steps",
        help="x axis (default: env_steps)",
    )
    parser.add_argument(
        "--band",
        choices=tuple(BANDS),
        default="minmax",
        help="spread across seeds: min-max or mean ± 1 std (default: minmax)",
    )
    parser.add_argument("--title", help="figure title (default: the environment)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        fig = plot_runs(
            args.run_dirs, args.output, x=args.x, title=args.title, band=args.band
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lines = len(fig.axes[0].get_lines())
    runs = len(dict.fromkeys(Path(p).resolve() for p in args.run_dirs))
    print(f"wrote {args.output} ({runs} runs, {lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
