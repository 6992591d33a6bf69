"""The study behind the generic defaults (``pes_rl/agents/presets.py``): candidate
settings on a development set of environments, 3 seeds each, PES.

    python experiments/generic_defaults.py            # the defaults as shipped
    python experiments/generic_defaults.py --study    # every candidate
    python experiments/generic_defaults.py --quick    # < 1 min, runs/quick/...
    python experiments/generic_defaults.py --study --table-only  # what has run

Each run is ``python -m pes_rl.train --env ENV --seed S`` plus the
candidate's flags, in its own process, one at a time, after other training
jobs on the machine have finished (``--no-wait`` skips that). Finished runs
under ``runs/generic_defaults/CANDIDATE/`` are reused. ``shipped`` passes
``--preset generic`` only, so it measures exactly what a user without a
preset gets (for Reacher, InvertedPendulum and Pendulum that is no flag
at all). Writes ``generic_defaults_curves.csv``,
``generic_defaults_summary.json``, ``generic_defaults_table.md`` and
``generic_defaults.png`` to ``--out`` (default ``experiments/results``).
The zero-policy return is the evaluation at step 0: linear policies start
at zero, so they output zero actions there.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from reproduce_common import output_dir, train, write_curves  # noqa: E402

DEV_ENVS = (
    "InvertedPendulum-v5",
    "Reacher-v5",
    "Pendulum-v1",
    "Swimmer-v5",
    "Hopper-v5",
    "HalfCheetah-v5",
)
# Candidates studied, on top of what they share: linear policy, obs-norm,
# 32 particles, K = 100, Adam and the budget of about 300 updates. "shipped"
# is what pes_rl/agents/presets.py holds (sigma 0.05, centred ranks, lr 0.01 ->
# 0.001); the others change it as their flags say.
SHARED = ["--preset", "generic"]
LR_002 = ["--learning-rate", "0.02", "--learning-rate-final", "0.002"]
CANDIDATES = {
    "shipped": [],
    "lr0.02": LR_002,
    "sigma0.1-lr0.02": ["--sigma", "0.1", *LR_002],
    "std-lr0.02": ["--fitness-shaping", "std", *LR_002],
}


def summary_rows(runs) -> list[dict]:
    rows = []
    for (candidate, env), members in runs.items():
        finals = [r.metrics[-1]["eval_return"] for r in members]
        rows.append(
            {
                "candidate": candidate,
                "env": env,
                "zero_policy_return": round(members[0].metrics[0]["eval_return"], 1),
                "final_returns": [round(x, 1) for x in finals],
                "final_return_mean": round(float(np.mean(finals)), 1),
                "best_returns": [
                    round(max(m["eval_return"] for m in r.metrics), 1) for r in members
                ],
                "env_steps": members[0].metrics[-1]["env_steps"],
                "seconds": [round(r.metrics[-1]["seconds"], 1) for r in members],
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| candidate | env | zero-policy return | final return per seed | "
        "best evaluation per seed | env steps | s per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['candidate']} | {r['env']} | {r['zero_policy_return']} | "
            f"{' / '.join(f'{x:g}' for x in r['final_returns'])} | "
            f"{' / '.join(f'{x:g}' for x in r['best_returns'])} | "
            f"{r['env_steps'] / 1e3:.0f}k | {np.mean(r['seconds']):.0f} |"
        )
    return "\n".join(lines)


def plot(runs, path: Path) -> None:
    envs = list(dict.fromkeys(env for _, env in runs))
    candidates = list(dict.fromkeys(c for c, _ in runs))
    cols = min(3, len(envs))
    rows = -(-len(envs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, env in zip(axes.flat, envs, strict=False):
        for i, candidate in enumerate(candidates):
            for j, run in enumerate(runs.get((candidate, env), [])):
                ax.plot(
                    run.column("env_steps"),
                    run.column("eval_return"),
                    color=f"C{i}",
                    lw=1,
                    label=candidate if j == 0 else None,
                )
        ax.set_title(env)
        ax.set_xlabel("training env steps")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("evaluation return (mean policy)")
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(envs) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEV_ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--candidates", nargs="+", default=["shipped"])
    parser.add_argument("--study", action="store_true", help="every candidate")
    parser.add_argument(
        "--quick", action="store_true", help="2 envs, 1 seed, 100k steps"
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument(
        "--table-only", action="store_true", help="tabulate finished runs only"
    )
    args = parser.parse_args()
    candidates = list(CANDIDATES) if args.study else args.candidates
    extra = []
    if args.quick:
        args.envs, args.seeds = ["InvertedPendulum-v5", "Reacher-v5"], [0]
        extra = ["--total-steps", "100000", "--eval-every", "25000"]
    out = output_dir(args.out, args.quick, "generic_defaults")
    runs = {}
    for env in args.envs:
        for candidate in candidates:
            for seed in args.seeds:
                root = out / "runs" if args.quick else Path("runs") / "generic_defaults"
                run_dir = root / candidate / f"{env}-{seed}"
                if args.table_only and not (run_dir / "done.json").is_file():
                    continue
                flags = [*SHARED, *CANDIDATES[candidate], *extra]
                wait = not (args.quick or args.no_wait)
                run = train(run_dir, env, "pes", seed, flags, candidate, wait=wait)
                runs.setdefault((candidate, env), []).append(run)
    out.mkdir(parents=True, exist_ok=True)
    name = "generic_defaults" + ("_study" if args.study else "")
    write_curves(out / f"{name}_curves.csv", [r for rs in runs.values() for r in rs])
    rows = summary_rows(runs)
    (out / f"{name}_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    (out / f"{name}_table.md").write_text(table + "\n")
    plot(runs, out / f"{name}.png")
    print(table)


if __name__ == "__main__":
    main()
