"""Tuning 20 hyperparameters at once: a learning rate and a momentum per
parameter block of an MLP with 4 hidden layers, by random search, truncated
ES, PES and NRES, 4 seeds each, on the same budget of inner steps.

The PES paper's "tuning many hyperparameters" (Vicol, Metz and
Sohl-Dickstein, ICML 2021, arXiv 2112.13835; google-research
``persistent_es``, ``--tune_params=lr:fixed-pl,mom:fixed-pl``) on the
shipped problem ``hyperparams_digits``: T = 1000 steps of SGD with
per-block momentum, meta-objective the mean validation loss along the run
(a validation minibatch after every step). Every seed starts the ES methods
from a theta drawn from the box random search samples (log lr uniform in
[1e-4, 1], logit momentum uniform in [-3, 3]).

The ES methods run the CLI's preset (``pes_rl/agents/presets.py``). Where this
differs from the paper (``hyperparams_digits_paper.py`` runs the paper's
protocol): scikit-learn's bundled digits, not (Fashion-)MNIST; 4 hidden
layers of 50 units; ES starting in random search's box, not a slow, safe
one; a budget of 200 inner runs (200,000 inner steps) per method and seed,
the paper's 50,000 updates of 10 particles being far more; Adam with a
step decaying linearly from 0.03 to 0.003 over the run (the paper: a
constant 0.01); the final theta reported, not the best so far; N = 10,
K = 10, sigma 0.3 and pairs in lockstep as the paper. The paper trains no
NRES.

    python experiments/hyperparams_digits.py           # ~10 min on 2 cores
    python experiments/hyperparams_digits.py --quick   # T = 100, < 1 min

Writes ``hyperparams_digits.png``, ``hyperparams_digits_curves.csv`` and
``hyperparams_digits_table.md`` to ``--out`` (default
``experiments/results``; ``runs/quick/hyperparams_digits`` with
``--quick``). The final validation loss is on all 597 validation images
after T steps, the mean of 10 fresh inner runs.
"""

import argparse
import csv
import time
from pathlib import Path

import jax
import matplotlib
import numpy as np
from meta_common import COLORS, inner_rewards, train
from reproduce_common import output_dir

from pes_rl.agents.presets import PRESETS
from pes_rl.core.config import expected_windows
from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.digits import HyperparamsDigits, cross_entropy

# The CLI's preset, so that `python -m pes_rl.train --problem
# hyperparams_digits --algo pes --seed 3` is this script's PES run on seed 3.
PRESET = PRESETS["hyperparams_digits"]["common"]
SETTINGS = {
    name: PRESET[name]
    for name in ("num_particles", "truncation_length", "sigma", "optimizer", "stagger")
} | {"updates_per_call": 10}  # theta recorded every 10 updates; same numbers
METHODS = ("random search", "TES", "PES", "NRES")
SEEDS = (3, 5, 7, 11)  # the paper's


