"""Per-environment defaults for the CLI, tuned on a 2-core CPU.

Keys are environment aliases; each maps to agent settings shared by all
algorithms plus per-algorithm overrides. The Swimmer settings follow the PES
paper (10 antithetic pairs, K = 100, SGD on window returns divided by their
standard deviation; PES sigma 0.3, lr 0.1; TES sigma 0.1; FullES K = T,
lr 0.3).
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "swimmer": {
        "common": {
            "num_particles": 20,
            "truncation_length": 100,
            "sigma": 0.3,
            "learning_rate": 0.1,
            "optimizer": "sgd",
            "fitness_shaping": "std",
            "total_steps": 500_000,
            "eval_every": 50_000,
        },
        "tes": {"sigma": 0.1},
        "es": {"learning_rate": 0.3},
    },
    "halfcheetah": {
        "common": {
            "num_particles": 32,
            "truncation_length": 100,
            "sigma": 0.03,
            "learning_rate": 0.02,
            "fitness_shaping": "std",
            "obs_norm": True,
            "total_steps": 2_000_000,
            "eval_every": 100_000,
        },
    },
    "linear_quadratic": {
        "common": {
            "num_particles": 20,
            "truncation_length": 5,
            "sigma": 0.1,
            "learning_rate": 0.005,
            "fitness_shaping": "std",
            "total_steps": 20_000,
            "eval_every": 2_000,
        },
    },
}
for _name in ("hopper", "walker2d", "ant"):
    PRESETS[_name] = {"common": dict(PRESETS["halfcheetah"]["common"])}


def preset_for(env: str, algo: str) -> dict[str, Any]:
    preset = PRESETS.get(env, {})
    return {**preset.get("common", {}), **preset.get(algo, {})}
