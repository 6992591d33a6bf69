"""The plot command in-process on written run directories: seed grouping,
labels, panels, legends (plots of real runs and evaluate: e2e/test_plot_evaluate.py)."""

import warnings

import numpy as np
import pytest
from run_dirs import write_run

from pes_rl.cli import plot


def test_seeds_form_one_line_with_a_min_max_band(tmp_path):
    # Seeds evaluated at different steps: interpolated onto the union of
    # their points, within the range all of them cover.
    a = write_run(tmp_path / "a", [(0, 0.0), (100, 10.0), (200, 20.0)], seed=0)
    b = write_run(tmp_path / "b", [(0, 2.0), (50, 4.0), (150, 8.0)], seed=1)
    c = write_run(tmp_path / "c", [(0, 1.0), (200, 3.0)], algo="nres")
    groups = plot.group_runs([plot.load_run(p) for p in (a, b, c)])
    assert [g.label for g in groups] == ["PES (2 seeds)", "NRES"]
    pes = groups[0]
    np.testing.assert_allclose(pes.x, [0, 50, 100, 150])
    a_values, b_values = np.array([0, 5, 10, 15]), np.array([2, 4, 6, 8])
    np.testing.assert_allclose(pes.mean, (a_values + b_values) / 2)
    np.testing.assert_allclose(pes.low, np.minimum(a_values, b_values))
    np.testing.assert_allclose(pes.high, np.maximum(a_values, b_values))

    std = plot.group_runs([plot.load_run(p) for p in (a, b)], band="std")[0]
    np.testing.assert_allclose(std.high - std.mean, np.abs(a_values - b_values) / 2)

    out = tmp_path / "curves.png"
    fig = plot.plot_runs([a, b, c], out)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["PES (2 seeds)", "NRES"]
    assert "min–max" in ax.get_legend().get_title().get_text()
    assert ax.get_title() == "linear_quadratic"
    assert out.stat().st_size > 0


def test_plot_against_seconds(tmp_path, capsys):
    a = write_run(tmp_path / "a", [(0, 1.0, 0.0), (100, 3.0, 1.0)], seed=0)
    b = write_run(tmp_path / "b", [(0, 2.0, 0.5), (100, 4.0, 1.5)], seed=1)
    out = tmp_path / "seconds.svg"
    assert plot.main([str(a), str(b), "-o", str(out), "--x", "seconds"]) == 0
    assert "1 lines" in capsys.readouterr().out
    (group,) = plot.group_runs([plot.load_run(a), plot.load_run(b)], x="seconds")
    np.testing.assert_allclose(group.x, [2.0, 3.0])  # the seconds both cover
    np.testing.assert_allclose(group.mean, [(0.5 + 0.5) / 2, (1.0 + 1.0) / 2])
    assert "<svg" in out.read_text()


def test_plot_labels_by_the_differing_keys_and_dedups_the_final_eval(tmp_path):
    # The final evaluation repeats the last step count: the later row wins.
    a = write_run(tmp_path / "a", [(0, 0.0), (100, 1.0), (100, 2.0)], sigma=0.1)
    b = write_run(tmp_path / "b", [(0, 0.0), (100, 1.0)], sigma=0.3)
    groups = plot.group_runs([plot.load_run(a), plot.load_run(b)])
    assert [g.label for g in groups] == ["σ=0.1", "σ=0.3"]
    np.testing.assert_allclose(groups[0].mean, [0.0, 2.0])


