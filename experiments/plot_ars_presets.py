"""Eval return against env steps for the ARS comparison (issue 29).

Reads experiments/results/{env}_ars_seed{S}_metrics.jsonl, the resumable
runs' experiments/results/ars_runs/{env}_seed{S}/metrics.jsonl and, in grey,
{env}_ars_preset_seed{S}_metrics.jsonl (the runs of
docs/results/presets-ars.md, "Against ARS's env steps"), draws one panel
per env with the ARS linear-policy threshold and ARS's env steps to it
(Mania et al. 2018, Table 1; V2-t, V2 for Humanoid) marked, writes
experiments/results/ars_presets.png and prints, per seed, the env steps of
the first evaluation at or above the threshold.

    python experiments/plot_ars_presets.py
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# env: (threshold, ARS's env steps to it, its variant). ARS counts episodes;
# each is at most 1,000 steps, so episodes x 1,000 bounds its env steps.
ARS = {
    "hopper": (3120, 1.97e6, "V2-t"),
    "halfcheetah": (3430, 1.71e6, "V2-t"),
    "walker2d": (4390, 24e6, "V2-t"),
    "ant": (3580, 20.8e6, "V2-t"),
    "humanoid": (6000, 143e6, "V2"),
}


def load(path: Path) -> tuple[list[int], list[float]]:
    """Env steps and eval returns of one run's metrics.jsonl."""
    steps, returns = [], []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "eval_return" in row:
            steps.append(row["env_steps"])
            returns.append(row["eval_return"])
    return steps, returns


def first_at(steps: list[int], returns: list[float], threshold: float):
    """Env steps of the first evaluation at or above threshold, else None."""
    return next(
        (s for s, r in zip(steps, returns, strict=True) if r >= threshold), None
    )


def runs(env: str) -> list[tuple[str, Path]]:
    """(seed, metrics.jsonl) of every run of ``env``: finished runs' copies
    and the run directories kept for resuming."""
    found = [
        (path.name.split("_seed")[1].split("_")[0], path)
        for path in RESULTS.glob(f"{env}_ars_seed*_metrics.jsonl")
    ]
    found += [
        (path.parent.name.split("_seed")[1], path)
        for path in RESULTS.glob(f"ars_runs/{env}_seed*/metrics.jsonl")
    ]
    return sorted(found)


def main() -> None:
    fig, axes = plt.subplots(1, len(ARS), figsize=(3.6 * len(ARS), 3.4))
    for ax, (env, (threshold, ars_steps, variant)) in zip(
        axes, ARS.items(), strict=True
    ):
        for seed, path in runs(env):
            steps, returns = load(path)
            hit = first_at(steps, returns, threshold)
            print(
                f"{env} seed {seed}: {steps[-1]:,} steps, final {returns[-1]:.0f}, "
                f"max {max(returns):.0f}, first >= {threshold}: "
                f"{'never' if hit is None else f'{hit:,}'}"
            )
            (line,) = ax.plot([s / 1e6 for s in steps], returns, label=f"seed {seed}")
            if hit is not None:
                ax.plot(
                    hit / 1e6, returns[steps.index(hit)], "o", color=line.get_color()
                )
        # The preset without top-b at the same budget, where it was run, in
        # grey: what top-b changes.
        for i, path in enumerate(
            sorted(RESULTS.glob(f"{env}_ars_preset_seed*_metrics.jsonl"))
        ):
            steps, returns = load(path)
            label = "preset, all pairs" if i == 0 else None
            ax.plot(
                [s / 1e6 for s in steps],
                returns,
                color="0.6",
                ls="--",
                lw=1,
                label=label,
            )
        ax.axhline(
            threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:,}"
        )
        ax.axvline(ars_steps / 1e6, color="r", ls=":", lw=1.5, label=f"ARS {variant}")
        ax.set_title(env)
        ax.set_xlabel("env steps (millions)")
        ax.grid(alpha=0.3)
        if ax is axes[0]:
            ax.set_ylabel("eval return")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = RESULTS / "ars_presets.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
