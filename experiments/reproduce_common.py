"""Shared helpers of the paper-reproduction scripts (``swimmer_paper.py``,
``halfcheetah_nres.py``): run ``python -m pes_rl.train`` one run at a time,
collect its evaluations, aggregate seeds, tabulate and plot.

Not a library module: the scripts import it from ``experiments/`` (the
directory of the running script is on ``sys.path``).
"""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pes_rl.core.algorithms import REGISTRY

# The committed results the docs show (docs/results/); only full runs write here.
RESULTS = Path(__file__).resolve().parent / "results"


def output_dir(out: str | None, quick: bool, name: str) -> Path:
    """Where a script writes: ``--out`` if given, else ``experiments/results``
    for a full run and ``runs/quick/NAME`` for ``--quick``, whose numbers
    must never replace the committed ones."""
    path = Path(out) if out is not None else None
    if path is None:
        path = Path("runs") / "quick" / name if quick else RESULTS
    if quick and path.resolve() == RESULTS:
        raise SystemExit(
            f"error: --quick does not write into {RESULTS}: pass another --out"
        )
    return path


CURVE_FIELDS = (
    "setting",
    "algo",
    "seed",
    "env_steps",
    "seconds",
    "train_seconds",
    "eval_return",
    "eval_return_std",
)
# Command-line fragments of other people's training jobs and test runs on a
# shared machine.
BUSY_MARKERS = ("pes_rl.train", "swimmer_comparison.py", "pytest")
ALGO_NAMES = {a.name: a.label for a in REGISTRY.values()}
ALGO_COLORS = {"pes": "tab:blue", "nres": "tab:green", "tes": "tab:red", "es": "0.3"}


@dataclass
class RunResult:
    """One training run: its evaluations and the wall-clock of its process."""

    setting: str
    algo: str
    seed: int
    metrics: list[dict] = field(default_factory=list)
    wall_seconds: float | None = None  # whole subprocess: startup, compile, evals

    def column(self, key: str) -> np.ndarray:
        return np.array([float(m[key]) for m in self.metrics])


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def busy_processes() -> list[str]:
    """Command lines of training jobs not started by this process tree."""
    mine = _ancestors()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(marker in cmd for marker in BUSY_MARKERS):
            found.append(f"{entry.name}: {cmd.strip()[:120]}")
    return found


def wait_for_idle(poll_seconds: float = 30.0) -> None:
    """Block while someone else's training job runs (shared CPU etiquette)."""
    announced = False
    while busy := busy_processes():
        if not announced:
            print("waiting for other training jobs to finish:", file=sys.stderr)
            for line in busy:
                print(f"  {line}", file=sys.stderr)
            announced = True
        time.sleep(poll_seconds)


def read_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def train(
    run_dir: Path,
    env: str,
    algo: str,
    seed: int,
    flags: Sequence[str],
    setting: str,
    reuse: bool = True,
    wait: bool = True,
) -> RunResult:
    """Run ``python -m pes_rl.train`` in a fresh process (its wall-clock thus
    includes startup and JIT compiles) and return its evaluations.

    A run directory holding a ``done.json`` from an earlier call with the same
    command is reused when ``reuse``; an unfinished one is started afresh.
    """
    command = [
        sys.executable,
        "-m",
        "pes_rl.train",
        "--env",
        env,
        "--algo",
        algo,
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        "--no-progress",
        *flags,
    ]
    done = run_dir / "done.json"
    if reuse and done.is_file():
        record = json.loads(done.read_text())
        if record.get("flags") == list(flags):
            print(f"reusing {run_dir} ({record['wall_seconds']:.0f} s)")
            return RunResult(
                setting, algo, seed, read_metrics(run_dir), record["wall_seconds"]
            )
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if wait:
        wait_for_idle()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"training failed ({result.returncode}): {' '.join(command)}")
    done.write_text(json.dumps({"flags": list(flags), "wall_seconds": wall}) + "\n")
    metrics = read_metrics(run_dir)
    print(
        f"{setting} {algo} seed {seed}: final return "
        f"{metrics[-1]['eval_return']:.1f} after {metrics[-1]['env_steps']} "
        f"env steps, {wall:.1f} s wall-clock"
    )
    return RunResult(setting, algo, seed, metrics, wall)


def write_curves(path: Path, runs: Sequence[RunResult]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CURVE_FIELDS)
        for run in runs:
            for m in run.metrics:
                writer.writerow(
                    [run.setting, run.algo, run.seed]
                    + [_fmt(m.get(k)) for k in CURVE_FIELDS[3:]]
                )


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_curves(path: Path, setting: str | None = None) -> list[RunResult]:
    """Runs from a curves CSV (``write_curves``'s, or ``swimmer_comparison.py``'s
    columns algo, seed, env_steps, seconds, eval_return); ``setting``
    overrides or supplies the setting column."""
    runs: dict[tuple, RunResult] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = setting or row.get("setting", "")
            key = (name, row["algo"], int(row["seed"]))
            run = runs.setdefault(key, RunResult(*key))
            run.metrics.append(
                {k: float(v) for k, v in row.items() if k in CURVE_FIELDS[3:] and v}
            )
    return list(runs.values())


def first_reach(run: RunResult, threshold: float) -> dict | None:
    """The first evaluation at or above ``threshold``, or None."""
    return next((m for m in run.metrics if m["eval_return"] >= threshold), None)


def late_return(run: RunResult, fraction: float = 0.2) -> float:
    """Mean evaluation return over the last ``fraction`` of the run's steps."""
    steps = run.column("env_steps")
    returns = run.column("eval_return")
    return float(returns[steps >= (1 - fraction) * steps[-1]].mean())


