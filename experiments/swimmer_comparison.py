"""Run the train CLI's defaults for each algorithm and seed; collect curves.

    python experiments/swimmer_comparison.py --algos pes nres tes es --seeds 0 1 2 3 4
    python experiments/swimmer_comparison.py --quick   # 1 seed, 30k steps, < 1 min
    python experiments/swimmer_comparison.py --algos default  # the CLI defaults

Each run is ``python -m pes_rl.train --env ENV --algo A --seed S`` with the
environment's preset (plus any extra flags after ``--``), run one after the
other so wall-clock numbers are not shared with a neighbour. Writes every
run directory under ``--out`` (default ``runs/comparison``; ``runs/quick/
swimmer_comparison`` with ``--quick``), a ``curves.csv`` (algo, seed,
env_steps, seconds, eval_return) and prints a summary table: final return
per seed, wall-clock seconds, and env steps and seconds to first reach each
``--threshold`` (several may be given: ``--threshold 325 350``).
Run again with the same ``--out``, it keeps finished runs and resumes
interrupted ones (``python -m pes_rl.train --resume``).
"""

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

TRAIN = [sys.executable, "-m", "pes_rl.train"]


def train(
    run_dir: Path, env: str, algo: str, seed: int, extra: list[str]
) -> float | None:
    """Start the run, resume it if it was interrupted, keep it if finished.
    Returns the Unix time the process was started, for a fresh run."""
    if (run_dir / "config.json").is_file():
        done = subprocess.run(
            [*TRAIN, "--resume", str(run_dir), "--no-progress"],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 or "already finished" in done.stderr:
            print(f"{run_dir}: finished", file=sys.stderr)
            return None
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    launched = time.time()
    chosen = [] if algo == "default" else ["--algo", algo]  # default: the preset's
    subprocess.run(
        [*TRAIN, "--env", env, *chosen, "--seed", str(seed)]
        + ["--run-dir", str(run_dir), "--no-progress", *extra],
        check=True,
    )
    return launched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--algos", nargs="+", default=["pes", "nres", "tes", "es"])
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--threshold", type=float, nargs="+", default=[350.0])
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--quick", action="store_true", help="seed 0, 30k env steps per run"
    )
    parser.add_argument("extra", nargs="*", help="flags passed to the train CLI")
    args = parser.parse_args()
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2, 3, 4]
    if args.quick:
        args.extra = ["--total-steps", "30000", "--eval-every", "10000", *args.extra]
    default = "runs/quick/swimmer_comparison" if args.quick else "runs/comparison"
    out = Path(args.out or default)
    rows, summary = [], []
    for algo in args.algos:
        for seed in args.seeds:
            run_dir = out / f"{args.env}-{algo}-seed{seed}"
            # A fresh process per run: its wall-clock includes imports,
            # building the envs and compiling.
            launched = train(run_dir, args.env, algo, seed, args.extra)
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
            entry = {
                "algo": algo,
                "seed": seed,
                "final_return": round(result["eval_return"], 1),
                "env_steps": result["env_steps"],
                "seconds": round(result["seconds"], 1),
            }
            for threshold in args.threshold:
                entry[f"{threshold:g}"] = first_reached(lines, threshold, launched)
            summary.append(entry)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algo", "seed", "env_steps", "seconds", "eval_return"])
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary, args.algos, args.threshold)


def first_reached(lines: list[dict], threshold: float, launched: float | None) -> dict:
    """Env steps and seconds (of the run, and from the process's start when
    it was launched here) at the first evaluation >= threshold."""
    reached = next((x for x in lines if x["eval_return"] >= threshold), None)
    if reached is None:
        return {"env_steps": None, "seconds": None, "process_seconds": None}
    known = launched and "wall_time" in reached  # a fresh run, newer metrics
    from_start = reached["wall_time"] - launched if known else None
    return {
        "env_steps": reached["env_steps"],
        "seconds": reached["seconds"],
        "process_seconds": round(from_start, 1) if from_start else None,
    }


def print_summary(summary: list[dict], algos: list[str], thresholds: list[float]):
    names = [f"{t:g}" for t in thresholds]
    heads = [f"{h} {n}" for n in names for h in ("steps to", "s to", "from start to")]
    print(
        "| algo | seed | final return | env steps | seconds | "
        + " | ".join(heads)
        + " |"
    )
    print("|---" * (5 + len(heads)) + "|")
    for s in summary:
        cells = [
            s[n][k] for n in names for k in ("env_steps", "seconds", "process_seconds")
        ]
        shown = ["-" if c is None else str(c) for c in cells]
        print(
            f"| {s['algo']} | {s['seed']} | {s['final_return']} | {s['env_steps']} | "
            f"{s['seconds']} | " + " | ".join(shown) + " |"
        )
    for algo in algos:
        finals = [s["final_return"] for s in summary if s["algo"] == algo]
        mean = sum(finals) / len(finals)
        std = math.sqrt(sum((x - mean) ** 2 for x in finals) / len(finals))
        print(
            f"{algo}: final return {mean:.1f} ± {std:.1f}, "
            f"{sum(x >= thresholds[-1] for x in finals)}/{len(finals)} seeds "
            f">= {thresholds[-1]:g}"
        )


if __name__ == "__main__":
    main()