def parse_args(
    name: str = "hyperparams_digits", doc: str = __doc__, runs=(60, 200), extra=None
) -> argparse.Namespace:
    """The flags of this script and of ``hyperparams_digits_paper.py``;
    ``runs``: the default budget in inner runs, (--quick, full); ``extra``
    adds a script's own flags to the parser."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if extra is not None:
        extra(parser)
    parser.add_argument("--quick", action="store_true", help="T = 100, 1 seed")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", type=int, default=None, help="default 4")
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help=f"budget in inner runs, default {runs[1]}",
    )
    args = parser.parse_args()
    args.out = Path(output_dir(args.out, args.quick, name))
    args.seeds = SEEDS[: args.seeds or (1 if args.quick else 4)]
    args.runs = args.runs or runs[args.quick is False]
    args.horizon = 100 if args.quick else 1000
    return args


def final_val_loss(problem, thetas: np.ndarray, key: jax.Array) -> np.ndarray:
    """Validation loss (all of it) after T steps, mean of 10 inner runs,
    and the meta-objective (the mean validation loss along the run)."""
    rewards, states = inner_rewards(problem, thetas, key, 10)
    data = problem.training.data
    loss = jax.vmap(
        jax.vmap(lambda layers: cross_entropy(layers, data["x_val"], data["y_val"]))
    )
    final = np.asarray(loss(states["layers"])).mean(0)
    diverged = np.asarray(states["diverged"]).any(0)
    return np.where(diverged, np.inf, final), -rewards.sum(-1).mean(-1)


def random_search(problem, seed: int, budget: int) -> dict[str, np.ndarray]:
    """``budget`` thetas from the box, one inner run each (batches of 50);
    the best so far by the meta-objective after each batch."""
    thetas = np.asarray(problem.sample(jax.random.key(seed), budget))
    scores, best, seconds, start = [], [], [], time.perf_counter()
    for first in range(0, budget, 50):
        batch = thetas[first : first + 50]
        key = jax.random.fold_in(jax.random.key(seed + 1000), first)
        scores += list(-inner_rewards(problem, batch, key)[0].sum(-1)[:, 0])
        best.append(thetas[int(np.argmin(scores))])
        seconds.append(time.perf_counter() - start)
    steps = np.minimum(np.arange(50, budget + 50, 50), budget) * problem.horizon
    return {"theta": np.array(best), "steps": steps, "seconds": np.array(seconds)}


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    problem = HyperparamsDigits(horizon=args.horizon)
    budget = args.runs * args.horizon
    runs = {}
    for method in METHODS:
        for seed in args.seeds:
            if method == "random search":
                runs[method, seed] = random_search(problem, seed, args.runs)
                continue
            # As the CLI: the step decays over the updates the budget buys;
            # truncated ES's extra particle (the shared state) buys fewer.
            envs = SETTINGS["num_particles"] + (method == "TES")
            updates = expected_windows(budget, envs, SETTINGS["truncation_length"])
            decay = LinearDecay(
                PRESET["learning_rate"], PRESET["learning_rate_final"], updates
            )
            runs[method, seed] = train(
                method, problem, seed, budget, learning_rate=decay, **SETTINGS
            )
        print(f"{method} done ({time.perf_counter() - start:.0f} s)")
    # Meta-objective along the way: 12 points per run, one common inner run.
    rows = []
    for (method, seed), run in runs.items():
        pick = np.unique(np.linspace(0, len(run["steps"]) - 1, 12).astype(int))
        run["pick"] = pick
        run["curve"] = -inner_rewards(problem, run["theta"][pick], jax.random.key(7))[
            0
        ].sum(-1)[:, 0]
        rows += [
            [method, seed, run["steps"][i], f"{run['seconds'][i]:.2f}", f"{c:.5g}"]
            for i, c in zip(pick, run["curve"], strict=True)
        ]
    finals = np.array([run["theta"][-1] for run in runs.values()])
    losses, meta = final_val_loss(problem, finals, jax.random.key(8))
    with open(args.out / "hyperparams_digits_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "inner_steps", "seconds", "meta_objective"])
        writer.writerows(rows)
    table = [
        f"T = {args.horizon}, budget {args.runs} inner runs ({budget:,} inner "
        f"steps) per method and seed; seeds {', '.join(map(str, args.seeds))}. "
        "Meta-objective (what the methods minimise): the mean validation "
        "loss along the run; final validation loss: all validation images "
        "after T steps; both of the final theta, mean of 10 fresh inner "
        "runs (inf: some diverge).\n",
        "| method | meta-objective per seed | mean | final val. loss per seed "
        "| mean ± std |",
        "|---|---|---|---|---|",
    ]
    keys = list(runs)
    for method in METHODS:
        index = [i for i, (m, _) in enumerate(keys) if m == method]
        table.append(
            f"| {method} | {', '.join(f'{meta[i]:.4f}' for i in index)} | "
            f"{meta[index].mean():.4f} | "
            f"{', '.join(f'{losses[i]:.4f}' for i in index)} | "
            f"{losses[index].mean():.4f} ± {losses[index].std():.4f} |"
        )
    (args.out / "hyperparams_digits_table.md").write_text("\n".join(table) + "\n")
    plot(args.out / "hyperparams_digits.png", runs, problem, args)
    print("\n".join(table))
    print(f"({time.perf_counter() - start:.0f} s)")


def plot(path: Path, runs: dict, problem, args) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_steps, rates) = plt.subplots(1, 2, figsize=(13, 4.8))
    for (method, seed), run in runs.items():
        label = method if seed == args.seeds[0] else None
        steps = run["steps"][run["pick"]]
        by_steps.plot(steps, run["curve"], color=COLORS[method], label=label, lw=1.2)
        lr, momentum = (
            np.asarray(x) for x in problem.hyperparameters(run["theta"][-1])
        )
        lr = np.array([[block["w"], block["b"]] for block in lr]).ravel()
        rates.plot(lr, "o-", color=COLORS[method], ms=3, lw=0.8, label=label)
    by_steps.set_xlabel("inner steps")
    by_steps.set_ylabel(f"mean validation loss over T = {args.horizon}")
    by_steps.set_yscale("log")
    by_steps.legend()
    by_steps.set_title("meta-objective of theta (one common inner run)")
    rates.set_yscale("log")
    rates.set_xticks(range(problem.num_blocks))
    rates.set_xticklabels(
        [f"{kind}{i}" for i in range(problem.num_blocks // 2) for kind in "wb"]
    )
    rates.set_ylabel("final learning rate per block")
    rates.set_title("learned learning rates")
    fig.suptitle("20 hyperparameters of an MLP on sklearn digits (4 seeds each)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