def summarise(runs: Sequence[RunResult], threshold: float) -> list[dict]:
    """Per (setting, algo): final return and the mean return over the last
    20 % of steps, each as mean and std over seeds (population std); seeds
    reaching ``threshold`` and the env steps and seconds they took (mean
    over the seeds that reached it); the runs' own clocks (``seconds`` of
    the last evaluation: compiles and evaluations included, interpreter
    startup not) and, where known, the whole process's wall-clock."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for run in runs:
        groups.setdefault((run.setting, run.algo), []).append(run)
    rows = []
    settings = list(dict.fromkeys(r.setting for r in runs))  # first seen first
    keys = sorted(groups, key=lambda k: (settings.index(k[0]), algo_rank(k[1])))
    for setting, algo in keys:
        members = groups[(setting, algo)]
        finals = np.array([r.metrics[-1]["eval_return"] for r in members])
        reached = [m for r in members if (m := first_reach(r, threshold))]
        late = np.array([late_return(r) for r in members])
        clocks = [r.metrics[-1]["seconds"] for r in members]
        walls = [r.wall_seconds for r in members if r.wall_seconds is not None]
        rows.append(
            {
                "setting": setting,
                "algo": algo,
                "seeds": len(members),
                "env_steps": int(max(r.metrics[-1]["env_steps"] for r in members)),
                "final_return_mean": float(finals.mean()),
                "final_return_std": float(finals.std()),
                "final_returns": [round(float(x), 1) for x in finals],
                "late_return_mean": float(late.mean()),
                "late_return_std": float(late.std()),
                "threshold": threshold,
                "seeds_reached": len(reached),
                "steps_to_threshold_mean": (
                    float(np.mean([m["env_steps"] for m in reached]))
                    if reached
                    else None
                ),
                "seconds_to_threshold_mean": (
                    float(np.mean([m["seconds"] for m in reached])) if reached else None
                ),
                "run_seconds_mean": float(np.mean(clocks)),
                "run_seconds": [round(float(c), 1) for c in clocks],
                "process_seconds": [round(float(w), 1) for w in walls],
            }
        )
    return rows


def algo_rank(algo: str) -> int:
    """Position in tables and legends: PES, NRES, TES, FullES, others."""
    order = list(ALGO_NAMES)
    return order.index(algo) if algo in order else len(order)


TABLE_NOTE = (
    "final return: last evaluation (runs before issue 30: 10 episodes, since then "
    "--eval-episodes); last 20 %: mean evaluation "
    "return over the last 20 % of the run's steps; both mean ± std over seeds. "
    "Steps and seconds to {threshold:g}: first evaluation at or above it, mean "
    "over the seeds that reached it. s per run: the run's own clock (compiles "
    "and evaluations included)."
)


def markdown_table(rows: Sequence[dict]) -> str:
    """The rows of ``summarise`` as a markdown table."""
    threshold = rows[0]["threshold"] if rows else math.nan
    lines = [
        f"| setting | method | final return | last 20 % | seeds ≥ {threshold:g} | "
        f"env steps to {threshold:g} | seconds to {threshold:g} | env steps | "
        "s per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = r["steps_to_threshold_mean"]
        secs = r["seconds_to_threshold_mean"]
        lines.append(
            f"| {r['setting']} | {ALGO_NAMES.get(r['algo'], r['algo'])} | "
            f"{r['final_return_mean']:.1f} ± {r['final_return_std']:.1f} | "
            f"{r['late_return_mean']:.1f} ± {r['late_return_std']:.1f} | "
            f"{r['seeds_reached']}/{r['seeds']} | "
            f"{f'{steps / 1e3:.0f}k' if steps is not None else '–'} | "
            f"{f'{secs:.0f}' if secs is not None else '–'} | "
            f"{r['env_steps'] / 1e3:.0f}k | {r['run_seconds_mean']:.0f} |"
        )
    return "\n".join(lines)


def aggregate(
    runs: Sequence[RunResult], x: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max of eval_return over runs, interpolated onto the
    union of their x values within the range all runs cover."""
    curves = [(r.column(x), r.column("eval_return")) for r in runs]
    start = max(xs[0] for xs, _ in curves)
    end = min(xs[-1] for xs, _ in curves)
    grid = np.unique(np.concatenate([xs for xs, _ in curves]))
    grid = grid[(grid >= start) & (grid <= end)]
    ys = np.stack([np.interp(grid, xs, y) for xs, y in curves])
    return grid, ys.mean(0), ys.min(0), ys.max(0)


def plot_panel(ax, runs: Sequence[RunResult], x: str, threshold: float | None):
    """One thick line per algorithm (mean over seeds) and a thin line for
    each seed, which shows the spread, outliers included."""
    by_algo: dict[str, list[RunResult]] = {}
    for run in runs:
        by_algo.setdefault(run.algo, []).append(run)
    for algo in sorted(by_algo, key=algo_rank):
        members = by_algo[algo]
        color = ALGO_COLORS.get(algo)
        if len(members) > 1:
            for run in members:
                ax.plot(
                    run.column(x),
                    run.column("eval_return"),
                    color=color,
                    lw=0.6,
                    alpha=0.4,
                )
        grid, mean, _, _ = aggregate(members, x)
        n = len(members)
        label = f"{ALGO_NAMES.get(algo, algo)} ({n} seed{'s' if n > 1 else ''})"
        ax.plot(grid, mean, color=color, lw=2, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls=":", lw=1)
    ax.grid(alpha=0.3)
    ax.set_xlabel(
        "training env steps"
        if x == "env_steps"
        else "wall-clock seconds of the run (compiles and evaluations included)"
    )
