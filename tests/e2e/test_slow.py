"""Slow tier (``pytest -m slow tests``): the main job's learning claim on Swimmer."""

import json
import math

import pytest

from pes_rl.cli.train import parse_config, run


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_default_swimmer_run_reaches_325_then_350(seed, tmp_path):
    """The preset's claim: an evaluation >= 325 (the ARS paper's threshold)
    within 100k env steps, and a final return >= 350."""
    run_dir = tmp_path / "run"
    config = parse_config(
        ["--env", "swimmer", "--seed", str(seed), "--no-progress"]
        + ["--run-dir", str(run_dir)]
    )
    summary = run(config)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(line) for line in lines]
    first = next(e["env_steps"] for e in evals if e["eval_return"] >= 325)
    assert first <= 100_000
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
        ["--env", "swimmer", "--algo", "pes", "--backend", "brax", "--seed", str(seed)]
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
