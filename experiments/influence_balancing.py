"""Influence balancing: truncation bias sends truncated ES the wrong way.

Reproduces the influence-balancing experiment of the PES paper (Vicol, Metz
and Sohl-Dickstein, ICML 2021, arXiv 2112.13835, section 6), a task from
Tallec and Ollivier ("Unbiased Online Recurrent Optimization", ICLR 2018,
arXiv 1702.05043): a scalar theta with a positive short-term and a negative
long-term influence on the loss: the shipped problem
``pes_rl.problems.toys.InfluenceBalancing`` on the jitted engine, its exact
answers in ``influence_exact.py``. PES, NRES (Li et al.
2023, arXiv 2304.12180) and truncated ES run from the same initial theta with
the same truncation length K = 1 and particle count; the two unbiased online
estimators settle at the optimum of the episode return (computed exactly from
the JAX unroll), while truncated ES, which sees only the short-term effect,
moves away from it.

    python experiments/influence_balancing.py            # full: about 3 min
    python experiments/influence_balancing.py --quick    # about 20 s

Writes ``influence_balancing.csv`` (theta after every update, per method and
seed) and ``influence_balancing.png`` to ``--out`` (default
``experiments/results``; ``runs/quick/influence_balancing`` with ``--quick``)
and prints a summary table. The same problem trains from the command line:
``python -m pes_rl.train --problem influence_balancing``.
"""

import argparse
import csv
import time
from pathlib import Path

import influence_exact  # experiments/ is on sys.path
import matplotlib
import numpy as np
from reproduce_common import output_dir

from pes_rl.agents import NRES, PES, TruncatedES
from pes_rl.problems.toys import InfluenceBalancing

METHODS = {"PES": PES, "NRES": NRES, "TES": TruncatedES}
COLORS = {"PES": "tab:blue", "NRES": "tab:green", "TES": "tab:red"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 600 updates")
    parser.add_argument(
        "--out",
        default=None,
        help="default experiments/results, runs/quick/influence_balancing with --quick",
    )
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (2 quick)")
    parser.add_argument("--updates", type=int, default=None, help="default 3000")
    parser.add_argument("--num-particles", type=int, default=100)
    parser.add_argument("--truncation-length", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=0.1)
    # The effect of theta on s[0] arrives over about 40 steps, a delayed
    # feedback loop: steps much above 2e-4 make PES and NRES oscillate and
    # diverge (5e-4 does, on every seed tried).
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--theta0", type=float, default=0.5, help="as the PES code")
    args = parser.parse_args()
    args.out = str(output_dir(args.out, args.quick, "influence_balancing"))
    if args.seeds is None:
        args.seeds = 2 if args.quick else 5
    if args.updates is None:
        args.updates = 600 if args.quick else 3000
    return args


def run(cls, seed: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Theta and cumulative env steps before the first and after every update."""
    agent = cls(
        problem=InfluenceBalancing(horizon=args.horizon, theta0=args.theta0),
        num_particles=args.num_particles,
        truncation_length=args.truncation_length,
        sigma=args.sigma,
        learning_rate=args.learning_rate,
        optimizer="sgd",
        fitness_shaping="none",
        seed=seed,
    )
    thetas, steps = [args.theta0], [0]
    for _ in range(args.updates):
        info = agent.update()
        thetas.append(float(agent.theta[0]))
        steps.append(info["env_steps"])
    agent.close()
    return np.array(thetas), np.array(steps)


def plot(path: Path, traces: dict, optimum: float, args: argparse.Namespace) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_grad) = plt.subplots(1, 2, figsize=(12, 4.5))
    updates = np.arange(args.updates + 1)
    for name, runs in traces.items():
        for theta in runs:
            ax.plot(updates, theta, color=COLORS[name], alpha=0.25, lw=0.8)
        ax.plot(updates, np.mean(runs, 0), color=COLORS[name], lw=2, label=name)
    ax.axhline(optimum, color="k", ls="--", lw=1, label=f"true optimum {optimum:.3f}")
    ax.set_xlabel("update (one window of K steps each)")
    ax.set_ylabel("theta")
    ax.set_title(
        f"Influence balancing: K={args.truncation_length}, T={args.horizon}, "
        f"N={args.num_particles}, {args.seeds} seeds"
    )
    ax.legend()

    # The sign of the exact gradient against the direction truncated ES follows.
    high = max(args.theta0, max(np.max(r) for r in traces["TES"])) + 0.2
    grid = np.linspace(min(optimum, 0.0) - 0.5, high, 121)
    exact = np.asarray(influence_exact.exact_gradient(grid, horizon=args.horizon))
    trunc = np.asarray(influence_exact.truncated_gradient(grid, horizon=args.horizon))
    ax_grad.plot(grid, exact / np.abs(exact).max(), color="k", label="exact gradient")
    ax_grad.plot(
        grid,
        trunc / np.abs(trunc).max(),
        color=COLORS["TES"],
        label="truncated gradient (K=1, TES's mean direction)",
    )
    ax_grad.fill_between(
        grid, -1, 1, where=np.sign(exact) != np.sign(trunc), color="0.9", lw=0
    )
    ax_grad.axhline(0, color="0.5", lw=0.8)
    ax_grad.axvline(optimum, color="k", ls="--", lw=1)
    ax_grad.axvline(args.theta0, color="0.5", ls=":", lw=1, label="initial theta")
    ax_grad.set_xlabel("theta")
    ax_grad.set_ylabel("d return / d theta (each scaled by its max |.|)")
    ax_grad.set_title("Gradient sign (grey: the two disagree)")
    ax_grad.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    optimum = influence_exact.optimum(args.horizon)
    traces: dict[str, list[np.ndarray]] = {}
    rows = []
    for name, cls in METHODS.items():
        traces[name] = []
        for seed in range(args.seeds):
            thetas, steps = run(cls, seed, args)
            traces[name].append(thetas)
            rows += [
                [name, seed, u, int(s), f"{t:.6g}"]
                for u, (t, s) in enumerate(zip(thetas, steps, strict=True))
            ]
    with open(out / "influence_balancing.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "update", "env_steps", "theta"])
        writer.writerows(rows)
    plot(out / "influence_balancing.png", traces, optimum, args)

    tail = max(1, args.updates // 10)
    print(
        f"influence balancing, K={args.truncation_length}, T={args.horizon}, "
        f"N={args.num_particles}, sigma={args.sigma}, lr={args.learning_rate}, "
        f"theta0={args.theta0}, {args.updates} updates, {args.seeds} seeds"
    )
    print(
        f"true optimum theta* = {optimum:.4f}; exact gradient at theta0 = "
        f"{float(influence_exact.exact_gradient(args.theta0, args.horizon)):+.1f}, "
        "truncated (K=1) = "
        f"{float(influence_exact.truncated_gradient(args.theta0, args.horizon)):+.1f}"
    )
    print(f"| method | final theta | mean of last {tail} updates | theta* |")
    print("|---|---|---|---|")
    for name, runs in traces.items():
        final = np.array([r[-1] for r in runs])
        late = np.array([r[-tail:].mean() for r in runs])
        print(
            f"| {name} | {final.mean():.4f} ± {final.std():.4f} | "
            f"{late.mean():.4f} ± {late.std():.4f} | {optimum:.4f} |"
        )
    print(f"({time.perf_counter() - start:.0f} s; ± is the std over seeds)")


if __name__ == "__main__":
    main()
