"""Per-environment defaults for the CLI, tuned on a 2-core CPU.

Keys are environment aliases; each maps to settings shared by all algorithms
plus per-algorithm overrides.

Swimmer (NRES unless --algo says otherwise): the PES paper's particles,
K and sigma (10 antithetic pairs, K = 100, sigma 0.3, std shaping), with
NRES, SGD 0.1 -> 0.005 and sigma -> 0.05 over 300k env steps: first
evaluation >= 325 (the ARS paper's threshold) within 100k env steps and
final returns 351.5-355.9 on seeds 0-4
(docs/results/swimmer-time-to-350.md). PES at that step stalls on 4 of 5
seeds (222-244, or the slow gait), so PES, truncated ES and FullES keep the
earlier Adam preset: sigma 0.3 -> 0.1, Adam 0.03 -> 0.002 over 600k steps
(PES ends at 349.9-356.9 on seeds 0-4).
"""

from typing import Any

_SWIMMER_ADAM = {
    "sigma_final": 0.1,
    "learning_rate": 0.03,
    "learning_rate_final": 0.002,
    "optimizer": "adam",
    "total_steps": 600_000,
    "eval_every": 50_000,
}
PRESETS: dict[str, dict[str, Any]] = {
    "swimmer": {
        "algo": "nres",
        "common": {
            "num_particles": 20,
            "truncation_length": 100,
            "sigma": 0.3,
            "fitness_shaping": "std",
        },
        "nres": {
            "sigma_final": 0.05,
            "learning_rate": 0.1,
            "learning_rate_final": 0.005,
            "optimizer": "sgd",
            "total_steps": 300_000,
            "eval_every": 15_000,
        },
        "pes": _SWIMMER_ADAM,
        "tes": _SWIMMER_ADAM,
        # One update per episode: FullES needs larger steps to move at all.
        "es": {**_SWIMMER_ADAM, "learning_rate": 0.1, "learning_rate_final": 0.01},
    },
    # HalfCheetah. `python experiments/halfcheetah_nres.py --sweep` (seed 100,
    # 1M env steps per setting, mean return over the last 20 % of steps): the
    # numpy-loop setting (16 pairs, K = 100, sigma 0.03, SGD lr 0.02, std
    # shaping, obs norm) never learns here, about -600 for PES and NRES, also
    # with N = 64, sigma 0.05 or the lr decaying to 0.002: as g = sum xi R /
    # (N sigma^2), an SGD step of 0.02 moves each weight by about ten sigmas,
    # mostly noise. SGD 0.001 reaches 1,580; Adam, whose steps are about lr
    # whatever the scale of g, does best at a constant step: PES 2,030 at 0.01
    # (1,470 at 0.005, 690 at 0.02), NRES 2,900 at 0.005 (1,040 at 0.01),
    # FullES 1,890 at 0.03 (820 at 0.01, -50 at 0.1).
    # Over 2M steps a constant step oscillates between about -300 and 1,400
    # (seeds 0 to 2; Adam 0.01 or SGD). Decaying the step stabilises it: seed 0
    # ends at 2,240 with 16 pairs and 2,890 with 32 pairs (Adam 0.01 -> 0.001),
    # 3,870 but noisier with SGD 6e-4 -> 1e-4; decaying sigma as well ends
    # lower (1,300). FullES gets one update per 64k steps, so it takes larger
    # steps.
    # At 10M env steps (docs/results/halfcheetah.md), NRES ends above the ARS
    # linear-policy threshold of 3,430 on seeds 0-2 (3,938 / 5,449 / 3,636),
    # PES and FullES on at most one seed: NRES is the preset's algorithm.
    "halfcheetah": {
        "algo": "nres",
        "common": {
            "num_particles": 64,
            "truncation_length": 100,
            "sigma": 0.03,
            "learning_rate": 0.01,
            "learning_rate_final": 0.001,
            "optimizer": "adam",
            "fitness_shaping": "std",
            "obs_norm": True,
            "total_steps": 10_000_000,
            "eval_every": 500_000,
        },
        "es": {"learning_rate": 0.03, "learning_rate_final": 0.003},
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
# Problems (python -m pes_rl.train --problem NAME). The learning-rate toy
# takes the PES paper's settings (toy_regression.py: 50 pairs, K = 10, sigma
# 0.3, Adam 0.01), influence balancing experiments/influence_balancing.py's.
PRESETS["lr_schedule_toy"] = {
    "common": {
        "num_particles": 100,
        "truncation_length": 10,
        "sigma": 0.3,
        "learning_rate": 0.01,
        "optimizer": "adam",
        "total_steps": 2_000_000,
        "eval_every": 100_000,
    }
}
PRESETS["influence_balancing"] = {
    "common": {
        "num_particles": 100,
        "truncation_length": 1,
        "sigma": 0.1,
        "learning_rate": 2e-4,
        "optimizer": "sgd",
        "total_steps": 300_000,
        "eval_every": 30_000,
    }
}
# The meta-learning problems take their experiments' settings
# (experiments/lr_schedule_digits.py, hyperparams_digits.py,
# learned_optimizer.py: pairs in lockstep, as the PES paper, Adam's step
# decaying tenfold), with a budget of 3, 20 and 20 inner runs per particle.
PRESETS["lr_schedule_digits"] = {
    "common": {
        "num_particles": 8,
        "truncation_length": 10,
        "sigma": 0.1,
        "learning_rate": 0.05,
        "learning_rate_final": 0.005,
        "optimizer": "adam",
        "stagger": False,
        "total_steps": 120_000,
        "eval_every": 20_000,
    }
}
PRESETS["lr_schedule_digits_val_accuracy"] = PRESETS["lr_schedule_digits"]
PRESETS["hyperparams_digits"] = {
    "common": {
        "num_particles": 10,
        "truncation_length": 10,
        "sigma": 0.3,
        "learning_rate": 0.03,
        "learning_rate_final": 0.003,
        "optimizer": "adam",
        "stagger": False,
        "total_steps": 200_000,
        "eval_every": 20_000,
    }
}
# learned_optimizer: with the problem's defaults (log step ln 1e-3 + 10
# theta, MLP outputs damped by 0.1, a new task every run, training loss).
PRESETS["learned_optimizer"] = {
    "common": {
        "num_particles": 16,
        "truncation_length": 10,
        "sigma": 0.01,
        "learning_rate": 0.002,
        "learning_rate_final": 0.0002,
        "optimizer": "adam",
        "stagger": False,
        "total_steps": 320_000,
        "eval_every": 32_000,
    }
}
# Discrete actions (an argmax over one output per action), on the Gymnasium
# ids. From a sweep of 3 seeds each (PES, linear policy, obs norm, centred
# ranks, Adam 0.05 -> 0.005): CartPole-v1 reaches 500 at the first
# evaluation (25k steps) on every seed; Acrobot-v1 climbs from -500 to about
# -80 within 150k steps, with sigma 0.1 or 0.3.
_DISCRETE = {
    "num_particles": 20,
    "truncation_length": 100,
    "sigma": 0.1,
    "learning_rate": 0.05,
    "learning_rate_final": 0.005,
    "optimizer": "adam",
    "fitness_shaping": "centered_ranks",
    "obs_norm": True,
}
PRESETS["CartPole-v1"] = {
    "common": {**_DISCRETE, "total_steps": 100_000, "eval_every": 10_000}
}
PRESETS["Acrobot-v1"] = {
    "common": {**_DISCRETE, "total_steps": 300_000, "eval_every": 30_000}
}
# The memory task (pes_rl/envs/memory.py) needs a recurrent policy; its settings
# are experiments/memory_task.py's.
PRESETS["cue_memory"] = {
    "common": {
        "policy": "gru",
        "recurrent_size": 8,
        "num_particles": 20,
        "truncation_length": 5,
        "sigma": 0.1,
        "learning_rate": 0.05,
        "learning_rate_final": 0.005,
        "optimizer": "adam",
        "total_steps": 100_000,
        "eval_every": 10_000,
    }
}
# Hopper, Walker2d and Ant: HalfCheetah's settings with NRES, 3M env steps
# and the survival bonus (1 per step in all three) taken out of the training
# reward, as the ARS paper does: otherwise standing still earns 1,000 per
# episode, where PES on the HalfCheetah copy stayed (Hopper 1,006 at 2M).
# Results per seed: docs/results/presets-ars.md.
for _name in ("hopper", "walker2d", "ant"):
    PRESETS[_name] = {
        "algo": "nres",
        "common": {
            **PRESETS["halfcheetah"]["common"],
            "reward_shift": 1.0,
            "total_steps": 3_000_000,
            "eval_every": 250_000,
        },
    }
# Ant: with HalfCheetah's step (Adam 0.01) every variant tried (the bonus
# removed or kept, with or without the 84 contact-force observations) learned
# within 250k steps to end its episodes early, about -30, where the zero
# policy stands for 996. A tenfold smaller step with the bonus kept stays
# standing; it does not learn to walk in 3M steps either (docs/results/presets-ars.md).
PRESETS["ant"]["common"].update(
    reward_shift=0.0,
    learning_rate=0.001,
    learning_rate_final=0.0001,
    # Ant-v4's observations: without the contact forces, zero most of the time.
    env_kwargs={"include_cfrc_ext_in_observation": False},
)


# Generic defaults, for any environment without a named preset. Scale-free:
# centred ranks make the update independent of the reward's scale, Adam makes
# the step about lr per weight whatever the size of g, and obs-norm puts every
# observation on unit scale, so sigma and lr are in units of normalised
# observations. The learning rate decays tenfold over the run so that the
# policy settles instead of wandering at the end.
# `python experiments/generic_defaults.py --study` chose the values
# (docs/guides/presets.md, "Generic defaults").
GENERIC = "generic"
_GENERIC = {
    "num_particles": 32,
    "truncation_length": 100,
    "sigma": 0.05,
    "learning_rate": 0.01,
    "learning_rate_final": 0.001,
    "optimizer": "adam",
    "fitness_shaping": "centered_ranks",
}


def generic_budget(num_particles: int, window: int) -> int:
    """Env steps of the generic defaults: about 300 updates of N particles x
    K steps (K at most the horizon), rounded up to 100k; so 1M for
    1000-step MuJoCo tasks with 32 particles, and 500k, not 2M, for Reacher's
    50-step episodes. Every algorithm gets the same budget."""
    return -(-300 * num_particles * window // 100_000) * 100_000


def preset_algo(name: str | None) -> str:
    """The algorithm a preset was measured with, which ``--algo`` defaults to."""
    return PRESETS.get(name, {}).get("algo", "pes")


def preset_for(name: str, algo: str, problem: bool = False) -> dict[str, Any]:
    """The settings of preset ``name`` for ``algo`` (and the algorithm it
    names, if any); the generic ones normalise the observations of envs,
    not of Problems (their budget is ``generic_budget``, which needs the
    horizon)."""
    if name == GENERIC:
        return {**_GENERIC, "obs_norm": not problem}
    preset = PRESETS.get(name, {})
    chosen = {"algo": preset["algo"]} if "algo" in preset else {}
    return {**chosen, **preset.get("common", {}), **preset.get(algo, {})}
