"""The folders are the layers: each imports only the layers below it, the
core stays pure JAX, and every module sits in a layer."""

import ast
import importlib
import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pes_rl"

# Bottom up. The core (pure JAX: estimators, algorithms, the update, window
# rules, settings); Problems, envs and run files on it; the agents and their
# loops; the command line and its `python -m` entry points on top.
LAYERS = {
    "pes_rl.errors": 0,
    "pes_rl.core": 1,
    "pes_rl.problems": 2,
    "pes_rl.envs": 2,
    "pes_rl.runs": 2,
    "pes_rl.agents": 3,
    "pes_rl.cli": 4,
    "pes_rl.train": 4,
    "pes_rl.evaluate": 4,
    "pes_rl.plot": 4,
}
# What the core may not import: environments, clusters and files.
NOT_IN_CORE = {
    "gymnasium",
    "brax",
    "mujoco",
    "mujoco_playground",
    "ray",
    "pathlib",
    "pickle",
    "shutil",
    "tempfile",
    "io",
    "os",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(name: str) -> int | None:
    for prefix, level in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return level
    return None


def test_public_names_import():
    agents = importlib.import_module("pes_rl.agents")
    envs = importlib.import_module("pes_rl.envs")
    assert {"PES", "NRES", "TruncatedES", "FullES"} <= set(dir(agents))
    assert callable(envs.register)
    for entry in ("train", "evaluate", "plot"):
        assert callable(importlib.import_module(f"pes_rl.{entry}").main)


def test_every_module_sits_in_a_layer():
    assert [name for name in library_modules() if layer(name) is None] == []


def test_the_core_imports_no_envs_clusters_or_files():
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                tops = {node.module.split(".")[0]}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                tops = {"open"}
            else:
                continue
            offenders += [
                f"{path.name}: {top}" for top in tops & (NOT_IN_CORE | {"open"})
            ]
    assert offenders == []


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
    """Every module but the package's own (empty) ``__init__``."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: path for name, path in modules.items() if name != "pes_rl"}


def test_each_layer_imports_only_the_layers_below():
    modules = library_modules()
    offenders = []
    for name, path in modules.items():
        # The core may not reach up even from inside a function.
        targets = imports(path, module_level_only=layer(name) > 1)
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


def test_a_checkpoint_naming_the_flat_layouts_modules_still_loads(tmp_path):
    from pes_rl.core.schedules import LinearDecay
    from pes_rl.runs import checkpoints

    # Protocol 2 names classes as "module\nname\n", as the flat layout wrote
    # them before the move.
    payload = {"format": checkpoints.FORMAT, "decay": LinearDecay(1.0, 0.5, 10)}
    old = pickle.dumps(payload, protocol=2).replace(
        b"pes_rl.core.schedules\n", b"pes_rl.schedules\n"
    )
    assert b"pes_rl.schedules\n" in old
    (tmp_path / "old.pkl").write_bytes(old)
    assert checkpoints.read(tmp_path / "old.pkl")["decay"] == payload["decay"]
