"""The Python API and the command line train the same agent on an env without
a preset (two Pendulum agents learn: in e2e for time)."""

import numpy as np

from pes_rl.agents import ALGORITHMS, PES
from pes_rl.agents.defaults import PRESET_KEYS
from pes_rl.cli.flags import parse_config
from pes_rl.core.schedules import LinearDecay


def test_an_env_without_a_preset_gets_the_generic_defaults_as_on_the_cli():
    # Pendulum-v1 has no preset: 32 particles x K = 100 buy 2 windows.
    budget = 2 * 32 * 100
    cli = parse_config(["--env", "Pendulum-v1", "--total-steps", str(budget)])
    cli_agent = ALGORITHMS[cli.algo](**cli.agent_kwargs())
    api_agent = PES(env="Pendulum-v1")
    assert api_agent.config.preset == "generic"
    assert api_agent.config.learning_rate == LinearDecay(0.01, 0.001)  # unsized
    try:
        cli_agent.learn(budget, progress_bar=False)
        api_agent.learn(budget, progress_bar=False)
        for key in PRESET_KEYS:
            assert getattr(api_agent.config, key) == getattr(cli_agent.config, key)
        assert api_agent.config.learning_rate == LinearDecay(0.01, 0.001, 2)
        np.testing.assert_array_equal(api_agent.theta, cli_agent.theta)
    finally:
        cli_agent.close(), api_agent.close()
