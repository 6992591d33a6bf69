"""The Python API starts from the command line's settings: the env's (or
Problem's) preset, else the generic defaults, with explicit arguments
overriding them and decays sized by the first learn() call."""

import dataclasses

import pytest
from custom_problem import NoisyRegression

from pes_rl.agents import PES, presets
from pes_rl.agents.defaults import agent_settings
from pes_rl.core.schedules import LinearDecay
from pes_rl.errors import ConfigError
from pes_rl.problems.toys import LinearQuadratic, LRScheduleToy


@pytest.mark.parametrize(
    "algo, env, expected",
    [
        ("pes", "swimmer", {"optimizer": "adam", "fitness_shaping": "std"}),
        ("pes", "Swimmer-v5", {"sigma": LinearDecay(0.3, 0.1)}),
        ("es", "swimmer", {"learning_rate": LinearDecay(0.1, 0.01)}),
        ("nres", "Hopper-v5", {"reward_shift": 1.0, "num_particles": 64}),
        ("pes", "CartPole-v1", {"fitness_shaping": "centered_ranks"}),
        ("pes", "MyEnv-v0", {"obs_norm": True, "sigma": 0.05}),
    ],
)
def test_an_env_gets_its_own_preset(algo, env, expected):
    name, settings = agent_settings("auto", algo, env, None, {})
    assert name != "generic" or env == "MyEnv-v0"
    assert {k: settings[k] for k in expected} == expected


def test_explicit_arguments_override_the_preset():
    given = {"learning_rate": 0.05, "obs_norm": False, "num_particles": 8}
    _, settings = agent_settings("auto", "pes", "swimmer", None, given)
    assert settings["learning_rate"] == 0.05  # a number stays constant
    assert settings["sigma"] == LinearDecay(0.3, 0.1)  # not given: the preset's
    assert (settings["obs_norm"], settings["num_particles"]) == (False, 8)


def test_problems_get_their_preset_or_the_generic_defaults_for_problems():
    name, settings = agent_settings("auto", "pes", "swimmer", LRScheduleToy(), {})
    assert name == "lr_schedule_toy"
    assert (settings["num_particles"], settings["truncation_length"]) == (100, 10)
    name, settings = agent_settings("auto", "pes", "swimmer", LinearQuadratic(), {})
    assert name == "linear_quadratic" and settings["fitness_shaping"] == "std"
    name, settings = agent_settings("auto", "pes", "swimmer", NoisyRegression(), {})
    assert name == "generic" and settings["optimizer"] == "adam"
    assert settings["obs_norm"] is False  # as the CLI: no obs-norm for Problems


def test_preset_none_keeps_the_bare_defaults_and_a_named_one_applies():
    _, bare = agent_settings(None, "pes", "swimmer", None, {})
    old = {"optimizer": "sgd", "sigma": 0.3, "learning_rate": 0.1}
    old.update(fitness_shaping="none", obs_norm=False, num_particles=20)
    assert {k: bare[k] for k in old} == old
    name, chosen = agent_settings("halfcheetah", "pes", "MyEnv-v0", None, {})
    assert name == "halfcheetah" and chosen["sigma"] == 0.03
    with pytest.raises(ConfigError, match="unknown preset 'swimer'"):
        PES(env="swimmer", preset="swimer")


def test_a_decay_is_sized_once_by_the_first_learn(lq_pes):
    agent = lq_pes(learning_rate=LinearDecay(0.01, 0.001), stagger=False)
    assert agent.learning_rate == pytest.approx(0.01)  # unsized: its start
    agent.learn(400, progress_bar=False)  # 8 particles x K = 5: 10 windows
    assert agent.config.learning_rate == LinearDecay(0.01, 0.001, 10)
    assert agent.learning_rate == pytest.approx(0.001)
    agent.learn(400, progress_bar=False)  # later calls keep the length
    assert agent.config.learning_rate.steps == 10


def test_load_restores_the_saved_settings_not_todays_preset(tmp_path, monkeypatch):
    agent = PES(env="Pendulum-v1", num_particles=4, truncation_length=10)
    agent.save(tmp_path / "agent.pkl")
    agent.close()
    changed = {**presets._GENERIC, "sigma": 0.5, "env_kwargs": {"g": 5.0}}
    monkeypatch.setattr(presets, "_GENERIC", changed)
    loaded = PES.load(tmp_path / "agent.pkl")
    assert loaded.config == agent.config
    assert dataclasses.asdict(loaded.config)["preset"] == "generic"
    loaded.close()
