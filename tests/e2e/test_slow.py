"""Slow tier (``pytest -m slow tests``): the main job's learning claim on Swimmer."""

import math

import pytest

from pes_rl.cli.train import parse_config, run


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed",
    [
        0,
        pytest.param(
            1,
            marks=pytest.mark.xfail(
                strict=True,
                reason="since the key streams changed (issue 9), seed 1 climbs "
                "late and ends at 349.9 within the preset's 600k steps; the "
                "Swimmer preset is retuned under issue 14",
            ),
        ),
    ],
)
def test_default_swimmer_run_reaches_350(seed, tmp_path):
    config = parse_config(
        [
            "--env",
            "swimmer",
            "--seed",
            str(seed),
            "--no-progress",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    summary = run(config)
    assert summary["env_steps"] <= 1_000_000
    assert summary["eval_return"] >= 350


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["nres", "es"])
def test_other_unbiased_estimators_learn_swimmer(algo, tmp_path):
    config = parse_config(
        [
            "--env",
            "swimmer",
            "--algo",
            algo,
            "--total-steps",
            "300000",
            "--no-progress",
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert run(config)["eval_return"] >= 100


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_default_swimmer_run_on_brax_reaches_350(seed, tmp_path):
    config = parse_config(
        ["--env", "swimmer", "--backend", "brax", "--seed", str(seed)]
        + ["--no-progress", "--run-dir", str(tmp_path / "run")]
    )
    summary = run(config)
    assert summary["env_steps"] <= 1_000_000
    assert summary["eval_return"] >= 350


@pytest.mark.slow
def test_short_swimmer_runs_on_brax_for_the_other_estimators(tmp_path):
    for algo in ("nres", "tes", "es"):
        config = parse_config(
            ["--env", "swimmer", "--backend", "brax", "--algo", algo]
            + ["--total-steps", "60000", "--eval-every", "30000", "--no-progress"]
            + ["--run-dir", str(tmp_path / algo)]
        )
        summary = run(config)
        assert summary["env_steps"] >= 60000
        assert math.isfinite(summary["eval_return"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "env, threshold", [("InvertedPendulum-v5", 950), ("Reacher-v5", -8)]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generic_defaults_learn_with_no_flag_but_the_env(
    env, threshold, seed, tmp_path
):
    config = parse_config(
        ["--env", env, "--seed", str(seed), "--no-progress"]
        + ["--run-dir", str(tmp_path / "run")]
    )
    assert config.preset == "generic"
    assert run(config)["eval_return"] >= threshold
