"""Learning a learning-rate schedule: truncated ES stalls where PES and NRES
reach the global optimum.

Reproduces the PES paper's toy meta-learning experiment (Vicol, Metz and
Sohl-Dickstein, ICML 2021, arXiv 2112.13835, "LR Optimization for 2D
Regression"; google-research ``persistent_es/toy_regression.py``) with the
shipped problem ``pes_rl.problems.toys.LRScheduleToy``: theta = two log
learning rates of the schedule ``lr_t = (1 - t/T) e^theta_0 + (t/T)
e^theta_1`` for SGD on a 2-D loss with one global minimum and many local
ones, T = 100, K = 10, 100 particles, sigma 0.3, Adam (lr 0.01, b1 0.99, as
the paper's code), from theta = (-4, -4). The meta-objective is the sum of
the inner losses along the run; its exact surface is drawn with the
trajectories of theta.

Where this differs from the paper: pairs run in lockstep as there
(``--stagger`` runs them staggered); 3 seeds of 5000 updates (the paper's
code runs 20000 iterations of one seed); TES advances its shared state with
theta like the paper's.

    python experiments/lr_schedule_toy.py            # 4 methods x 3 seeds, ~2 min
    python experiments/lr_schedule_toy.py --quick    # 1 seed, 2000 updates, < 1 min

Writes ``lr_schedule_toy.csv`` (theta and meta-loss along every run) and
``lr_schedule_toy.png`` to ``--out`` (default ``experiments/results``;
``runs/quick/lr_schedule_toy`` with ``--quick``) and prints a table. From the
command line: ``python -m pes_rl.train --problem lr_schedule_toy``.
"""

import argparse
import csv
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from reproduce_common import output_dir

from pes_rl.agents import NRES, PES, FullES, TruncatedES
from pes_rl.problems.toys import LRScheduleToy

METHODS = {"PES": PES, "NRES": NRES, "TES": TruncatedES, "FullES": FullES}
COLORS = {"PES": "tab:blue", "NRES": "tab:green", "TES": "tab:red", "FullES": "0.3"}
ADAM = optax.adam(0.01, b1=0.99)  # one object: agents share compiled code


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2000 updates")
    parser.add_argument(
        "--out",
        default=None,
        help="default experiments/results, runs/quick/lr_schedule_toy with --quick",
    )
    parser.add_argument("--seeds", type=int, default=None, help="default 3")
    parser.add_argument("--updates", type=int, default=None, help="default 5000")
    parser.add_argument("--stagger", action="store_true")
    args = parser.parse_args()
    args.out = str(output_dir(args.out, args.quick, "lr_schedule_toy"))
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.updates = args.updates or (2000 if args.quick else 5000)
    return args


def meta_loss(theta: jax.Array, problem: LRScheduleToy) -> jax.Array:
    """The sum of the inner losses of one whole run under ``theta``."""

    def step(state, _):
        state, reward, _ = problem.step(theta, state, None)
        return state, reward

    _, rewards = jax.lax.scan(step, problem.init(None), None, length=problem.horizon)
    return -rewards.sum()


def run(cls, seed: int, args: argparse.Namespace, problem) -> np.ndarray:
    """Theta after every device call (10 updates), from the start, over the
    inner steps of ``args.updates`` windows of 100 particles x K = 10 (the
    same budget for every method: FullES makes one update per 10 windows)."""
    agent = cls(
        problem=problem,
        num_particles=100,
        truncation_length=10,
        sigma=0.3,
        optimizer=ADAM,
        stagger=args.stagger,
        updates_per_call=10,
        seed=seed,
    )
    thetas = [np.asarray(agent.theta)]
    agent.learn(
        args.updates * 100 * 10,
        callback=lambda info: thetas.append(np.asarray(agent.theta)),
        progress_bar=False,
    )
    return np.array(thetas)


def plot(path: Path, traces: dict, problem, grid: np.ndarray, surface) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    levels = np.quantile(surface, np.linspace(0, 1, 25))
    contour = ax.contourf(grid, grid, surface.T, levels=levels, cmap="viridis_r")
    fig.colorbar(contour, ax=ax, label="meta-loss: sum of inner losses over T = 100")
    for name, runs in traces.items():
        for i, theta in enumerate(runs):
            label = name if i == 0 else None
            ax.plot(theta[:, 0], theta[:, 1], color=COLORS[name], lw=1.5, label=label)
            ax.plot(*theta[-1], "o", color=COLORS[name], ms=5)
    ax.plot(-4, -4, "k*", ms=12, label="start (-4, -4)")
    ax.set_xlabel("theta_0: log initial learning rate")
    ax.set_ylabel("theta_1: log final learning rate")
    ax.set_title("Learning a learning-rate schedule (PES paper's 2-D toy)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    problem = LRScheduleToy()
    loss = jax.jit(jax.vmap(lambda theta: meta_loss(theta, problem)))
    traces, rows = {}, []
    for name, cls in METHODS.items():
        traces[name] = [run(cls, seed, args, problem) for seed in range(args.seeds)]
        for seed, thetas in enumerate(traces[name]):
            losses = np.asarray(loss(jnp.asarray(thetas)))
            rows += [
                [name, seed, i, f"{t[0]:.5g}", f"{t[1]:.5g}", f"{m:.5g}"]
                for i, (t, m) in enumerate(zip(thetas, losses, strict=True))
            ]
    with open(out / "lr_schedule_toy.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "call", "theta0", "theta1", "meta_loss"])
        writer.writerows(rows)
    grid = np.linspace(-6.0, 4.0, 101)
    mesh = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    surface = np.asarray(loss(jnp.asarray(mesh))).reshape(len(grid), len(grid))
    plot(out / "lr_schedule_toy.png", traces, problem, grid, surface)

    best = np.unravel_index(surface.argmin(), surface.shape)
    print(
        f"lr schedule toy, T=100, K=10, N=100, sigma=0.3, Adam 0.01 (b1 0.99), "
        f"{args.updates} updates, {args.seeds} seeds, "
        f"{'staggered' if args.stagger else 'lockstep'}; grid minimum "
        f"{surface[best]:.0f} at theta = ({grid[best[0]]:.1f}, {grid[best[1]]:.1f}), "
        f"start {float(meta_loss(jnp.array([-4.0, -4.0]), problem)):.0f}"
    )
    print("| method | final theta (per seed) | final meta-loss (mean ± std) |")
    print("|---|---|---|")
    for name, runs in traces.items():
        final = np.array([r[-1] for r in runs])
        losses = np.asarray(loss(jnp.asarray(final)))
        thetas = "; ".join(f"({a:.2f}, {b:.2f})" for a, b in final)
        print(f"| {name} | {thetas} | {losses.mean():.0f} ± {losses.std():.0f} |")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
