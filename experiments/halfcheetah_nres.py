"""HalfCheetah with a linear policy: NRES against PES and full-episode ES.

After the reinforcement-learning experiment of the NRES paper (Li, Harrison,
Sohl-Dickstein, Smith and Metz, "Noise-Reuse in Online Evolution Strategies",
NeurIPS 2023, arXiv 2304.12180): a linear policy on MuJoCo HalfCheetah (here
HalfCheetah-v5, T = 1000) trained by NRES, PES (Vicol et al. 2021, arXiv
2112.13835) and full-episode ES (Salimans et al. 2017, arXiv 1703.03864),
here with running observation normalisation. The paper's claim: NRES
converges faster than PES and FullES in env steps and in wall-clock time.
The authors' run script (github.com/OscarcarLi/Noise-Reuse-Evolution-Strategies,
scripts/rl) uses K = 20, N = 300, sigma 0.004 and plain SGD on raw returns;
here the settings are sized for a 2-core CPU, and the budget is 2M env
steps per run instead of the 10M the issue asks for.

Two stages. ``--sweep`` runs a short tuning sweep (one seed, 100, apart from
the reported seeds, 1M env steps per setting, every flag explicit); without
it, the comparison runs each method on seeds 0-2 with the sweep's pick per
method (``CHOICE``: 16 pairs, K = 100, sigma 0.03, Adam at a constant step,
std shaping, obs norm), or with ``--preset`` with the current ``halfcheetah``
entry of ``pes_rl/agents/presets.py`` as it stands.

    python experiments/halfcheetah_nres.py --sweep   # 18 settings x 1M, ~16 min
    python experiments/halfcheetah_nres.py           # 3 methods x 3 seeds x 2M, ~15 min
    python experiments/halfcheetah_nres.py --quick [--sweep]   # < 1 min each

Every run is ``python -m pes_rl.train`` in its own process, one at a time;
in full mode the script first waits until no one else's training job runs.
Writes to ``--out``: ``halfcheetah_curves.csv``, ``halfcheetah_summary.json``,
``halfcheetah_table.md`` and ``halfcheetah.png`` (comparison; with
``--preset`` ``halfcheetah_preset_*``), or
``halfcheetah_sweep_curves.csv``, ``halfcheetah_sweep_summary.json`` and
``halfcheetah_sweep.png`` (sweep).
"""

import argparse
import json
from pathlib import Path

import matplotlib
from reproduce_common import (
    ALGO_NAMES,
    TABLE_NOTE,
    RunResult,
    late_return,
    markdown_table,
    output_dir,
    plot_panel,
    summarise,
    train,
    write_curves,
)

from pes_rl.agents.presets import preset_for

