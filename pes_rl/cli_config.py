"""Command-line configuration of ``python -m pes_rl.train``: the run's
config, its flags, presets and resume rules.

Flags given on the command line override the environment's preset (found
by alias, Gymnasium id or Brax name; the generic defaults where it has
none), which overrides the defaults. A flag
that can do nothing with the others is an error; a legal but surprising
combination gets a ``warning:`` line on stderr.
"""

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pes_rl.config import expected_windows, window_length
from pes_rl.envs.registry import ALIASES, default_horizon
from pes_rl.errors import ConfigError
from pes_rl.presets import GENERIC, PRESETS, generic_budget, preset_for
from pes_rl.problems import make as make_problem
from pes_rl.schedules import LinearDecay

ALGOS = ("pes", "nres", "tes", "es")


@dataclass(frozen=True)
class TrainConfig:
    env: str = "swimmer"
    """Alias (swimmer, halfcheetah, hopper, walker2d, ant, linear_quadratic),
    Gymnasium id, or module:EnvId."""
    problem: str | None = None
    """Train a Problem instead of an environment, on the jitted engine: a
    registered name (linear_quadratic, influence_balancing, lr_schedule_toy)
    or module:factory."""
    algo: str = "pes"
    """pes, nres, tes (truncated ES) or es (full-episode ES)."""
    preset: str | None = None
    """Settings to start from: a named preset or generic; by default the
    environment's own preset, else the generic defaults."""
    backend: str = "auto"
    """gymnasium, brax, or auto."""
    total_steps: int = 1_000_000
    """Training env steps (warm-up included; evaluation steps not)."""
    num_particles: int = 20
    """N, even: N/2 antithetic pairs."""
    truncation_length: int = 100
    """K, env steps per window and update."""
    horizon: int | None = None
    """T, episode length; the environment's limit when not given."""
    sigma: float = 0.3
    """Perturbation standard deviation."""
    learning_rate: float = 0.1
    """Optimiser step size."""
    sigma_final: float | None = None
    """If given, sigma decays linearly to this value over the run."""
    learning_rate_final: float | None = None
    """If given, the learning rate decays linearly to this value over the run."""
    optimizer: str = "sgd"
    """sgd or adam."""
    fitness_shaping: str = "none"
    """none, std or centered_ranks."""
    policy: str = "linear"
    """linear or mlp."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer sizes of the mlp policy."""
    obs_norm: bool = False
    """Running observation normalisation."""
    stagger: bool = True
    """Stagger pairs over the horizon."""
    seed: int = 0
    """Random seed."""
    eval_every: int = 50_000
    """Evaluate the mean policy every this many training env steps."""
    eval_episodes: int = 5
    """Episodes per evaluation (the final evaluation uses twice as many)."""
    run_dir: str | None = None
    """Where to write results; runs/ENV-ALGO-seedS-TIME when not given."""
    progress: bool = True
    """Show a progress bar."""
    async_envs: bool = False
    """Step the environments in parallel: in this process and one worker
    process per other CPU core."""
    updates_per_call: int | None = None
    """Brax backend: updates per jitted device call; by default as many as
    fit between two evaluations."""
    brax_physics: str | None = None
    """Brax backend: physics pipeline (generalized, positional, spring, mjx);
    the environment's own default when not given."""
    devices: int | None = None
    """Brax backend: shard particles over this many local devices (default:
    all that JAX sees)."""
    coordinator_address: str | None = None
    """Multi-host (Brax or --problem): HOST:PORT of process 0; with
    --num-processes and --process-id, calls jax.distributed.initialize before
    anything else."""
    num_processes: int | None = None
    """Multi-host: number of processes (one per host)."""
    process_id: int | None = None
    """Multi-host: this process's index; only process 0 writes results."""
    checkpoint_every_updates: int | None = None
    """Also save a checkpoint every this many updates (one is always saved at
    each evaluation and on SIGINT/SIGTERM)."""
    checkpoint_every_seconds: float | None = 300.0
    """Also save a checkpoint every this many seconds."""
    resume: str | None = None
    """Continue the run in this directory from its newest checkpoint."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Not a flag: constructor arguments for the environment."""

    def agent_kwargs(self) -> dict[str, Any]:
        """The agent's arguments: flags mapped to the agent's config, decays
        over the run's budget (``pes_rl.config`` holds the rules)."""
        keys = (
            "backend num_particles truncation_length horizon sigma learning_rate "
            "optimizer fitness_shaping policy hidden_sizes obs_norm stagger seed "
            "brax_physics"
        ).split()
        kwargs = {k: getattr(self, k) for k in keys}
        if self.problem is not None:
            kwargs["problem"] = problem = make_problem(self.problem)
            horizon = problem.horizon
        else:
            kwargs["env"] = self.env
            kwargs["env_kwargs"] = self.env_kwargs or None
            horizon = self.horizon or default_horizon(self.env)
        window = window_length(self.truncation_length, horizon, self.algo == "es")
        envs = self.num_particles + (self.algo == "tes")
        kwargs["num_devices"] = self.devices
        kwargs["updates_per_call"] = self.updates_per_call or max(
            1, self.eval_every // max(1, envs * window)
        )
        # This process steps a block of envs too: one worker per other core.
        kwargs["num_workers"] = (
            max(1, (os.cpu_count() or 2) - 1) if self.async_envs else 0
        )
        windows = expected_windows(self.total_steps, envs, window)
        for name in ("sigma", "learning_rate"):
            final = getattr(self, f"{name}_final")
            if final is not None:
                kwargs[name] = LinearDecay(getattr(self, name), final, windows)
        return kwargs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, exit status 2 (through main), instead of usage + message.
        raise ConfigError(f"{message} (see --help)")


