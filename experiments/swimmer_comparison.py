"""Run the train CLI's defaults for each algorithm and seed; collect curves.

    python experiments/swimmer_comparison.py --algos pes nres tes es --seeds 0 1 2 3 4

Each run is ``python -m pes_rl.train --env ENV --algo A --seed S`` with the
environment's preset (plus any extra flags after ``--``), run one after the
other so wall-clock numbers are not shared with a neighbour. Writes every
run directory under ``--out``, a ``curves.csv`` (algo, seed, env_steps,
seconds, eval_return) and prints a summary table: final return per seed,
wall-clock seconds, and env steps to first reach ``--threshold``.
"""

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--algos", nargs="+", default=["pes", "nres", "tes", "es"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threshold", type=float, default=350.0)
    parser.add_argument("--out", default="runs/comparison")
    parser.add_argument("extra", nargs="*", help="flags passed to the train CLI")
    args = parser.parse_args()
    out = Path(args.out)
    rows, summary = [], []
    for algo in args.algos:
        for seed in args.seeds:
            run_dir = out / f"{args.env}-{algo}-seed{seed}"
            # A fresh process per run: its wall-clock includes compiling.
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pes_rl.train",
                    "--env",
                    args.env,
                    "--algo",
                    algo,
                    "--seed",
                    str(seed),
                    "--run-dir",
                    str(run_dir),
                    "--no-progress",
                    *args.extra,
                ],
                check=True,
            )
            lines = [
                json.loads(line)
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            ]
            result = lines[-1]
            for line in lines:
                rows.append(
                    [
                        algo,
                        seed,
                        line["env_steps"],
                        line["seconds"],
                        round(line["eval_return"], 2),
                    ]
                )
            reached = next(
                (x for x in lines if x["eval_return"] >= args.threshold), None
            )
            summary.append(
                {
                    "algo": algo,
                    "seed": seed,
                    "final_return": round(result["eval_return"], 1),
                    "env_steps": result["env_steps"],
                    "seconds": round(result["seconds"], 1),
                    "steps_to_threshold": reached["env_steps"] if reached else None,
                    "seconds_to_threshold": reached["seconds"] if reached else None,
                }
            )
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "seed", "env_steps", "seconds", "eval_return"])
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        "| algo | seed | final return | env steps | seconds | steps to "
        f"{args.threshold:g} | seconds to {args.threshold:g} |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in summary:
        reached = s["steps_to_threshold"]
        print(
            f"| {s['algo']} | {s['seed']} | {s['final_return']} | {s['env_steps']} | "
            f"{s['seconds']} | {reached if reached is not None else '-'} | "
            f"{s['seconds_to_threshold'] if reached is not None else '-'} |"
        )
    for algo in args.algos:
        finals = [s["final_return"] for s in summary if s["algo"] == algo]
        mean = sum(finals) / len(finals)
        std = math.sqrt(sum((x - mean) ** 2 for x in finals) / len(finals))
        print(
            f"{algo}: final return {mean:.1f} ± {std:.1f}, "
            f"{sum(x >= args.threshold for x in finals)}/{len(finals)} seeds "
            f">= {args.threshold:g}"
        )


if __name__ == "__main__":
    main()
