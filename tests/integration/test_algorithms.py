"""An algorithm is one object (``pes_rl.core.algorithms``): the agents, the
builder and the command line read it, so registering one is all it takes
to train it from Python and from the command line."""

import ast
from pathlib import Path

import numpy as np
import pytest

from pes_rl.agents import ALGORITHMS, PES, ESAgent, FullES, TruncatedES, agent_class
from pes_rl.cli.flags import parse_config
from pes_rl.core import algorithms, estimators
from pes_rl.core.algorithms import Algorithm
from pes_rl.errors import ConfigError
from pes_rl.problems.toys import LinearQuadratic

TINY = dict(num_particles=4, truncation_length=5, seed=3, preset=None)


def test_the_agents_and_their_lookups_read_the_registry():
    assert list(ALGORITHMS) == list(algorithms.REGISTRY) == ["pes", "nres", "tes", "es"]
    assert agent_class("tes") is ALGORITHMS["tes"] is TruncatedES
    assert agent_class("FullES") is FullES  # the name checkpoints record
    assert TruncatedES.algorithm.num_envs(20) == 21  # the particle moved by theta
    assert FullES.algorithm.window(100, 1000) == 1000  # K = T
    assert PES.algorithm.window(100, 30) == 30
    with pytest.raises(ConfigError, match="unknown algorithm 'x': use one of pes"):
        agent_class("x")
    with pytest.raises(TypeError, match="runs no algorithm"):
        ESAgent(env="linear_quadratic")


def test_the_algorithm_table_imports_no_environment_code():
    source = Path(algorithms.__file__).read_text()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    assert found <= {
        "collections.abc",
        "dataclasses",
        "typing",
        "pes_rl.core",
        "pes_rl.errors",
    }, found


@pytest.fixture
def toy_algorithms(monkeypatch):
    """Two variants registered for one test: PES under another name, and
    PES's estimator on whole episodes (its window start alone differs)."""
    monkeypatch.setattr(algorithms, "REGISTRY", dict(algorithms.REGISTRY))
    copy = algorithms.register(
        Algorithm("pes2", "PESAgain", "PES2", "PES again", estimators.pes, "persistent")
    )
    episodes = algorithms.register(
        Algorithm("pes_ep", "PESEpisodes", "PESep", "PES", estimators.pes, "reset")
    )
    return copy, episodes


def test_a_registered_algorithm_trains_with_no_other_change(toy_algorithms, tmp_path):
    problem = LinearQuadratic()
    toy = agent_class("pes2")(problem=problem, **TINY)
    ours = PES(problem=problem, **TINY)
    toy.learn(200, progress_bar=False)
    ours.learn(200, progress_bar=False)
    # The same estimator and window start: the same numbers as PES.
    np.testing.assert_array_equal(np.asarray(toy.theta), np.asarray(ours.theta))
    assert type(toy).__name__ == "PESAgain" and agent_class("PESAgain") is type(toy)
    toy.save(tmp_path / "toy.ckpt")
    loaded = ESAgent.load(tmp_path / "toy.ckpt", problem=problem)
    assert type(loaded) is type(toy)
    np.testing.assert_array_equal(np.asarray(loaded.theta), np.asarray(toy.theta))

    # The window start alone decides K = T: the builder reads it.
    whole = agent_class("pes_ep")(problem=problem, **TINY)
    assert whole.truncation_length == problem.horizon != ours.truncation_length


def test_the_command_line_knows_a_registered_algorithm(toy_algorithms, capsys):
    config = parse_config(["--problem", "linear_quadratic", "--algo", "pes2"])
    assert config.algo == "pes2"
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    assert "pes_ep (PES)" in " ".join(capsys.readouterr().out.split())
    # Its rules follow from its window start: whole episodes have no K.
    with pytest.raises(ConfigError, match="does not apply to --algo pes_ep"):
        parse_config(
            ["--env", "swimmer", "--algo", "pes_ep", "--truncation-length", "5"]
        )
    with pytest.raises(ConfigError, match="--stagger does not apply"):
        parse_config(["--env", "swimmer", "--algo", "pes_ep", "--stagger"])