def _parser(preset: dict[str, Any], preset_label: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pes_rl.train",
        description="Train a policy with online evolution strategies. Flags not "
        "given take the environment's preset, or the generic defaults where it "
        "has none (--env ENV --help shows what that environment gets).",
        allow_abbrev=False,
    )
    flag_types = {
        "total_steps": int,
        "num_particles": int,
        "truncation_length": int,
        "horizon": int,
        "sigma": float,
        "learning_rate": float,
        "sigma_final": float,
        "learning_rate_final": float,
        "seed": int,
        "eval_every": int,
        "eval_episodes": int,
        "updates_per_call": int,
        "devices": int,
        "num_processes": int,
        "process_id": int,
        "checkpoint_every_updates": int,
        "checkpoint_every_seconds": float,
    }
    choices = {
        "algo": ALGOS,
        "backend": ("gymnasium", "brax", "auto"),
        "optimizer": ("sgd", "adam"),
        "policy": ("linear", "mlp"),
        "fitness_shaping": ("none", "std", "centered_ranks"),
        "brax_physics": ("generalized", "positional", "spring", "mjx"),
        "preset": (*PRESETS, GENERIC),
    }
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        helptext = _DOCS.get(f.name, "").replace("%", "%%")
        if f.name == "env_kwargs":
            continue
        if f.name == "resume":
            helptext += " Flags that may differ: " + ", ".join(
                "--" + name.replace("_", "-") for name in RESUMABLE if name != "resume"
            )
        if f.name in ("obs_norm", "stagger", "progress", "async_envs"):
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{helptext} (default: {_default(f, preset, preset_label)})",
            )
        elif f.name == "hidden_sizes":
            parser.add_argument(flag, type=int, nargs="+", default=None, help=helptext)
        else:
            parser.add_argument(
                flag,
                type=flag_types.get(f.name, str),
                choices=choices.get(f.name),
                default=None,
                help=f"{helptext} (default: {_default(f, preset, preset_label)})",
            )
    return parser