def test_plot_labels_name_the_algorithm_first_and_the_fewest_keys(tmp_path):
    # PES/NRES x two learning rates: lr_final follows lr (redundant); the
    # seeds differ in bookkeeping (eval_every, eval_episodes, progress) and in
    # hidden_sizes, which a linear policy does not use: one group each.
    dirs = []
    for algo, lr, seeds in (
        ("pes", 0.01, 3),
        ("pes", 0.03, 2),
        ("nres", 0.01, 2),
        ("nres", 0.03, 1),
    ):
        for seed in range(seeds):
            dirs.append(
                write_run(
                    tmp_path / f"{algo}-{lr}-{seed}",
                    [(0, 0.0), (100, 100 * lr + seed)],
                    algo=algo,
                    learning_rate=lr,
                    learning_rate_final=lr / 10,
                    total_steps=100,
                    policy="linear",
                    hidden_sizes=[32] * (seed + 1),
                    seed=seed,
                    eval_every=50 + seed,
                    eval_episodes=5 + seed,
                    progress=seed == 0,
                )
            )
    expected = [
        "PES, lr=0.01 (3 seeds)",
        "PES, lr=0.03 (2 seeds)",
        "NRES, lr=0.01 (2 seeds)",
        "NRES, lr=0.03",
    ]
    groups = plot.group_runs([plot.load_run(p) for p in dirs])
    assert [g.label for g in groups] == expected
    fig = plot.plot_runs(dirs)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == expected

    # Names as users know them; abbreviated keys, as few as tell groups apart.
    names = [
        write_run(tmp_path / algo, [(0, 0.0)], algo=algo)
        for algo in ("tes", "es", "pes", "nres")
    ]
    labels = [g.label for g in plot.group_runs(map(plot.load_run, names))]
    assert labels == ["TES", "FullES", "PES", "NRES"]
    sweep = [
        write_run(
            tmp_path / f"n{n}-k{k}",
            [(0, 0.0)],
            num_particles=n,
            truncation_length=k,
            sigma=0.1,
            sigma_final=0.01 if k == 10 else 0.02,  # follows K: redundant
        )
        for n, k in ((16, 10), (16, 20), (32, 10))
    ]
    labels = [g.label for g in plot.group_runs(map(plot.load_run, sweep))]
    assert labels == ["N=16, K=10", "N=16, K=20", "N=32, K=10"]


def two_env_comparison(tmp_path, long_labels=False):
    """PES and NRES, two seeds each, on Swimmer and HalfCheetah with each
    environment's own settings; ``long_labels`` adds short runs of NRES with
    other settings on Swimmer, as a user's leftover experiments."""
    dirs = []
    for env, env_id, lr, scale in (
        ("swimmer", "Swimmer-v5", 0.01, 300),
        ("halfcheetah", "HalfCheetah-v5", 0.03, 3000),
    ):
        for algo in ("pes", "nres"):
            for seed in (0, 1):
                final = scale * (0.7 if algo == "pes" else 1.0) + 10 * seed
                dirs.append(
                    write_run(
                        tmp_path / f"{env}-{algo}-{seed}",
                        [(0, 0.0), (50_000, final / 2), (100_000, final)],
                        env=env,
                        env_id=env_id,
                        algo=algo,
                        learning_rate=lr,
                        learning_rate_final=lr / 10,
                        eval_every=50_000,
                        total_steps=100_000,
                        seed=seed,
                    )
                )
    if long_labels:
        for seed in (0, 1):
            dirs.append(
                write_run(
                    tmp_path / f"swimmer-nres-short-{seed}",
                    [(0, 0.0), (10_000, 20.0), (30_000, 40.0)],
                    env="swimmer",
                    env_id="Swimmer-v5",
                    algo="nres",
                    learning_rate=0.03,
                    learning_rate_final=0.002,
                    truncation_length=100,
                    total_steps=30_000,
                    eval_every=10_000,
                    seed=seed,
                )
            )
    return dirs


def test_plot_runs_on_two_envs_get_one_panel_each(tmp_path, capsys):
    dirs = two_env_comparison(tmp_path)
    out = tmp_path / "envs.png"
    assert plot.main([*map(str, dirs), "-o", str(out)]) == 0
    assert "(8 runs, 4 lines in 2 panels)" in capsys.readouterr().out
    fig = plot.plot_runs(dirs)
    assert [ax.get_title() for ax in fig.axes] == ["Swimmer-v5", "HalfCheetah-v5"]
    # Grouped per panel: the learning rate differs between the environments,
    # not within one, so the labels leave it out.
    for ax, scale in zip(fig.axes, (300, 3000), strict=True):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == [
            "PES (2 seeds)",
            "NRES (2 seeds)",
        ]
        finals = [line.get_ydata()[-1] for line in lines]  # mean over 2 seeds
        np.testing.assert_allclose(finals, [0.7 * scale + 5, scale + 5])
    # A group keeps its colour in every panel.
    colours = [[line.get_color() for line in ax.get_lines()] for ax in fig.axes]
    assert colours[0] == colours[1]

    titled = plot.plot_runs(dirs, title="Two environments")
    assert titled.get_suptitle() == "Two environments"
    assert [ax.get_title() for ax in titled.axes] == ["Swimmer-v5", "HalfCheetah-v5"]


