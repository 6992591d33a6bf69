"""Variance of PES and NRES gradient estimates along an episode.

Tests the claim of Li et al., "Noise-Reuse Evolution Strategies" (NeurIPS
2023, arXiv 2304.12180): among unbiased online ES estimators, reusing one
perturbation for a whole episode (NRES) has lower variance than drawing a
fresh one every window and weighting by their sum (PES; Vicol, Metz and
Sohl-Dickstein, ICML 2021, arXiv 2112.13835). PES's weight after w + 1
windows sums w + 1 independent perturbations, so its variance is expected to
grow with the window index; NRES's does not have to.

Protocol: theta is fixed (``optimizer=optax.set_to_zero()``), pairs are not
staggered, so every particle is at the same window index of its episode, and
fitness shaping is off (the unbiased estimator). One agent runs many
episodes; each episode redraws all noise and reset seeds, so its windows
give one independent sample of the estimate at each window index. The
variance reported is the trace of the covariance over those samples, with a
standard error from the spread of the squared deviations.

Two environments: the library's linear-quadratic toy (T = 20, K = 1, D = 2).
Its window returns are quadratic in the parameters, so the antithetic
difference is exactly linear in the noise and the variances have closed
forms, drawn as dashed lines: with a_v = dR_w/dtheta_v and S = sum_v a_v over
the w + 1 windows so far, a pair contributes ``(w + 1) D sum_v |a_v|^2 +
|S|^2`` (PES) and ``(D + 1) |S|^2`` (NRES), divided by the number of pairs.
And MuJoCo Swimmer (T = 1000, K = 100, linear policy, D = 16) at a theta
from a short PES run.

    python experiments/variance.py            # full: about 2.5 min
    python experiments/variance.py --quick    # about 20 s

Writes ``variance_linear_quadratic.csv``, ``variance_swimmer.csv`` and
``variance.png`` to ``--out`` and prints a table per environment.
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
from reproduce_common import output_dir

from pes_rl.agents import NRES, PES

METHODS = {"PES": PES, "NRES": NRES}
COLORS = {"PES": "tab:blue", "NRES": "tab:green"}
FROZEN = optax.set_to_zero()  # one instance: agents share compiled functions

LQ_HORIZON, LQ_RHO, LQ_TARGET = 20, 0.9, 1.0  # the registered toy's settings
LQ_THETA = np.array([0.3, -0.4], np.float32)  # weights on obs [1, t / T]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few episodes")
    parser.add_argument(
        "--out",
        default=None,
        help="default experiments/results, runs/quick/variance with --quick",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-particles", type=int, default=10)
    parser.add_argument("--lq-truncation-length", type=int, default=1)
    parser.add_argument("--lq-sigma", type=float, default=0.1)
    parser.add_argument("--lq-episodes", type=int, default=None, help="default 1500")
    parser.add_argument("--swimmer-sigma", type=float, default=0.1)
    parser.add_argument(
        "--swimmer-episodes", type=int, default=None, help="default 100 (quick 6)"
    )
    parser.add_argument(
        "--swimmer-train-steps",
        type=int,
        default=50_000,
        help="PES steps that produce the fixed Swimmer theta (0: theta = 0)",
    )
    args = parser.parse_args()
    args.out = str(output_dir(args.out, args.quick, "variance"))
    if args.lq_episodes is None:
        args.lq_episodes = 150 if args.quick else 1500
    if args.swimmer_episodes is None:
        args.swimmer_episodes = 6 if args.quick else 100
    return args


def sample_estimates(cls, theta, episodes: int, seed: int, **kwargs) -> np.ndarray:
    """Gradient estimates at a fixed theta: [episodes, windows, D]."""
    agent = cls(
        optimizer=FROZEN, fitness_shaping="none", stagger=False, seed=seed,
        preset=None, **kwargs,
    )  # fmt: skip
    agent.theta = jnp.asarray(theta, jnp.float32)
    windows = agent.windows_per_episode
    grads = np.empty((episodes, windows, agent.theta.shape[0]))
    for episode in range(episodes):
        for window in range(windows):
            info = agent.update()
            grads[episode, window] = info["grad"]
        # Every pair ends its episode in the last window: the next update is
        # window 0 again, with fresh noise and reset seeds.
        assert info["episodes_completed"] == agent.num_particles
    agent.close()
    return grads


def variance_by_window(grads: np.ndarray) -> dict[str, np.ndarray]:
    """Trace of the covariance over episodes, per window, with its standard
    error, and the mean estimate."""
    episodes = grads.shape[0]
    mean = grads.mean(axis=0)  # [W, D]
    squared = ((grads - mean) ** 2).sum(axis=-1) * episodes / (episodes - 1)
    return {
        "trace_var": squared.mean(axis=0),
        "trace_var_se": squared.std(axis=0, ddof=1) / np.sqrt(episodes),
        "mean": mean,
    }


def lq_window_returns(theta_per_window: jax.Array, window: int) -> jax.Array:
    """Window returns of the toy when window w acts with theta_per_window[w]."""
    state, returns = 0.0, []
    for w in range(theta_per_window.shape[0]):
        total = 0.0
        for t in range(w * window, (w + 1) * window):
            state = LQ_RHO * state + theta_per_window[w] @ jnp.array(
                [1.0, t / LQ_HORIZON]
            )
            total = total - (state - LQ_TARGET) ** 2
        returns.append(total)
    return jnp.stack(returns)


def lq_theory(window: int, num_particles: int) -> dict[str, np.ndarray]:
    """Exact mean and variance (trace) of each estimator on the toy."""
    windows = LQ_HORIZON // window
    thetas = jnp.tile(jnp.asarray(LQ_THETA), (windows, 1))
    jac = np.asarray(jax.jacobian(lq_window_returns)(thetas, window))  # [W, W, D]
    dim, pairs = jac.shape[-1], num_particles // 2
    out = {"mean": [], "PES": [], "NRES": []}
    for w in range(windows):
        a = jac[w, : w + 1]  # influence of windows 0..w on window w's return
        total = a.sum(axis=0)
        out["mean"].append(total)
        out["PES"].append(((w + 1) * dim * (a**2).sum() + total @ total) / pairs)
        out["NRES"].append((dim + 1) * (total @ total) / pairs)
    return {k: np.array(v) for k, v in out.items()}


def swimmer_theta(args: argparse.Namespace) -> tuple[np.ndarray, float]:
    """A partly trained linear Swimmer policy and its mean return."""
    agent = PES(
        env="swimmer",
        num_particles=20,
        truncation_length=100,
        sigma=0.3,
        learning_rate=0.1,
        fitness_shaping="std",
        seed=args.seed,
        preset=None,  # SGD, as measured
    )
    if args.swimmer_train_steps:
        agent.learn(args.swimmer_train_steps, progress_bar=False)
    theta = np.asarray(agent.theta)
    mean_return = agent.evaluate(num_episodes=5)
    agent.close()
    return theta, mean_return


def write_csv(
    path: Path, env: str, stats: dict, theory: dict | None, band, args
) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "env",
                "method",
                "window",
                "episodes",
                "num_particles",
                "trace_var",
                "trace_var_se",
                "mean_grad_norm",
                "theory_trace_var",
                "true_grad_norm",
                "pes_over_nres",
                "ratio_p05",
                "ratio_p95",
            ]
        )
        ratio = stats["PES"]["trace_var"] / stats["NRES"]["trace_var"]
        for name, s in stats.items():
            for w in range(len(s["trace_var"])):
                writer.writerow(
                    [
                        env,
                        name,
                        w,
                        s["episodes"],
                        args.num_particles,
                        f"{s['trace_var'][w]:.6g}",
                        f"{s['trace_var_se'][w]:.6g}",
                        f"{np.linalg.norm(s['mean'][w]):.6g}",
                        f"{theory[name][w]:.6g}" if theory else "",
                        f"{np.linalg.norm(theory['mean'][w]):.6g}" if theory else "",
                        f"{ratio[w]:.4g}",
                        f"{band[0][w]:.4g}",
                        f"{band[1][w]:.4g}",
                    ]
                )


def print_table(title: str, stats: dict, theory: dict | None, band) -> None:
    print(f"\n{title}")
    head = "| window | PES var | NRES var | PES / NRES (5-95 %) |"
    rule = "|---|---|---|---|"
    if theory:
        head += " theory PES | theory NRES |"
        rule += "---|---|"
    print(head)
    print(rule)
    pes, nres = stats["PES"], stats["NRES"]
    for w in range(len(pes["trace_var"])):
        line = (
            f"| {w} | {pes['trace_var'][w]:.4g} ± {pes['trace_var_se'][w]:.2g} | "
            f"{nres['trace_var'][w]:.4g} ± {nres['trace_var_se'][w]:.2g} | "
            f"{pes['trace_var'][w] / nres['trace_var'][w]:.2f} "
            f"({band[0][w]:.2f}-{band[1][w]:.2f}) |"
        )
        if theory:
            line += f" {theory['PES'][w]:.4g} | {theory['NRES'][w]:.4g} |"
        print(line)


def ratio_band(stats: dict, rng: np.random.Generator, draws: int = 400):
    """5-95 % paired-bootstrap band of the PES / NRES variance ratio: the two
    methods share seeds, so episode e of one is resampled with episode e of
    the other (window 0 even uses the very same noise)."""
    pes, nres = stats["PES"]["grads"], stats["NRES"]["grads"]
    ratios = []
    for _ in range(draws):
        pick = rng.integers(len(pes), size=len(pes))
        ratios.append(
            variance_by_window(pes[pick])["trace_var"]
            / variance_by_window(nres[pick])["trace_var"]
        )
    with np.errstate(invalid="ignore"):
        return np.nanpercentile(np.array(ratios), [5, 95], axis=0)


def plot(path: Path, panels: list[tuple[str, dict, dict | None, np.ndarray]]) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(6 * len(panels), 6.5),
        sharex="col",
        gridspec_kw={"height_ratios": [2, 1]},
    )
    for column, (title, stats, theory, band) in enumerate(panels):
        ax, ax_ratio = axes[0, column], axes[1, column]
        windows = np.arange(len(stats["PES"]["trace_var"]))
        for name, s in stats.items():
            ax.errorbar(
                windows,
                s["trace_var"],
                yerr=s["trace_var_se"],
                color=COLORS[name],
                marker="o",
                ms=3,
                capsize=2,
                label=f"{name} (measured, {s['episodes']} episodes)",
            )
            if theory:
                ax.plot(windows, theory[name], color=COLORS[name], ls="--", lw=1)
        if theory:
            ax.plot([], [], color="k", ls="--", lw=1, label="closed form")
        ax.set_yscale("log")
        ax.set_ylabel("trace of covariance of the estimate")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        ratio = stats["PES"]["trace_var"] / stats["NRES"]["trace_var"]
        low, high = band
        ax_ratio.fill_between(
            windows, low, high, color="0.85", label="5-95 % bootstrap"
        )
        ax_ratio.plot(windows, ratio, "k-o", ms=3, label="measured")
        if theory:
            ax_ratio.plot(
                windows,
                theory["PES"] / theory["NRES"],
                "k--",
                lw=1,
                label="closed form",
            )
        ax_ratio.axhline(1, color="0.5", lw=0.8)
        if np.nanmax(high) > 3:
            ax_ratio.set_yscale("log")
        ax_ratio.set_ylabel("PES / NRES variance")
        ax_ratio.set_xlabel("window index (windows since the episode began)")
        ax_ratio.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    n = args.num_particles

    # Linear-quadratic toy.
    k = args.lq_truncation_length
    lq_kwargs = dict(
        env="linear_quadratic",
        num_particles=n,
        truncation_length=k,
        horizon=LQ_HORIZON,
        sigma=args.lq_sigma,
    )
    theory = lq_theory(k, n)
    lq = {}
    for name, cls in METHODS.items():
        grads = sample_estimates(
            cls, LQ_THETA, args.lq_episodes, args.seed, **lq_kwargs
        )
        lq[name] = {
            **variance_by_window(grads),
            "episodes": args.lq_episodes,
            "grads": grads,
        }
        # The unbiasedness check that makes the variance comparison fair.
        se = grads.std(axis=0, ddof=1) / np.sqrt(args.lq_episodes)
        z = np.abs(lq[name]["mean"] - theory["mean"]) / se
        print(
            f"linear_quadratic {name}: max |z| of mean vs exact gradient {z.max():.2f}"
        )
    rng = np.random.default_rng(args.seed)
    lq_band = ratio_band(lq, rng)
    write_csv(
        out / "variance_linear_quadratic.csv",
        "linear_quadratic",
        lq,
        theory,
        lq_band,
        args,
    )
    lq_seconds = time.perf_counter() - start

    # Swimmer.
    theta, theta_return = swimmer_theta(args)
    sw_kwargs = dict(
        env="swimmer",
        num_particles=n,
        truncation_length=100,
        horizon=1000,
        sigma=args.swimmer_sigma,
    )
    swimmer = {}
    for name, cls in METHODS.items():
        grads = sample_estimates(
            cls, theta, args.swimmer_episodes, args.seed + 1, **sw_kwargs
        )
        swimmer[name] = {
            **variance_by_window(grads),
            "episodes": args.swimmer_episodes,
            "grads": grads,
        }
    sw_band = ratio_band(swimmer, rng)
    write_csv(out / "variance_swimmer.csv", "swimmer", swimmer, None, sw_band, args)

    plot(
        out / "variance.png",
        [
            (
                f"linear_quadratic: T={LQ_HORIZON}, K={k}, N={n}, "
                f"sigma={args.lq_sigma}",
                lq,
                theory,
                lq_band,
            ),
            (
                f"Swimmer-v5: T=1000, K=100, N={n}, sigma={args.swimmer_sigma}, "
                f"theta return {theta_return:.0f}",
                swimmer,
                None,
                sw_band,
            ),
        ],
    )
    print_table(
        f"linear_quadratic, theta={LQ_THETA.tolist()}, T={LQ_HORIZON}, K={k}, "
        f"N={n}, sigma={args.lq_sigma}, {args.lq_episodes} episodes per method "
        "(± standard error)",
        lq,
        theory,
        lq_band,
    )
    print_table(
        f"Swimmer-v5, linear policy after {args.swimmer_train_steps} PES steps "
        f"(return {theta_return:.1f}), T=1000, K=100, N={n}, "
        f"sigma={args.swimmer_sigma}, {args.swimmer_episodes} episodes per method",
        swimmer,
        None,
        sw_band,
    )
    total = time.perf_counter() - start
    print(
        f"\n({lq_seconds:.0f} s linear_quadratic, {total - lq_seconds:.0f} s Swimmer)"
    )


if __name__ == "__main__":
    main()
