"""Meta-learning a learning-rate schedule for an MLP on digits, against a
grid search of the same two parameters.

The PES paper's "MNIST learning rate schedule" (Vicol, Metz and
Sohl-Dickstein, ICML 2021, arXiv 2112.13835; google-research
``persistent_es/hyperopt.py`` with ``--tune_params=lr:inverse-time-decay``)
on the shipped problem ``lr_schedule_digits``: theta = (log initial lr, log
decay) of ``lr_t = e^theta_0 / (1 + t/T)^(e^theta_1)`` for SGD with momentum
0.9 training a 64-100-100-10 MLP, T = 5000, with two meta-objectives: the
mean training loss along the run, and the mean validation accuracy (not
differentiable). PES, NRES and TES with K = 10 and K = 100, and FullES
(K = T), 3 seeds each, the same budget of inner steps for every method.

Where this differs from the paper: scikit-learn's bundled digits (1,200
training and 597 validation images of 8x8 pixels), not MNIST; 8 particles
(the paper: 1000); Adam with a step decaying linearly from 0.05 to 0.005
over each run (the paper: 0.01 over 5000 updates, far more inner steps than
here); a budget of 3 inner runs per
particle (15,000 steps); sigma 0.1 and pairs in lockstep as the paper.

    python experiments/lr_schedule_digits.py           # ~20 min on 2 cores
    python experiments/lr_schedule_digits.py --quick   # T = 200, < 1 min

Writes ``lr_schedule_digits.png``, ``lr_schedule_digits_curves.csv`` and
``lr_schedule_digits_table.md`` to ``--out`` (default
``experiments/results``; ``runs/quick/lr_schedule_digits`` with
``--quick``). The curves' meta-objective is read off the grid (bilinear
interpolation); the table's final values are whole inner runs.
"""

import argparse
import csv
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np
from meta_common import COLORS, inner_returns, train
from reproduce_common import output_dir
from scipy.interpolate import RegularGridInterpolator

from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.digits import LRScheduleDigits

LABELS = {"train_loss": "mean training loss", "val_accuracy": "mean val. accuracy"}
SETTINGS = dict(num_particles=8, sigma=0.1, stagger=False)
STEP, FINAL_STEP = 0.05, 0.005  # Adam's, decaying linearly over each run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 200, 1 seed, K = 10")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", type=int, default=None, help="default 3")
    parser.add_argument("--horizon", type=int, default=None, help="T, default 5000")
    parser.add_argument(
        "--runs", type=int, default=3, help="budget: inner runs per particle"
    )
    args = parser.parse_args()
    args.out = Path(output_dir(args.out, args.quick, "lr_schedule_digits"))
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.horizon = args.horizon or (200 if args.quick else 5000)
    args.objectives = ("train_loss",) if args.quick else tuple(LABELS)
    args.truncations = (10,) if args.quick else (10, 100)
    return args


def configs(args) -> list[tuple[str, int]]:
    """(method, K) pairs: the truncated methods at each K, FullES at T."""
    pairs = [(m, k) for k in args.truncations for m in ("PES", "NRES", "TES")]
    return pairs + [("FullES", args.horizon)]


