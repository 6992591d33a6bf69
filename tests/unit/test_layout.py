"""agents/ and envs/ install as pes_rl.agents and pes_rl.envs, and nothing
imports the bare names (they must not land in site-packages)."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


# The layers, bottom up: the core (estimators, training state and update,
# problems, policies, normalisation, checkpoints, callbacks, config), the
# backends (pes_rl.envs), the agents and their loops (pes_rl.agents), and the
# command-line modules on top. A layer imports only layers below it.
CLI = {"pes_rl.train", "pes_rl.cli_config", "pes_rl.cli_rules", "pes_rl.evaluate"}
PACKAGE_DIRS = {"pes_rl": "pes_rl", "agents": "pes_rl.agents", "envs": "pes_rl.envs"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = PACKAGE_DIRS[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(name: str) -> int:
    if name in CLI:
        return 3
    if name.startswith("pes_rl.agents"):
        return 2
    if name.startswith("pes_rl.envs"):
        return 1
    return 0


def imports(path: Path, module_level_only: bool) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("pes_rl")}


def library_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for folder in PACKAGE_DIRS
        for path in (ROOT / folder).rglob("*.py")
    }


def test_each_layer_imports_only_the_layers_below():
    modules = library_modules()
    offenders = []
    for name, path in modules.items():
        # The core may not reach up even from inside a function.
        targets = imports(path, module_level_only=layer(name) > 0)
        offenders += [
            f"{name} -> {target}"
            for target in targets
            if target in modules and layer(target) > layer(name)
        ]
    assert offenders == []


def test_no_import_cycles_at_module_level():
    modules = library_modules()
    graph = {
        name: {t for t in imports(path, True) if t in modules and t != name}
        for name, path in modules.items()
    }
    # A package imports its own modules (pes_rl.agents -> .es_agent): its
    # modules importing the package back is no cycle of files.
    done, active, cycles = set(), [], []

    def visit(name):
        if name in active:
            cycles.append(active[active.index(name) :] + [name])
            return
        if name in done:
            return
        active.append(name)
        for target in graph[name]:
            visit(target)
        active.pop()
        done.add(name)

    for name in graph:
        visit(name)
    assert cycles == []
