"""Labels of run groups, for ``pes_rl.plot``.

Each group is labelled by the smallest set of config keys (``BOOKKEEPING``
in ``pes_rl.cli.run_groups`` aside) that tells the groups apart, found
greedily: the algorithm first when it differs, then the key that separates
most pairs of groups still alike (ties broken by ``LABEL_PRIORITY``), until
every group has its own label. Algorithms are
written by name (PES, NRES, TES, FullES) and long keys abbreviated
(``LABEL_NAMES``: lr, N, K, σ, …); the number of seeds follows in brackets.
"""

import json
import re
from typing import Any

LABEL_NAMES = {
    "learning_rate": "lr",
    "learning_rate_final": "lr_final",
    "num_particles": "N",
    "truncation_length": "K",
    "horizon": "T",
    "sigma": "σ",
    "sigma_final": "σ_final",
    "fitness_shaping": "shaping",
    "hidden_sizes": "hidden",
    "recurrent_size": "units",
    "env_id": "env",
}
# Which key names a group when several tell the same groups apart; keys not
# listed come after these, alphabetically.
LABEL_PRIORITY = (
    "algo",
    "env_id",
    "env",
    "learning_rate",
    "sigma",
    "num_particles",
    "truncation_length",
    "horizon",
    "optimizer",
    "fitness_shaping",
    "policy",
    "hidden_sizes",
    "recurrent_size",
    "obs_norm",
    "learning_rate_final",
    "sigma_final",
    "stagger",
    "backend",
    "brax_physics",
    "env_kwargs",
    "total_steps",
)


def algo_label(name: Any) -> str:
    """An algorithm's name in legends (``TES`` for ``tes``); unknown names
    as they are."""
    # Imported here: plotting stays free of JAX unless a label needs it.
    from pes_rl.core.algorithms import REGISTRY

    found = REGISTRY.get(name) if isinstance(name, str) else None
    return found.label if found is not None else str(name)


def format_value(value: Any) -> str:
    if isinstance(value, list):
        return "x".join(map(str, value)) if value else "[]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_item(key: str, value: Any) -> str:
    if key == "algo":
        return algo_label(value)
    return f"{LABEL_NAMES.get(key, key)}={format_value(value)}"


def label_rank(key: str) -> tuple[int, str]:
    """Where ``key`` comes in a label: as listed in ``LABEL_PRIORITY``, then
    alphabetically."""
    if key in LABEL_PRIORITY:
        return LABEL_PRIORITY.index(key), ""
    return len(LABEL_PRIORITY), key


def distinguishing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The fewest keys (greedily) whose values tell ``configs`` apart, the
    algorithm first when it differs."""
    values = {
        k: [json.dumps(c.get(k), sort_keys=True) for c in configs]
        for k in sorted({k for c in configs for k in c})
    }
    candidates = [k for k, v in values.items() if len(set(v)) > 1]
    candidates.sort(key=label_rank)
    chosen = ["algo"] if "algo" in candidates else []

    def alike_pairs(keys: list[str]) -> int:
        counts: dict[tuple[str, ...], int] = {}
        for i in range(len(configs)):
            signature = tuple(values[k][i] for k in keys)
            counts[signature] = counts.get(signature, 0) + 1
        return sum(n * (n - 1) // 2 for n in counts.values())

    while alike_pairs(chosen) and len(chosen) < len(candidates):
        rest = [k for k in candidates if k not in chosen]
        # min() keeps the first of equals: the higher-priority key.
        chosen.append(min(rest, key=lambda k: alike_pairs([*chosen, k])))
    return sorted(chosen, key=candidates.index)


_RUN_COUNT = re.compile(r" \(\d+ (seeds|runs)\)$")


def base_label(label: str) -> str:
    """A group's label without its " (n seeds)"."""
    return _RUN_COUNT.sub("", label)


def run_count(suffixes: list[str]) -> str:
    """One label's " (n seeds)" over the panels it appears in, a range
    ("2–3 seeds") when they differ."""
    if len(set(suffixes)) == 1:
        return suffixes[0]
    counts = [int(s.split()[0][1:]) if s else 1 for s in suffixes]
    word = "runs" if any(s.endswith("runs)") for s in suffixes) else "seeds"
    return f" ({min(counts)}–{max(counts)} {word})"
