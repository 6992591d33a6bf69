"""The command line's rules: which flag combinations are errors, which are
legal but surprising (a ``warning:`` line), and which flags a resumed run
may change."""

import json
from pathlib import Path
from typing import Any

from pes_rl.agents.defaults import preset_name
from pes_rl.agents.presets import GENERIC, preset_for
from pes_rl.core import algorithms
from pes_rl.core.config import BACKENDS, MAX_COUNT, expected_windows, flag_name
from pes_rl.errors import ConfigError


def surprises(config, warm_up_steps: int, horizon: int | None = None) -> list[str]:
    """Legal but surprising settings, worth a ``warning:`` line once the
    run is known to be valid (``horizon``: the run's T, when known)."""
    name = config.preset
    preset = preset_for(name, config.algo) if name else {}
    owner = "generic defaults'" if name == GENERIC else f"{name} preset's"
    lines = []
    if config.optimizer == "sgd" and config.fitness_shaping == "none":
        own = name not in (None, GENERIC) and name == preset_name(
            config.problem or config.env
        )
        measured = own and (
            preset.get("optimizer", "sgd"),
            preset.get("fitness_shaping", "none"),
        ) == ("sgd", "none")
        if not measured:
            lines.append(
                f"--optimizer sgd with --fitness-shaping none steps by lr x "
                "sum(eps R) / (N sigma^2), in proportion to the reward's scale, "
                f"which no preset has measured here: lr {config.learning_rate} may "
                "throw the policy many sigmas per update (returns collapse) or "
                "barely move it; --fitness-shaping centered_ranks or --optimizer "
                "adam make the step independent of the reward's scale"
            )
    for key in ("sigma", "learning_rate"):
        final = f"{key}_final"
        if final in preset and getattr(config, final) is None:
            flag = "--" + key.replace("_", "-")
            lines.append(
                f"{flag} {getattr(config, key)} replaces the {owner} "
                f"decay {preset[key]} -> {preset[final]} with a constant; add "
                f"{flag}-final to decay it"
            )
    if warm_up_steps >= config.total_steps:
        lines.append(
            f"the staggered warm-up alone takes {warm_up_steps} env steps, more "
            f"than --total-steps {config.total_steps}; the run will take it and "
            "one update (--no-stagger avoids it)"
        )
    elif horizon is not None:
        algorithm = algorithms.get(config.algo)
        envs = algorithm.num_envs(config.num_particles)
        window = algorithm.window(config.truncation_length, horizon)
        updates = expected_windows(config.total_steps, envs, window)
        if updates < 20 and config.total_steps != preset.get("total_steps"):
            lines.append(
                f"--total-steps {config.total_steps} buys about {updates} updates "
                f"of {envs * window} env steps each: too few for ES to move "
                "far; raise --total-steps"
            )
    return lines


MAX_INT64 = 2**63 - 1  # counters and seeds are 64-bit integers


def check_values(config, resume: bool = False) -> None:
    """The run's values no run can use, whatever the other flags (part of
    ``TrainConfig.validate``). A resumed run's
    horizon is the one it resolved, whatever its budget."""
    counts = (
        "total_steps eval_every eval_episodes checkpoint_every_updates "
        "updates_per_call num_devices num_processes"
    )
    for name in counts.split():
        value = getattr(config, name)
        if value is not None and not 0 < value <= MAX_INT64:
            raise ConfigError(
                f"{flag_name(name)} must be a positive 64-bit integer, got {value}"
            )
    seconds = config.checkpoint_every_seconds
    if seconds is not None and not seconds > 0:  # nan too
        raise ConfigError(
            f"--checkpoint-every-seconds must be a positive number, got {seconds}"
        )
    long = config.horizon is not None and config.horizon > config.total_steps
    if long and not resume:
        raise ConfigError(
            f"--horizon {config.horizon} is longer than --total-steps "
            f"{config.total_steps}: every evaluation episode would outlast "
            "the whole training run"
        )
    whole_episodes = algorithms.get(config.algo).whole_episodes
    window = config.horizon if whole_episodes else None
    per_update = config.num_particles * (window or config.truncation_length)
    if per_update > 0 and config.total_steps // per_update > MAX_COUNT:
        raise ConfigError(
            f"--total-steps {config.total_steps} buys at least "
            f"{config.total_steps // per_update} updates, more than JAX's int32 "
            f"counters hold ({MAX_COUNT})"
        )


