"""The agent's settings are declared once (``AgentConfig``): the agents'
keywords, the command line's config, its flags and its ``--help`` come from
those fields, and ``TrainConfig.validate`` holds the command line's rules."""

import dataclasses
import inspect

import pytest

from pes_rl.agents import PES, TruncatedES
from pes_rl.cli.flags import TrainConfig, _parser, parse_config
from pes_rl.cli.train import run
from pes_rl.core.config import PRESET_KEYS, AgentConfig, field_docs
from pes_rl.errors import ConfigError


def test_the_agent_keywords_are_the_config_fields():
    agent = [f.name for f in dataclasses.fields(AgentConfig)]
    assert list(inspect.signature(PES).parameters) == agent
    parameters = inspect.signature(TruncatedES).parameters
    assert all(parameters[name].default is None for name in PRESET_KEYS)
    assert parameters["preset"].default == "auto"
    with pytest.raises(TypeError, match="unexpected keyword argument 'sigmaa'"):
        PES(env="linear_quadratic", sigmaa=0.1)


def test_the_command_line_config_extends_the_agent_config():
    assert issubclass(TrainConfig, AgentConfig)
    agent_fields = {f.name for f in dataclasses.fields(AgentConfig)}
    own = set(TrainConfig.__annotations__) - agent_fields
    assert len(own) == 17  # the run's settings; the agent's are inherited
    # One docstring per setting, the command line's where its meaning differs.
    docs = field_docs(TrainConfig)
    assert docs["sigma"] == field_docs(AgentConfig)["sigma"]
    assert docs["workers"].startswith("ray: run whole pairs")


def test_flags_and_help_come_from_the_fields(capsys):
    parser = _parser({}, "the defaults")
    flags = {a.dest: a.option_strings for a in parser._actions if a.dest != "help"}
    flagged = {
        f.name
        for f in dataclasses.fields(TrainConfig)
        if f.metadata.get("flag", True) is not False
    }
    assert set(flags) == flagged
    assert flags["num_devices"] == ["--devices"]  # the flag keeps its name
    assert "policy_bias" not in flags and "env_kwargs" not in flags
    config = parse_config(["--env", "linear_quadratic", "--sigma", "0.25"])
    assert config.sigma == 0.25 and isinstance(config.sigma, float)
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Standard deviation of the parameter perturbations" in out


def test_one_validate_refuses_what_no_run_can_use(tmp_path):
    # An agent setting is refused as the flags are read, before any agent.
    with pytest.raises(ConfigError, match="num_particles must be even"):
        parse_config(["--env", "linear_quadratic", "--num-particles", "3"])
    # A config built in Python goes through the same rules in run().
    bad = TrainConfig(env="linear_quadratic", algo="x", run_dir=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="unknown algorithm 'x'"):
        run(bad)
    bad = dataclasses.replace(bad, algo="pes", sigma=-1.0)
    with pytest.raises(ConfigError, match="sigma must be a positive number"):
        run(bad)
    assert not (tmp_path / "r").exists()
