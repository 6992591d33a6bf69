"""Per-environment defaults for the CLI, tuned on a 2-core CPU.

Keys are environment aliases; each maps to settings shared by all algorithms
plus per-algorithm overrides.

Swimmer: the PES paper's settings (10 antithetic pairs, K = 100, sigma 0.3,
SGD lr 0.1 on window returns divided by their std) reach 350 within about
300k env steps but then wander between about 335 and 358 for the rest of the
run, so a run's final return lands below 350 for some seeds. The preset keeps
the paper's particles, K = 100, sigma 0.3 and std shaping for exploration,
and settles at the end: Adam, sigma decaying to 0.1 and the learning rate
from 0.03 to 0.002 over 600k steps (final returns 352-357 on seeds 0-9).
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "swimmer": {
        "common": {
            "num_particles": 20,
            "truncation_length": 100,
            "sigma": 0.3,
            "sigma_final": 0.1,
            "learning_rate": 0.03,
            "learning_rate_final": 0.002,
            "optimizer": "adam",
            "fitness_shaping": "std",
            "total_steps": 600_000,
            "eval_every": 50_000,
        },
        # One update per episode: FullES needs larger steps to move at all.
        "es": {"learning_rate": 0.1, "learning_rate_final": 0.01},
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