def _field_docs() -> dict[str, str]:
    """Field docstrings of TrainConfig, read from its source."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(TrainConfig))
    docs, body = {}, tree.body[0].body
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


_DOCS = _field_docs()


def _default(f: dataclasses.Field, preset: dict[str, Any], label: str) -> str:
    if f.name in preset:
        return f"{preset[f.name]}, {label}"
    return str(f.default)


def preset_name(env: str) -> str | None:
    """The preset of ``env``: by its name, or the alias of its Gymnasium id
    or Brax name (``Swimmer-v5`` and ``swimmer`` share one)."""
    if env in PRESETS:
        return env
    return next((a for a, ids in ALIASES.items() if env in ids.values()), None)


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Flags given on the command line override the environment's preset
    (or the generic defaults where it has none), which overrides the
    defaults. A sigma or learning rate given without its
    final value stays constant, whatever decay the preset has. With
    ``--resume DIR`` the run's own config is the base."""
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    first.add_argument("--env", default=TrainConfig.env)
    first.add_argument("--problem")
    first.add_argument("--algo", default=TrainConfig.algo)
    first.add_argument("--preset")
    first.add_argument("--horizon")
    known, _ = first.parse_known_args(argv)
    name = known.preset or preset_name(known.problem or known.env) or GENERIC
    preset, horizon = {}, None
    if name in (*PRESETS, GENERIC):
        preset = preset_for(name, known.algo, problem=known.problem is not None)
    if name == GENERIC:
        horizon = _horizon(known)
        total = _generic_budget(
            preset["num_particles"], preset["truncation_length"], horizon
        )
        preset.update(total_steps=total, eval_every=max(1, total // 20))
    label = "the generic defaults" if name == GENERIC else f"the {name} preset"
    args = vars(_parser({**preset, "preset": name}, label).parse_args(argv))
    given = {k: v for k, v in args.items() if v is not None}
    if "hidden_sizes" in given:
        given["hidden_sizes"] = tuple(given["hidden_sizes"])
    if "resume" in given:
        return resume_config(given["resume"], given)
    for key in ("sigma", "learning_rate"):
        if key in given and f"{key}_final" not in given:
            preset.pop(f"{key}_final", None)  # see surprises()
    config = TrainConfig(**{**preset, **given, "preset": name})
    _check_combinations(config, given)
    if name == GENERIC:  # the budget follows the particles and the window
        total = given.get("total_steps")
        if total is None:
            total = _generic_budget(
                config.num_particles, config.truncation_length, horizon
            )
        every = given.get("eval_every", max(1, total // 20))
        config = dataclasses.replace(config, total_steps=total, eval_every=every)
    return config


def _horizon(known: argparse.Namespace) -> int | None:
    """An env's episode length, known without building it. Not a Problem's:
    its factory is the user's code, which may start JAX before
    ``jax.distributed.initialize``."""
    if known.problem is not None:
        return None
    try:
        horizon = int(known.horizon) if known.horizon else None
    except ValueError:
        return None  # the full parse reports it
    if horizon is not None and horizon <= 0:
        return None
    return horizon or default_horizon(known.env)


def _generic_budget(
    num_particles: int, truncation_length: int, horizon: int | None
) -> int:
    """``generic_budget``, or TrainConfig's where the horizon is unknown."""
    if not horizon:
        return TrainConfig.total_steps
    return generic_budget(num_particles, min(truncation_length, horizon))


def surprises(
    config: TrainConfig, warm_up_steps: int, horizon: int | None = None
) -> list[str]:
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
        envs = config.num_particles + (config.algo == "tes")
        window = window_length(config.truncation_length, horizon, config.algo == "es")
        updates = expected_windows(config.total_steps, envs, window)
        if updates < 20 and config.total_steps != preset.get("total_steps"):
            lines.append(
                f"--total-steps {config.total_steps} buys about {updates} updates "
                f"of {envs * window} env steps each: too few for ES to move "
                "far; raise --total-steps"
            )
    return lines


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_combinations(config: TrainConfig, given: dict[str, Any]) -> None:
    """Flags that cannot take effect with the others are errors."""
    if config.problem is not None:
        env_only = "env policy hidden_sizes backend brax_physics async_envs horizon"
        for name in env_only.split():
            if name in given:
                raise ConfigError(f"{_flag(name)} does not apply to --problem")
        return
    if "hidden_sizes" in given and config.policy != "mlp":
        raise ConfigError("--hidden-sizes needs --policy mlp")
    if config.algo == "es" and "truncation_length" in given:
        raise ConfigError("--truncation-length does not apply to --algo es (K = T)")
    if config.algo in ("tes", "es") and "stagger" in given:
        raise ConfigError(f"--stagger does not apply to --algo {config.algo}")
    from pes_rl.agents.build import resolve_backend

    brax = resolve_backend(config.backend) == "brax"
    jitted_only = "brax_physics updates_per_call devices coordinator_address"
    for name in [*jitted_only.split(), "num_processes", "process_id"]:
        if name in given and not brax:
            raise ConfigError(
                f"{_flag(name)} applies to the brax backend only; add --backend brax"
            )
    if config.async_envs and brax:
        raise ConfigError("--async-envs applies to the gymnasium backend only")


# Flags a resumed run may change (they do not change what an update
# computes); any other flag must match the run's config.
RESUMABLE = (
    "total_steps",
    "progress",
    "resume",
    "async_envs",
    "devices",
    "updates_per_call",
    "checkpoint_every_updates",
    "checkpoint_every_seconds",
    "coordinator_address",
    "num_processes",
    "process_id",
)


def resume_config(run_dir: str, given: dict[str, Any]) -> TrainConfig:
    """The config of ``run_dir`` with the allowed flags of ``given``
    applied; a flag that contradicts the run is refused."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.json)")
    stored = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in stored.items() if k in names}
    values["hidden_sizes"] = tuple(values.get("hidden_sizes", ()))
    if values.get("backend") and stored.get("backend"):
        values["backend"] = stored["backend"]
    for name, value in given.items():
        if name in RESUMABLE or name not in names:
            continue
        if name == "backend" and value == "auto":
            continue
        if name == "run_dir" and Path(value).resolve() == Path(run_dir).resolve():
            continue
        if name == "truncation_length":  # stored as the agent resolved it
            horizon = values.get("horizon") or value
            value = horizon if values.get("algo") == "es" else min(value, horizon)
        if values.get(name) != value:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"cannot resume with {flag} {value}: the run used {values.get(name)}"
            )
    for name in RESUMABLE:
        if name in given and name in names:
            values[name] = given[name]
    values["run_dir"] = values["resume"] = str(run_dir)
    return TrainConfig(**values)
