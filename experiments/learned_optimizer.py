"""Meta-training a learned optimiser with PES, NRES and truncated ES, and
testing it on held-out tasks against Adam with a tuned learning rate.

The PES paper's learned-optimiser experiment (Vicol, Metz and
Sohl-Dickstein, ICML 2021, arXiv 2112.13835, after Metz et al. 2019) on
the shipped problem ``learned_optimizer``: a per-parameter MLP optimiser
(442 meta-parameters, see ``pes_rl.problems.learned_optimizer``) trains
digits MLPs (64-H-10, H uniform in 16..64, random initialisation) for
T = 1000 steps; the meta-objective is the mean training loss along the run.
It starts as Adam with a learning rate of 1e-3; the log step is
ln 1e-3 + 10 theta, so tuned Adam's step (0.032, ln 32 away) is reachable
in a few hundred outer updates, and the MLP's outputs are damped by 0.1.
K = 10, 16 particles, sigma 0.01, Adam with a step decaying linearly from
0.002 to 0.0002 over the run, pairs in lockstep, the same budget of inner
steps for every method. Held-out tasks are new draws (widths,
initialisations, minibatches) of the same distribution.

Truncated ES sees only K steps of the run at a time, so it optimises the
loss of the next K steps, not of the whole run (short-horizon bias); PES
and NRES estimate the gradient of the whole run's loss. The figure shows
the whole-run meta-loss of each method's optimiser during meta-training,
the held-out training curves, and each optimiser's step size along a run.

Where this differs from the papers: scikit-learn's digits MLPs, not a
CIFAR-10 MLP (two hidden layers of 128); a smaller optimiser MLP, started
as Adam 1e-3, not at random; 3 seeds of a budget of 20 inner runs per
particle. NRES's code trains on one fixed task and minibatch sequence
with a validation-loss objective, a step 1e-3 d exp(1e-3 m) and Adam
3e-4; here every run is a new task (the problem's ``fixed_tasks`` and
``objective="val_loss"`` give NRES's choices), the meta-objective is the
training loss that the held-out comparison with Adam scores, and the
damping is 0.1 with a scaled log step, so that the outer optimiser can
reach tuned Adam's step.

    python experiments/learned_optimizer.py           # ~20 min on 2 cores
    python experiments/learned_optimizer.py --quick   # T = 100, < 1 min

Writes ``learned_optimizer.png``, ``learned_optimizer_curves.csv`` and
``learned_optimizer_table.md`` to ``--out`` (default
``experiments/results``; ``runs/quick/learned_optimizer`` with ``--quick``).
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
from meta_common import COLORS, inner_rewards, train
from reproduce_common import output_dir

from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.digits import WORST_LOSS, advance, bounded
from pes_rl.problems.learned_optimizer import (
    LearnedOptimizer,
    masked_logits,
    masked_loss,
)

STEP = 0.002  # Adam's, decaying linearly to a tenth over each run
# The problem's options for meta-training (held-out tasks are always new
# draws, scored by their training loss).
PROBLEM = dict(objective="train_loss", fixed_tasks=False)
SETTINGS = dict(
    num_particles=16,
    truncation_length=10,
    sigma=0.01,
    optimizer="adam",
    stagger=False,
    updates_per_call=10,
)
METHODS = ("PES", "NRES", "TES")
ADAM_RATES = np.logspace(-4, -1, 13)


class AdamOnTasks:
    """Adam with learning rate ``e^theta`` on the learned optimiser's tasks,
    as a Problem: the same initialisations and minibatches for the same
    keys, so ``inner_rewards`` compares the two on identical tasks."""

    def __init__(self, tasks: LearnedOptimizer):
        self.tasks, self.horizon = tasks, tasks.horizon

    def init_params(self, key):
        return jnp.zeros(1)

    def init(self, key):
        state = self.tasks.init(key)
        adam = optax.adam(1.0).init(state["layers"])
        return {**state, "adam": adam}

    def step(self, params, state, key):
        x, y = self.tasks.training.batch(key, "train")
        loss, grads = jax.value_and_grad(masked_loss)(
            state["layers"], state["mask"], x, y
        )
        updates, adam = optax.adam(jnp.exp(params[0])).update(grads, state["adam"])
        new = {"layers": optax.apply_updates(state["layers"], updates), "adam": adam}
        return advance(state, new, loss, -bounded(loss), -WORST_LOSS, self.horizon)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 100, 1 seed")
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", type=int, default=None, help="default 3")
    parser.add_argument(
        "--runs", type=int, default=None, help="budget: inner runs per particle"
    )
    args = parser.parse_args()
    args.out = Path(output_dir(args.out, args.quick, "learned_optimizer"))
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.runs = args.runs or (5 if args.quick else 20)
    args.horizon = 100 if args.quick else 1000
    return args


def held_out(problem, thetas: np.ndarray, runs: int) -> dict[str, np.ndarray]:
    """Per theta: training loss per step (mean of ``runs`` held-out tasks),
    validation accuracy after T steps, and the mean step size |delta p|."""
    rewards, states = inner_rewards(problem, thetas, jax.random.key(99), runs)
    data = problem.training.data

    def val_accuracy(layers, mask):
        logits = masked_logits(layers, mask, data["x_val"])
        return (logits.argmax(-1) == data["y_val"]).mean()

    accuracy = jax.vmap(jax.vmap(val_accuracy))(states["layers"], states["mask"])
    return {
        "loss": -rewards.mean(1) * problem.horizon,  # [n, T]
        "val_accuracy": np.asarray(accuracy).mean(0),
    }


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    problem = LearnedOptimizer(horizon=args.horizon, **PROBLEM)
    tasks = LearnedOptimizer(horizon=args.horizon)  # new draws, training loss
    budget = args.runs * args.horizon * SETTINGS["num_particles"]
    updates = budget // (SETTINGS["num_particles"] * SETTINGS["truncation_length"])
    decay = LinearDecay(STEP, STEP / 10, updates)
    runs = {}
    for seed in range(args.seeds):  # seed-major: a cut-short run still compares
        for method in METHODS:
            run = train(method, problem, seed, budget, learning_rate=decay, **SETTINGS)
            final = inner_rewards(tasks, run["theta"][-1:], jax.random.key(5), 4)[0]
            print(
                f"{method} seed {seed}: whole-run meta-loss "
                f"{-final.sum(-1).mean():.4f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            runs[method, seed] = run
    runs = {key: runs[key] for key in sorted(runs, key=lambda k: METHODS.index(k[0]))}
    # Whole-run meta-loss of theta during meta-training: 4 fixed tasks.
    rows = []
    for (method, seed), run in runs.items():
        pick = np.unique(np.linspace(0, len(run["steps"]) - 1, 10).astype(int))
        rewards = inner_rewards(tasks, run["theta"][pick], jax.random.key(5), 4)[0]
        run["pick"], run["curve"] = pick, -rewards.sum(-1).mean(-1)
        rows += [
            [method, seed, run["steps"][i], f"{run['seconds'][i]:.2f}", f"{c:.5g}"]
            for i, c in zip(pick, run["curve"], strict=True)
        ]
    with open(args.out / "learned_optimizer_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "inner_steps", "seconds", "meta_loss"])
        writer.writerows(rows)
    # Adam's learning rate tuned on training tasks, then everything held out.
    adam = AdamOnTasks(tasks)
    log_rates = np.log(ADAM_RATES)[:, None]
    tuning = -inner_rewards(adam, log_rates, jax.random.key(6), 4)[0].sum(-1).mean(-1)
    best_rate = ADAM_RATES[int(np.argmin(tuning))]
    num_tasks = 4 if args.quick else 16
    adam_out = held_out_adam(adam, best_rate, num_tasks)
    # Every seed starts as the same optimiser: the MLP's output layer is zero.
    first = next(iter(runs.values()))["theta"][0]
    thetas = np.array([run["theta"][-1] for run in runs.values()] + [first])
    learned = held_out(tasks, thetas, num_tasks)
    table = [
        f"T = {args.horizon}, K = {SETTINGS['truncation_length']}, "
        f"{SETTINGS['num_particles']} particles, budget {args.runs} inner runs "
        f"per particle, {args.seeds} seeds; {num_tasks} held-out tasks. Adam's "
        f"learning rate tuned over {ADAM_RATES[0]:g}..{ADAM_RATES[-1]:g} "
        f"(13 values) on 4 training tasks: {best_rate:.2g}.\n",
        "| optimiser | held-out mean training loss over T (per seed) | "
        "final training loss | final val. accuracy |",
        "|---|---|---|---|",
    ]
    names = [f"{m}" for m, _ in runs] + ["initial theta (Adam 1e-3)"]
    for name in dict.fromkeys(names):
        index = [i for i, n in enumerate(names) if n == name]
        means = learned["loss"][index].mean(-1)
        finals = learned["loss"][index][:, -10:].mean(-1)
        table.append(
            f"| {name} | {', '.join(f'{m:.4f}' for m in means)} | "
            f"{finals.mean():.4f} | {learned['val_accuracy'][index].mean():.3f} |"
        )
    table.append(
        f"| Adam, lr {best_rate:.2g} | {adam_out['loss'].mean():.4f} | "
        f"{adam_out['loss'][-10:].mean():.4f} | {adam_out['val_accuracy']:.3f} |"
    )
    (args.out / "learned_optimizer_table.md").write_text("\n".join(table) + "\n")
    plot(args.out / "learned_optimizer.png", runs, learned, adam_out, best_rate, args)
    print("\n".join(table))
    print(f"({time.perf_counter() - start:.0f} s)")


def held_out_adam(adam: AdamOnTasks, rate: float, runs: int) -> dict:
    rewards, states = inner_rewards(adam, np.log([[rate]]), jax.random.key(99), runs)
    data = adam.tasks.training.data
    logits = jax.vmap(lambda layers, mask: masked_logits(layers, mask, data["x_val"]))(
        jax.tree.map(lambda x: x[:, 0], states["layers"]), states["mask"][:, 0]
    )
    accuracy = float(
        (np.asarray(logits).argmax(-1) == np.asarray(data["y_val"])).mean()
    )
    return {"loss": -rewards[0].mean(0) * adam.horizon, "val_accuracy": accuracy}


def plot(path: Path, runs: dict, learned: dict, adam_out: dict, rate, args) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (meta, curves) = plt.subplots(1, 2, figsize=(13, 4.8))
    for i, ((method, seed), run) in enumerate(runs.items()):
        label = method if seed == 0 else None
        steps = run["steps"][run["pick"]]
        meta.plot(steps, run["curve"], "o-", ms=3, color=COLORS[method], label=label)
        curves.plot(learned["loss"][i], color=COLORS[method], lw=0.8, label=label)
    curves.plot(learned["loss"][-1], color="0.5", lw=0.8, label="initial theta")
    curves.plot(
        adam_out["loss"], color=COLORS["Adam"], lw=1.2, label=f"Adam {rate:.2g}"
    )
    meta.set_xlabel("inner steps (all particles)")
    meta.set_ylabel(f"meta-loss: mean training loss over T = {args.horizon}")
    meta.set_title("meta-training (whole runs on 4 fixed tasks)")
    meta.legend()
    curves.set_xlabel("inner step")
    curves.set_ylabel("training loss (held-out tasks, mean)")
    curves.set_yscale("log")
    curves.set_title("held-out tasks: learned optimisers vs tuned Adam")
    curves.legend(fontsize=8)
    fig.suptitle("A learned optimiser for digits MLPs, meta-trained by PES, NRES, TES")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
