"""Swimmer with a linear policy: PES against truncated and full-episode ES.

Reproduces the continuous-control experiment of the PES paper (Vicol, Metz
and Sohl-Dickstein, "Unbiased Gradient Estimation in Unrolled Computation
Graphs with Persistent Evolution Strategies", ICML 2021, arXiv 2112.13835)
as its code (google-research ``persistent_es/control_pes.py``) ran it: a
linear policy on MuJoCo Swimmer (here Swimmer-v5), T = 1000, K = 100, 10
antithetic pairs, plain SGD ascent with ``--divide_by_variance``, no
observation normalisation, and every pair in lockstep (all episodes start
together). PES sigma 0.3 lr 0.1, truncated ES sigma 0.1 lr 0.1, full-episode
ES (Salimans et al. 2017, arXiv 1703.03864; K = T) sigma 0.3 lr 0.3; NRES (Li
et al. 2023, arXiv 2304.12180) runs with PES's settings.

That code steps by ``lr * sum_j R_j xi_j / (std(R) * pairs)`` with
unit-normal xi; pes_rl's std-shaped estimate is ``sum_j R_j (sigma xi_j) /
(std(R) sigma^2 * 2 pairs)``, 1 / (2 sigma) of it, so the same step takes
pes_rl's lr = 2 sigma x the paper's: PES and NRES 0.06, TES 0.02, FullES
0.18. PES and NRES also run staggered (pes_rl's default) beside lockstep;
truncated and full-episode ES have nothing to stagger. The paper's claim: PES
learns faster than full-episode ES, truncated ES fails through its bias.

Beside these it shows the library's tuned Swimmer preset (``pes_rl/agents/presets.py``;
Adam and decaying sigma and learning rate), read by default from
``experiments/results/swimmer_comparison_curves.csv``, which
``experiments/swimmer_comparison.py`` wrote (``--rerun-tuned`` reruns it).

    python experiments/swimmer_paper.py            # 6 settings x 5 seeds, ~25 min
    python experiments/swimmer_paper.py --quick    # 1 seed, 40k steps, about 1 min

Every run is ``python -m pes_rl.train`` in its own process, one at a time;
in full mode the script first waits until no one else's training job runs.
Writes to ``--out`` (default ``experiments/results``; ``runs/quick/
swimmer_paper`` with ``--quick``): ``swimmer_paper_curves.csv`` (every
evaluation), ``swimmer_paper_summary.json`` (per run and per method),
``swimmer_paper_table.md`` and ``swimmer_paper_{steps,seconds}.png``.
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib
from reproduce_common import (
    ALGO_NAMES,
    RESULTS,
    TABLE_NOTE,
    RunResult,
    first_reach,
    markdown_table,
    output_dir,
    plot_panel,
    read_curves,
    summarise,
    train,
    write_curves,
)

# Per-method settings of the PES paper's Swimmer runs (control_pes.py's
# README commands): its sigma, and its SGD step converted to pes_rl's lr.
PAPER = {
    "pes": {"sigma": 0.3, "paper_lr": 0.1},
    "nres": {"sigma": 0.3, "paper_lr": 0.1},
    "tes": {"sigma": 0.1, "paper_lr": 0.1},
    "es": {"sigma": 0.3, "paper_lr": 0.3},
}
for _settings in PAPER.values():
    _settings["learning_rate"] = round(
        2 * _settings["sigma"] * _settings["paper_lr"], 6
    )
STAGGERED = ("pes", "nres")  # TES and FullES have no pair offsets to stagger
SETTING_TITLES = {
    "lockstep": "PES paper's code: SGD, its step, pairs in lockstep",
    "staggered": "the same, pairs staggered over the episode",
    "tuned": "tuned preset (pes_rl/agents/presets.py): decays",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 40k steps")
    parser.add_argument(
        "--out",
        default=None,
        help="default experiments/results, runs/quick/swimmer_paper with --quick",
    )
    parser.add_argument(
        "--runs-dir",
        default=None,
        help="run directories (default runs/swimmer_paper; OUT/runs with --quick)",
    )
    parser.add_argument("--algos", nargs="+", default=list(PAPER), choices=PAPER)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--total-steps", type=int, default=None, help="600k")
    parser.add_argument("--eval-every", type=int, default=None, help="50k")
    parser.add_argument("--threshold", type=float, default=350.0)
    parser.add_argument(
        "--tuned-csv",
        default=str(RESULTS / "swimmer_comparison_curves.csv"),
        help="curves of the tuned preset written by swimmer_comparison.py",
    )
    parser.add_argument(
        "--rerun-tuned",
        action="store_true",
        help="run the tuned preset too instead of reading --tuned-csv",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for other people's training jobs (implied by --quick)",
    )
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="rerun even runs whose directory holds a finished run",
    )
    args = parser.parse_args()
    args.out = str(output_dir(args.out, args.quick, "swimmer_paper"))
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2, 3, 4]
    if args.total_steps is None:
        args.total_steps = 40_000 if args.quick else 600_000
    if args.eval_every is None:
        args.eval_every = 20_000 if args.quick else 50_000
    if args.runs_dir is None:
        args.runs_dir = Path(args.out) / "runs" if args.quick else "runs/swimmer_paper"
    return args


def paper_flags(algo: str, stagger: bool, args: argparse.Namespace) -> list[str]:
    """Explicit --sigma and --learning-rate drop the preset's decays."""
    settings = PAPER[algo]
    # FullES runs whole episodes (K = T); TES and FullES have no pair offsets.
    window = [] if algo == "es" else ["--truncation-length=100"]
    offsets = ["--stagger" if stagger else "--no-stagger"] if algo in STAGGERED else []
    return [
        "--num-particles=20",
        *window,
        "--horizon=1000",
        "--optimizer=sgd",
        "--fitness-shaping=std",
        *offsets,
        f"--sigma={settings['sigma']}",
        f"--learning-rate={settings['learning_rate']}",
        f"--total-steps={args.total_steps}",
        f"--eval-every={args.eval_every}",
    ]