def check_combinations(config, given: dict[str, Any]) -> None:
    """Flags that cannot take effect with the others are errors."""
    if config.problem is not None:
        env_only = (
            "env policy hidden_sizes recurrent_size backend brax_physics "
            "async_envs horizon "
            "workers num_workers ray_address"
        )
        for name in env_only.split():
            if name in given:
                raise ConfigError(f"{flag_name(name)} does not apply to --problem")
        return
    if "hidden_sizes" in given and config.policy != "mlp":
        raise ConfigError("--hidden-sizes needs --policy mlp")
    if "recurrent_size" in given and config.policy not in ("gru", "lstm"):
        raise ConfigError("--recurrent-size needs --policy gru or lstm")
    algorithm = algorithms.get(config.algo)
    if algorithm.whole_episodes and "truncation_length" in given:
        raise ConfigError(
            f"--truncation-length does not apply to --algo {config.algo} (K = T)"
        )
    if not algorithm.persistent and "stagger" in given:
        raise ConfigError(f"--stagger does not apply to --algo {config.algo}")
    from pes_rl.agents.tasks import resolve_backend
    from pes_rl.envs.registry import is_playground

    if is_playground(config.env) and "backend" in given:
        raise ConfigError(
            "--backend does not apply to Playground envs: they run jitted"
        )
    brax = resolve_backend(config.backend) == "brax" or is_playground(config.env)
    jitted_only = "brax_physics updates_per_call num_devices coordinator_address"
    for name in [*jitted_only.split(), "num_processes", "process_id"]:
        if name in given and not brax:
            flag = flag_name(name)
            raise ConfigError(
                f"{flag} applies to the brax backend only; add --backend brax"
            )
    for name in ("async_envs", "workers", "num_workers", "ray_address"):
        if name in given and brax:
            raise ConfigError(
                f"{flag_name(name)} applies to the gymnasium backend only"
            )
    if "ray_address" in given and config.workers != "ray":
        raise ConfigError("--ray-address needs --workers ray")
    if config.workers == "ray":
        from pes_rl.envs.backends.ray_cluster import import_ray

        import_ray()  # before anything is written: a missing extra is named


# Flags a resumed run may change (they do not change what an update
# computes); any other flag must match the run's config.
RESUMABLE = (
    "total_steps",
    "progress",
    "resume",
    "async_envs",
    "workers",
    "num_workers",
    "ray_address",
    "num_devices",
    "updates_per_call",
    "checkpoint_every_updates",
    "checkpoint_every_seconds",
    "coordinator_address",
    "num_processes",
    "process_id",
    "wandb",
    "wandb_project",
)


def resume_values(
    run_dir: str, given: dict[str, Any], defaults: dict[str, Any]
) -> dict:
    """The config of ``run_dir`` with the allowed flags of ``given``
    applied; a flag that contradicts the run is refused. ``defaults`` (by
    field name) stand in for settings older runs did not record."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} cannot be read ({err})") from None
    values = {k: v for k, v in stored.items() if k in defaults}
    values["hidden_sizes"] = tuple(values.get("hidden_sizes", ()))
    if values.get("backend") not in BACKENDS:  # "jax": a Problem's engine
        values.pop("backend", None)
    for name, value in given.items():
        if name in RESUMABLE or name not in defaults:
            continue
        if name == "backend" and value == "auto":
            continue
        if name == "run_dir" and Path(value).resolve() == Path(run_dir).resolve():
            continue
        if name == "truncation_length":  # stored as the agent resolved it
            horizon = values.get("horizon") or value
            algorithm = algorithms.get(values.get("algo", "pes"))
            value = algorithm.window(value, horizon)
        used = values.get(name, defaults[name])
        if used != value:
            raise ConfigError(
                f"cannot resume with {flag_name(name)} {value}: the run used {used}"
            )
    for name in RESUMABLE:
        if name in given and name in defaults:
            values[name] = given[name]
    values["run_dir"] = values["resume"] = str(run_dir)
    return values
