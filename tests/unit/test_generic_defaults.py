"""Generic defaults for environments without a named preset: scale-free
settings, a budget from the horizon, and warnings for flags unlikely to
learn. Their learning claim is in the slow tier (e2e/test_slow.py)."""

import pytest

from pes_rl.agents.presets import PRESETS
from pes_rl.cli.flags import parse_config
from pes_rl.cli.rules import surprises
from pes_rl.cli.train import main
from pes_rl.errors import ConfigError

GENERIC = {
    "preset": "generic",
    "optimizer": "adam",
    "fitness_shaping": "centered_ranks",
    "obs_norm": True,
    "num_particles": 32,
    "sigma": 0.05,
}


@pytest.mark.parametrize(
    "env, total_steps",
    [("Reacher-v5", 500_000), ("Pendulum-v1", 1_000_000), ("Hopper-v5", 1_000_000)],
)
def test_envs_without_a_preset_get_the_generic_defaults(env, total_steps):
    args = ["--env", env] + (["--preset", "generic"] if env == "Hopper-v5" else [])
    config = parse_config(args)
    assert {k: getattr(config, k) for k in GENERIC} == GENERIC
    # The learning rate decays over a budget that follows the horizon.
    assert config.learning_rate_final < config.learning_rate
    assert config.total_steps == total_steps
    assert config.eval_every == total_steps // 20


def test_the_generic_budget_buys_about_300_updates():
    # 300 x 32 particles x K = min(100, T), rounded up to 100k env steps.
    assert parse_config(["--env", "Reacher-v5", "--horizon", "20"]).total_steps == (
        200_000
    )
    config = parse_config(["--env", "Reacher-v5", "--num-particles", "64"])
    assert config.total_steps == 1_000_000 and config.eval_every == 50_000
    config = parse_config(["--env", "Reacher-v5", "--total-steps", "12345"])
    assert config.total_steps == 12345 and config.eval_every == 617
    # Kept as given (not replaced by the budget's), so refused as for any preset.
    with pytest.raises(ConfigError, match="--eval-every must be a positive"):
        parse_config(["--env", "Reacher-v5", "--eval-every", "0"])


def test_named_presets_take_precedence():
    config = parse_config(["--env", "Swimmer-v5"])
    assert config.preset == "swimmer"
    swimmer = PRESETS["swimmer"]["common"]
    assert {k: getattr(config, k) for k in swimmer} == swimmer
    assert config.obs_norm is False  # not the generic defaults' obs-norm
    assert parse_config(["--problem", "influence_balancing"]).optimizer == "sgd"


def test_problems_without_a_preset_get_them_without_obs_norm():
    # The factory is not called while parsing (it may start JAX before a
    # multi-process run initialises it), so the budget is TrainConfig's.
    config = parse_config(["--problem", "custom_problem:make"])
    assert config.preset == "generic" and config.optimizer == "adam"
    assert config.obs_norm is False and config.total_steps == 1_000_000


def test_an_unknown_preset_is_one_line(capsys):
    assert main(["--env", "Reacher-v5", "--preset", "reacher"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "--preset" in err


@pytest.mark.parametrize(
    "args, warned",
    [
        (["--env", "Reacher-v5", "--optimizer", "sgd", "--fitness-shaping", "none"],
         True),
        (["--env", "Reacher-v5", "--optimizer", "sgd"], False),
        (["--env", "swimmer", "--optimizer", "sgd", "--fitness-shaping", "none"],
         True),
        # Its preset measured SGD on raw returns, not for another env.
        (["--problem", "influence_balancing"], False),
        (["--env", "Reacher-v5", "--preset", "influence_balancing"], True),
    ],
)  # fmt: skip
def test_sgd_on_raw_returns_of_an_unmeasured_scale_gets_a_warning(args, warned):
    lines = surprises(parse_config(args), warm_up_steps=0)
    assert any("--fitness-shaping none" in x for x in lines) == warned, lines


def test_a_budget_of_few_updates_gets_a_warning():
    config = parse_config(["--env", "Reacher-v5", "--algo", "es"])
    assert not surprises(config, warm_up_steps=0, horizon=50)
    config = parse_config(["--problem", "influence_balancing", "--algo", "es"])
    assert not surprises(config, warm_up_steps=0, horizon=200)  # its own budget
    config = parse_config(
        ["--env", "Hopper-v5", "--algo", "es", "--total-steps", "100000"]
    )
    lines = surprises(config, warm_up_steps=0, horizon=1000)
    assert any("buys about" in x for x in lines), lines