# The sweep's starting point: 16 pairs, K = 100, sigma 0.03, SGD lr 0.02 on
# std-normalised window returns. Here g = sum_i xi_i R_i / (N sigma^2), so with
# sigma 0.03 an SGD step of lr 0.02 moves each coordinate by about 0.2, ten
# sigmas, almost all of it noise: SGD needs lr ~ 1e-3 (0.02 x sigma, the
# ARS-style scaling g * sigma), while Adam's steps are about lr whatever the
# scale of g.
BASE = {
    "num-particles": 32,
    "truncation-length": 100,
    "sigma": 0.03,
    "learning-rate": 0.02,
    "optimizer": "sgd",
    "fitness-shaping": "std",
}
ADAM = {"optimizer": "adam", "learning-rate": 0.01}
# name: (algo, changes to BASE)
SWEEP = {
    "pes base": ("pes", {}),
    "pes N=64": ("pes", {"num-particles": 64}),
    "pes sigma=0.05": ("pes", {"sigma": 0.05}),
    "pes lr 0.02->0.002": ("pes", {"learning-rate-final": 0.002}),
    "nres base": ("nres", {}),
    "pes sgd lr=0.001": ("pes", {"learning-rate": 0.001}),
    "pes adam 0.01": ("pes", ADAM),
    "pes adam 0.02": ("pes", {**ADAM, "learning-rate": 0.02}),
    "pes adam 0.005": ("pes", {**ADAM, "learning-rate": 0.005}),
    "pes adam 0.01->0.001": ("pes", {**ADAM, "learning-rate-final": 0.001}),
    "pes adam N=64": ("pes", {**ADAM, "num-particles": 64}),
    "pes adam sigma=0.05": ("pes", {**ADAM, "sigma": 0.05}),
    "nres adam 0.01": ("nres", ADAM),
    "nres adam 0.005": ("nres", {**ADAM, "learning-rate": 0.005}),
    "nres adam 0.02": ("nres", {**ADAM, "learning-rate": 0.02}),
    "es adam 0.01": ("es", ADAM),
    "es adam 0.03": ("es", {**ADAM, "learning-rate": 0.03}),
    "es adam 0.1": ("es", {**ADAM, "learning-rate": 0.1}),
}
# The sweep's pick per method (best mean return over the last 20 % of 1M steps).
CHOICE = {
    "pes": ADAM,
    "nres": {**ADAM, "learning-rate": 0.005},
    "es": {**ADAM, "learning-rate": 0.03},
}
QUICK_SWEEP = ("pes base", "nres base")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, 1 seed")
    parser.add_argument("--sweep", action="store_true", help="the tuning sweep")
    parser.add_argument(
        "--out",
        default=None,
        help="default experiments/results, runs/quick/halfcheetah with --quick",
    )
    parser.add_argument(
        "--runs-dir",
        default=None,
        help="run directories (default runs/halfcheetah; OUT/runs with --quick)",
    )
    parser.add_argument(
        "--preset",
        action="store_true",
        help="compare with the halfcheetah preset instead of the sweep's pick",
    )
    parser.add_argument("--algos", nargs="+", default=["pes", "nres", "es"])
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--total-steps", type=int, default=None, help="default 2M")
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--threshold", type=float, default=1000.0)
    parser.add_argument(
        "--sweep-settings", nargs="+", default=None, choices=SWEEP, metavar="NAME"
    )
    parser.add_argument("--sweep-seed", type=int, default=100)
    parser.add_argument("--sweep-steps", type=int, default=None, help="1M")
    parser.add_argument("--no-wait", action="store_true", help="see swimmer_paper.py")
    parser.add_argument("--no-reuse", action="store_true", help="rerun finished runs")
    args = parser.parse_args()
    args.out = str(output_dir(args.out, args.quick, "halfcheetah"))
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.quick:
        args.total_steps = args.total_steps or 64_000
        args.eval_every = args.eval_every or 32_000
        args.sweep_steps = args.sweep_steps or 30_000
    args.sweep_steps = args.sweep_steps or 1_000_000
    if args.sweep_settings is None:
        args.sweep_settings = list(QUICK_SWEEP if args.quick else SWEEP)
    if args.runs_dir is None:
        args.runs_dir = Path(args.out) / "runs" if args.quick else "runs/halfcheetah"
    return args