def score(returns: np.ndarray, objective: str) -> np.ndarray:
    """A run's return as the meta-objective: the mean training loss, or
    the mean validation accuracy."""
    return -returns if objective == "train_loss" else returns


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    grid0 = np.arange(-7.0, 0.01, 1.0 if args.quick else 0.5)
    grid1 = np.arange(-3.0, 3.01, 1.5 if args.quick else 0.75)
    mesh = np.stack(np.meshgrid(grid0, grid1, indexing="ij"), -1).reshape(-1, 2)
    results, rows, table = {}, [], []
    for objective in args.objectives:
        problem = LRScheduleDigits(horizon=args.horizon, objective=objective)
        surface = score(inner_returns(problem, mesh, jax.random.key(1)), objective)
        surface = surface.reshape(len(grid0), len(grid1))
        interpolate = RegularGridInterpolator((grid0, grid1), surface)
        best = np.unravel_index(
            surface.argmin() if objective == "train_loss" else surface.argmax(),
            surface.shape,
        )
        best_theta = np.array([grid0[best[0]], grid1[best[1]]])
        runs = {}
        for method, k in configs(args):
            for seed in range(args.seeds):
                budget = args.runs * args.horizon * SETTINGS["num_particles"]
                updates = budget // (k * SETTINGS["num_particles"])
                run = train(
                    method,
                    problem,
                    seed,
                    budget,
                    truncation_length=k,
                    updates_per_call=max(1, 100 // k),
                    optimizer="adam",
                    learning_rate=LinearDecay(STEP, FINAL_STEP, updates),
                    **SETTINGS,
                )
                clamped = np.clip(run["theta"], [grid0[0], grid1[0]], [0.0, 3.0])
                run["curve"] = interpolate(clamped)
                runs[method, k, seed] = run
                rows += [
                    [
                        objective,
                        method,
                        k,
                        seed,
                        s,
                        f"{t:.2f}",
                        *th.round(4),
                        f"{c:.5g}",
                    ]
                    for s, t, th, c in zip(
                        run["steps"],
                        run["seconds"],
                        run["theta"],
                        run["curve"],
                        strict=True,
                    )
                ]
            print(
                f"{objective} {method} K={k} done ({time.perf_counter() - start:.0f} s)"
            )
        # Final thetas and the grid's best, on the same 4 fresh inner runs.
        finals = np.array([run["theta"][-1] for run in runs.values()])
        exact = score(
            inner_returns(
                problem, np.vstack([finals, best_theta]), jax.random.key(2), 4
            ),
            objective,
        )
        for (method, k), group in _groups(runs, exact[:-1]).items():
            thetas, values = group
            table.append(
                f"| {LABELS[objective]} | {method} | {k} | "
                f"({thetas[:, 0].mean():.2f}, {thetas[:, 1].mean():.2f}) | "
                f"{values.mean():.4f} ± {values.std():.4f} | "
                f"({best_theta[0]:.1f}, {best_theta[1]:.2f}): {exact[-1]:.4f} |"
            )
        results[objective] = (grid0, grid1, surface, runs, best_theta)
    with open(args.out / "lr_schedule_digits_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["objective", "method", "K", "seed", "inner_steps", "seconds"]
            + ["theta0", "theta1", "meta_objective_from_grid"]
        )
        writer.writerows(rows)
    header = (
        f"T = {args.horizon}, {SETTINGS['num_particles']} particles, budget "
        f"{args.runs} inner runs per particle, {args.seeds} seeds; final theta "
        "(mean over seeds) and its meta-objective over 4 fresh inner runs "
        "(mean ± std over seeds); the grid's best on the same runs.\n\n"
        "| objective | method | K | final theta | final meta-objective "
        "| grid best |\n|---|---|---|---|---|---|\n"
    )
    (args.out / "lr_schedule_digits_table.md").write_text(
        header + "\n".join(table) + "\n"
    )
    plot(args.out / "lr_schedule_digits.png", results, args)
    print(header + "\n".join(table))
    print(f"({time.perf_counter() - start:.0f} s)")


def _groups(runs: dict, values: np.ndarray) -> dict:
    """Per (method, K): the final thetas and values of its seeds."""
    groups: dict = {}
    for (method, k, _), run, value in zip(runs, runs.values(), values, strict=True):
        thetas, vals = groups.get((method, k), ([], []))
        groups[method, k] = (thetas + [run["theta"][-1]], vals + [value])
    return {key: (np.array(t), np.array(v)) for key, (t, v) in groups.items()}


def plot(path: Path, results: dict, args) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(results)
    fig, axes = plt.subplots(rows, 3, figsize=(16, 4.6 * rows), squeeze=False)
    for row, (objective, (grid0, grid1, surface, runs, best)) in enumerate(
        results.items()
    ):
        heat, by_steps, by_time = axes[row]
        image = heat.contourf(grid0, grid1, surface.T, levels=20, cmap="viridis")
        fig.colorbar(image, ax=heat, label=LABELS[objective])
        heat.plot(*best, "w*", ms=14, label="grid best")
        for (method, k, seed), run in runs.items():
            style = "--" if k == 100 else "-"
            label = f"{method} K={k}" if seed == 0 else None
            color = COLORS[method]
            heat.plot(*run["theta"].T, style, color=color, lw=1.2, label=label)
            by_steps.plot(run["steps"], run["curve"], style, color=color, label=label)
            by_time.plot(run["seconds"], run["curve"], style, color=color, label=label)
        heat.set_xlabel("theta_0: log initial learning rate")
        heat.set_ylabel("theta_1: log decay")
        heat.legend(fontsize=7, loc="lower left")
        for ax, xlabel in ((by_steps, "inner steps (all particles)"), (by_time, "s")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{LABELS[objective]} over T = {args.horizon}")
            if objective == "train_loss":
                ax.set_yscale("log")
        by_steps.legend(fontsize=7)
        heat.set_title(f"{LABELS[objective]}: grid and theta trajectories")
    fig.suptitle(
        "Learning-rate schedule for a 64-100-100-10 MLP on sklearn digits "
        f"(T = {args.horizon}; solid K = 10, dashed K = 100)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