def legend_of(fig):
    (legend,) = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return legend


@pytest.mark.parametrize("case", ["many entries", "long labels", "two envs"])
def test_plot_long_legend_goes_outside_the_axes(tmp_path, case):
    if case == "two envs":
        dirs = two_env_comparison(tmp_path, long_labels=True)
    elif case == "many entries":
        dirs = [
            write_run(
                tmp_path / f"{algo}-{lr}-{sigma}",
                [(0, 0.0), (100, 100 * lr + sigma)],
                algo=algo,
                learning_rate=lr,
                sigma=sigma,
            )
            for algo in ("pes", "nres")
            for lr in (0.01, 0.03)
            for sigma in (0.02, 0.05)
        ]
    else:
        kwargs = {"forward_reward_weight": 1.0, "ctrl_cost_weight": 1e-4}
        dirs = [
            write_run(
                tmp_path / f"kw{i}",
                [(0, 0.0), (100, 10.0 * i)],
                env_kwargs={**kwargs, "reset_noise_scale": 0.1 * i},
            )
            for i in (1, 2)
        ]
    fig = plot.plot_runs(dirs)
    fig.draw_without_rendering()
    box = legend_of(fig).get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), case
        assert not box.overlaps(ax.yaxis.label.get_window_extent()), case
        # Nothing cut off: axes, y label and legend lie within the figure.
        for item in (ax.get_window_extent(), ax.yaxis.label.get_window_extent()):
            assert fig.bbox.x0 <= item.x0 and item.x1 <= fig.bbox.x1, case
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, case
    assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, case
    labels = [text.get_text() for text in legend_of(fig).get_texts()]
    if case == "many entries":
        assert labels[0] == "PES, lr=0.01, σ=0.02"


def test_plot_a_short_legend_stays_inside_off_the_data(tmp_path):
    a = write_run(tmp_path / "a", [(0, 0.0), (50, 8.0), (100, 10.0)])
    b = write_run(tmp_path / "b", [(0, 0.0), (50, 3.0), (100, 4.0)], algo="nres")
    fig = plot.plot_runs([a, b])
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["PES", "NRES"]
    box = ax.get_legend().get_window_extent()
    assert ax.get_window_extent().contains(box.x0, box.y0)
    assert ax.get_window_extent().contains(box.x1, box.y1)
    for line in ax.get_lines():
        path = line.get_transform().transform_path(line.get_path())
        assert not path.intersects_bbox(box, filled=False)


def test_plot_saves_a_crowded_comparison_without_warnings(tmp_path):
    # The user's report: two environments and leftover runs with long labels
    # made constrained_layout warn that the axes "collapsed to zero".
    dirs = two_env_comparison(tmp_path, long_labels=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot.plot_runs(dirs, tmp_path / "crowded.png")
        plot.plot_runs(dirs[:8], tmp_path / "two_envs.svg", title="Comparison")
    assert len(fig.axes) == 2
    labels = [text.get_text() for text in legend_of(fig).get_texts()]
    # One label keeps one meaning (and colour) across the panels: the
    # learning rate that tells the Swimmer runs apart is shown in both.
    assert labels == [
        "PES, lr=0.01 (2 seeds)",
        "NRES, lr=0.01 (2 seeds)",
        "NRES, lr=0.03 (2 seeds)",
        "PES, lr=0.03 (2 seeds)",
    ]