def sweep_flags(algo: str, changes: dict, args: argparse.Namespace) -> list[str]:
    flags = explicit(algo, {**BASE, **changes})
    eval_every = args.eval_every or max(args.sweep_steps // 10, 1)
    return flags + [
        "--obs-norm",
        f"--total-steps={args.sweep_steps}",
        f"--eval-every={eval_every}",
    ]


def explicit(algo: str, settings: dict) -> list[str]:
    """Flags for ``settings``; FullES runs whole episodes (K = T), so it
    takes no truncation length."""
    skip = ("truncation-length",) if algo == "es" else ()
    return [f"--{k}={v}" for k, v in settings.items() if k not in skip]


def compare_flags(algo: str, args: argparse.Namespace) -> list[str]:
    """The sweep's pick for ``algo``, every flag explicit; with ``--preset``
    the preset as is, but for a different budget or evaluation interval."""
    preset = preset_for("halfcheetah", algo)
    total = args.total_steps or 2_000_000
    eval_every = args.eval_every or 100_000
    if not args.preset:
        flags = explicit(algo, {**BASE, **CHOICE[algo]})
        return flags + [
            "--obs-norm",
            f"--total-steps={total}",
            f"--eval-every={eval_every}",
        ]
    flags = []
    if total != preset.get("total_steps"):
        flags.append(f"--total-steps={total}")
    if eval_every != preset.get("eval_every"):
        flags.append(f"--eval-every={eval_every}")
    return flags


def run_sweep(args: argparse.Namespace, out: Path) -> None:
    runs = []
    for name in args.sweep_settings:
        algo, changes = SWEEP[name]
        slug = name.replace(" ", "_").replace("=", "").replace(">", "")
        run = train(
            Path(args.runs_dir) / f"sweep-{slug}-seed{args.sweep_seed}",
            "halfcheetah",
            algo,
            args.sweep_seed,
            sweep_flags(algo, changes, args),
            name,
            reuse=not args.no_reuse,
            wait=not (args.quick or args.no_wait),
        )
        runs.append(run)
    write_curves(out / "halfcheetah_sweep_curves.csv", runs)
    rows = []
    print("| setting | final return | last 20 % | best eval | s per run |")
    print("|---|---|---|---|---|")
    for run in runs:
        row = {
            "setting": run.setting,
            "algo": run.algo,
            "seed": run.seed,
            "flags": sweep_flags(*SWEEP[run.setting], args),
            "final_return": run.metrics[-1]["eval_return"],
            "late_return": late_return(run),
            "best_return": float(run.column("eval_return").max()),
            "run_seconds": run.metrics[-1]["seconds"],
            "process_seconds": run.wall_seconds,
        }
        rows.append(row)
        print(
            f"| {row['setting']} | {row['final_return']:.0f} | "
            f"{row['late_return']:.0f} | {row['best_return']:.0f} | "
            f"{row['run_seconds']:.0f} |"
        )
    summary = {"env": "HalfCheetah-v5", "base": BASE, "settings": rows}
    (out / "halfcheetah_sweep_summary.json").write_text(json.dumps(summary, indent=2))

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    colors = plt.get_cmap("tab20").colors
    for i, run in enumerate(runs):
        style = {"pes": "-", "nres": "--", "es": ":"}.get(run.algo, "-")
        ax.plot(
            run.column("env_steps"),
            run.column("eval_return"),
            style,
            color=colors[i % len(colors)],
            marker="o",
            ms=3,
            label=f"{run.setting} ({late_return(run):.0f})",
        )
    ax.set_xlabel("training env steps")
    ax.set_ylabel("evaluation return (mean policy)")
    ax.set_title(
        f"HalfCheetah-v5 tuning sweep, seed {args.sweep_seed}: base = N=32, K=100, "
        "sigma 0.03, SGD lr 0.02, std shaping, obs norm",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        title="setting (mean return,\nlast 20 % of steps)",
        title_fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(out / "halfcheetah_sweep.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'halfcheetah_sweep.png'}")


def run_compare(args: argparse.Namespace, out: Path) -> None:
    setting = "preset" if args.preset else "sweep pick"
    prefix = "preset" if args.preset else "pick"
    runs: list[RunResult] = []
    for algo in args.algos:
        for seed in args.seeds:
            runs.append(
                train(
                    Path(args.runs_dir) / f"{prefix}-{algo}-seed{seed}",
                    "halfcheetah",
                    algo,
                    seed,
                    compare_flags(algo, args),
                    setting,
                    reuse=not args.no_reuse,
                    wait=not (args.quick or args.no_wait),
                )
            )
    stem = "halfcheetah_preset" if args.preset else "halfcheetah"
    write_curves(out / f"{stem}_curves.csv", runs)
    rows = summarise(runs, args.threshold)
    configs = {}
    for algo in args.algos:
        run_dir = Path(args.runs_dir) / f"{prefix}-{algo}-seed{args.seeds[0]}"
        config = json.loads((run_dir / "config.json").read_text())
        keys = (
            "num_particles truncation_length horizon sigma sigma_final "
            "learning_rate learning_rate_final optimizer fitness_shaping "
            "obs_norm policy total_steps eval_every"
        ).split()
        configs[algo] = {k: config.get(k) for k in keys}
    summary = {
        "env": "HalfCheetah-v5",
        "setting": setting,
        "threshold": args.threshold,
        "configs": configs,
        "methods": rows,
    }
    (out / f"{stem}_summary.json").write_text(json.dumps(summary, indent=2))
    table = markdown_table(rows)
    (out / f"{stem}_table.md").write_text(table + "\n")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, x in zip(axes, ("env_steps", "seconds"), strict=True):
        plot_panel(ax, runs, x, args.threshold)
        ax.legend(
            fontsize=8, title="thick: mean over seeds, thin: seeds", title_fontsize=8
        )
    axes[0].set_ylabel("evaluation return (mean policy)")
    first = next(iter(configs.values()))
    steps = ", ".join(
        f"{ALGO_NAMES.get(a, a)} {c['optimizer']} {c['learning_rate']:g}"
        + (f"→{c['learning_rate_final']:g}" if c["learning_rate_final"] else "")
        for a, c in configs.items()
    )
    fig.suptitle(
        f"HalfCheetah-v5, linear policy, obs norm, T=1000, K="
        f"{first['truncation_length']} (FullES: K=T), N={first['num_particles']}, "
        f"sigma {first['sigma']:g}, std shaping\n{setting}: {steps}; dotted: "
        f"{args.threshold:g}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    plt.close(fig)
    print(table)
    print(TABLE_NOTE.format(threshold=args.threshold))
    names = ", ".join(ALGO_NAMES.get(a, a) for a in args.algos)
    print(f"wrote {out / (stem + '.png')} ({names})")


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        run_sweep(args, out)
    else:
        run_compare(args, out)


if __name__ == "__main__":
    main()
