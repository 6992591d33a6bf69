"""Recurrent vs memoryless policies on the cue memory task, on both engines.

    python experiments/memory_task.py            # 3 seeds, ~3 min
    python experiments/memory_task.py --quick    # T = 5, 1 seed, < 1 min

The task (``--env cue_memory``, ``pes_rl/envs/memory.py``): a cue of +1 or -1 shown
at t = 0, blank observations after it, and on the last step a reward of
``1 - (a - cue)^2``. Optimal return 1; a policy without memory earns at
most 0. Each run is PES with the ``cue_memory`` preset (K = 5 < T: the
carry crosses windows), one per backend, policy and seed; the final return
is over 1,000 evaluation episodes. Writes ``memory_task.png``,
``_curves.csv`` and ``_table.md`` to ``--out`` (``experiments/results``;
``runs/quick/memory_task`` with ``--quick``).
"""

import argparse
import csv
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from reproduce_common import output_dir  # noqa: E402

from pes_rl.agents import PES  # noqa: E402
from pes_rl.agents.presets import preset_for  # noqa: E402
from pes_rl.core.config import expected_windows  # noqa: E402
from pes_rl.core.schedules import LinearDecay  # noqa: E402

POLICIES = ("gru", "lstm", "mlp")


def agent_for(backend: str, policy: str, seed: int, total: int, length: int):
    preset = preset_for("cue_memory", "pes")
    n, k = preset["num_particles"], preset["truncation_length"]
    windows = expected_windows(total, n, k)
    return PES(
        env="cue_memory",
        env_kwargs={"length": length},
        horizon=length,
        backend=backend,
        policy=policy,
        recurrent_size=preset["recurrent_size"],
        hidden_sizes=(32, 32),
        num_particles=n,
        truncation_length=k,
        sigma=preset["sigma"],
        learning_rate=LinearDecay(
            preset["learning_rate"], preset["learning_rate_final"], windows
        ),
        optimizer=preset["optimizer"],
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--length", type=int, default=None, help="episode length T (10; 5 quick)"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(output_dir(args.out, args.quick, "memory_task"))
    seeds = [0] if args.quick else args.seeds
    args.length = args.length or (5 if args.quick else 10)
    total = 40_000 if args.quick else preset_for("cue_memory", "pes")["total_steps"]
    points = 4 if args.quick else 10
    backends = ("gymnasium",) if args.quick else ("gymnasium", "brax")
    rows, finals = [], {}
    for backend in backends:
        for policy in POLICIES:
            for seed in seeds:
                began = time.perf_counter()
                agent = agent_for(backend, policy, seed, total, args.length)
                for i in range(1, points + 1):
                    agent.learn(
                        total * i // points - agent.env_steps,
                        progress_bar=False,
                        reset_num_timesteps=False,
                    )
                    episodes = 1000 if i == points else 100
                    value = agent.evaluate(episodes)
                    rows.append((backend, policy, seed, agent.env_steps, value))
                finals.setdefault((backend, policy), []).append(value)
                agent.close()
                print(
                    f"{backend} {policy} seed {seed}: final return {value:.3f} "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "memory_task_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["backend", "policy", "seed", "env_steps", "eval_return"])
        writer.writerows(rows)
    lines = [
        f"Cue memory task, T = {args.length}, PES with the cue_memory preset, "
        f"{total:,} env steps; final return over 1,000 episodes (optimal 1, "
        "memoryless at most 0).",
        "",
        "| backend | policy | per seed | mean |",
        "|---|---|---|---|",
    ]
    for (backend, policy), values in finals.items():
        per_seed = " / ".join(f"{v:.3f}" for v in values)
        lines.append(f"| {backend} | {policy} | {per_seed} | {np.mean(values):.3f} |")
    (out / "memory_task_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, axes = plt.subplots(1, len(backends), figsize=(5 * len(backends), 3.5))
    for ax, backend in zip(np.atleast_1d(axes), backends, strict=True):
        for policy, color in zip(POLICIES, ("C0", "C1", "C2"), strict=True):
            for seed in seeds:
                curve = [(r[3], r[4]) for r in rows if r[:3] == (backend, policy, seed)]
                xs, ys = zip(*curve, strict=True)
                label = policy if seed == seeds[0] else None
                ax.plot(xs, ys, color=color, alpha=0.8, label=label)
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set(title=f"{backend}, T = {args.length}", xlabel="env steps")
        ax.set_ylabel("eval return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "memory_task.png", dpi=120)


if __name__ == "__main__":
    main()
