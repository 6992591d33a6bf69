"""``pes_rl.agents.loop.Loop`` names every member of ``agent.loop`` the
agent uses, and both loops have them all."""

import ast
from pathlib import Path

import pytest

from pes_rl.agents import PES
from pes_rl.agents.loop import Loop
from pes_rl.problems.toys import LinearQuadratic

AGENTS = Path(__file__).resolve().parents[2] / "pes_rl" / "agents"


def _protocol_members() -> set[str]:
    return {
        name
        for name in (*vars(Loop), *Loop.__annotations__)
        if not name.startswith("_")
    }


def _loop_members_used(path: Path) -> set[str]:
    """Names read as ``self.loop.NAME`` or ``agent.loop.NAME``."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "loop"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id in ("self", "agent")
    }


def test_the_protocol_names_every_member_the_agent_uses():
    used = set().union(*map(_loop_members_used, AGENTS.glob("*.py")))
    assert len(used) >= 15  # the scan finds them
    assert used <= _protocol_members(), used - _protocol_members()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"problem": LinearQuadratic()},  # the jitted engine
        {"env": "linear_quadratic", "backend": "gymnasium"},  # the host loop
    ],
)
def test_both_loops_have_every_member(kwargs):
    agent = PES(**kwargs, num_particles=4, seed=0)
    try:
        missing = {m for m in _protocol_members() if not hasattr(agent.loop, m)}
        assert missing == set()
        assert isinstance(agent.loop, Loop)
    finally:
        agent.close()