def tuned_flags(args: argparse.Namespace) -> list[str]:
    """The preset as is, unless the budget differs from its 600k steps."""
    if args.total_steps == 600_000 and args.eval_every == 50_000:
        return []
    return [f"--total-steps={args.total_steps}", f"--eval-every={args.eval_every}"]


def plot(out: Path, runs: list[RunResult], args: argparse.Namespace) -> list[Path]:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r.setting for r in runs))
    paths = []
    for x in ("env_steps", "seconds"):
        fig, axes = plt.subplots(
            1, len(settings), figsize=(6 * len(settings), 4.5), sharey=True
        )
        axes = [axes] if len(settings) == 1 else list(axes)
        for ax, setting in zip(axes, settings, strict=True):
            plot_panel(ax, [r for r in runs if r.setting == setting], x, args.threshold)
            ax.set_title(SETTING_TITLES.get(setting, setting), fontsize=10)
            ax.legend(
                fontsize=8,
                title="thick: mean over seeds, thin: seeds",
                title_fontsize=8,
            )
        axes[0].set_ylabel("evaluation return (mean policy)")
        fig.suptitle(
            "Swimmer-v5, linear policy, T=1000, K=100 (FullES: K=T), N=20; "
            f"dotted: {args.threshold:g}",
            fontsize=11,
        )
        fig.tight_layout()
        path = out / f"swimmer_paper_{'steps' if x == 'env_steps' else x}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def run_record(run: RunResult, threshold: float) -> dict:
    last = run.metrics[-1]
    reached = first_reach(run, threshold)
    return {
        "setting": run.setting,
        "algo": run.algo,
        "seed": run.seed,
        "final_return": round(last["eval_return"], 2),
        "env_steps": int(last["env_steps"]),
        "wall_seconds": run.wall_seconds and round(run.wall_seconds, 1),
        "run_seconds": last["seconds"],
        "steps_to_threshold": reached and int(reached["env_steps"]),
    }


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs_dir)
    wait = not (args.quick or args.no_wait)
    runs: list[RunResult] = []
    for setting in ("lockstep", "staggered"):
        stagger = setting == "staggered"
        for algo in args.algos:
            if stagger and algo not in STAGGERED:
                continue
            for seed in args.seeds:
                runs.append(
                    train(
                        runs_dir / f"{setting}-{algo}-seed{seed}",
                        "swimmer",
                        algo,
                        seed,
                        paper_flags(algo, stagger, args),
                        setting,
                        reuse=not args.no_reuse,
                        wait=wait,
                    )
                )
    if args.rerun_tuned:
        for algo in args.algos:
            for seed in args.seeds:
                runs.append(
                    train(
                        runs_dir / f"tuned-{algo}-seed{seed}",
                        "swimmer",
                        algo,
                        seed,
                        tuned_flags(args),
                        "tuned",
                        reuse=not args.no_reuse,
                        wait=wait,
                    )
                )
    elif Path(args.tuned_csv).is_file():
        tuned = read_curves(Path(args.tuned_csv), setting="tuned")
        runs += [r for r in tuned if r.algo in args.algos]
        print(f"tuned preset: {len(tuned)} runs read from {args.tuned_csv}")
    else:
        print(f"no {args.tuned_csv}: showing the paper settings only", file=sys.stderr)

    write_curves(out / "swimmer_paper_curves.csv", runs)
    rows = summarise(runs, args.threshold)
    per_run = [run_record(r, args.threshold) for r in runs]
    summary = {
        "env": "Swimmer-v5",
        "threshold": args.threshold,
        "paper_settings": PAPER,
        "total_steps": args.total_steps,
        "tuned_source": "rerun" if args.rerun_tuned else args.tuned_csv,
        "methods": rows,
        "runs": per_run,
    }
    (out / "swimmer_paper_summary.json").write_text(json.dumps(summary, indent=2))
    table = markdown_table(rows)
    (out / "swimmer_paper_table.md").write_text(table + "\n")
    paths = plot(out, runs, args)
    print(table)
    print(TABLE_NOTE.format(threshold=args.threshold))
    names = ", ".join(ALGO_NAMES[a] for a in args.algos)
    print(f"wrote {', '.join(str(p) for p in paths)} ({names})")


if __name__ == "__main__":
    main()
