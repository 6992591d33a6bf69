"""agents/ and envs/ install as pes_rl.agents and pes_rl.envs, and nothing
imports the bare names (they must not land in site-packages)."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_subpackages_import_under_pes_rl():
    agents = importlib.import_module("pes_rl.agents")
    envs = importlib.import_module("pes_rl.envs")
    assert {"PES", "NRES", "TruncatedES", "FullES"} <= set(dir(agents))
    assert callable(envs.register)


def test_no_file_imports_the_bare_names():
    bare = re.compile(r"^\s*(import|from)\s+(agents|envs)(\.|\s|$)", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if not any(
            part.startswith(".") or part in ("build", "venv") for part in path.parts
        )
        and bare.search(path.read_text())
    ]
    assert offenders == []
