"""Command-line configuration of ``python -m pes_rl.train``: the run's
config, its flags and presets (``cli_rules`` holds which combinations are
errors or warnings, and what a resume may change).

Flags given on the command line override the environment's preset (found
by alias, Gymnasium id or Brax name; the generic defaults where it has
none), which overrides the defaults. A flag
that can do nothing with the others is an error; a legal but surprising
combination gets a ``warning:`` line on stderr.
"""

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from pes_rl.cli_rules import (
    RESUMABLE,
    check_combinations,
    preset_name,
    resume_values,
)
from pes_rl.config import expected_windows, window_length
from pes_rl.envs.registry import default_horizon
from pes_rl.errors import ConfigError
from pes_rl.policies import POLICIES
from pes_rl.presets import GENERIC, PRESETS, generic_budget, preset_algo, preset_for
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
    """linear, mlp, gru or lstm (recurrent: the carry persists across windows
    and starts fresh with every episode)."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer sizes of the mlp policy."""
    recurrent_size: int = 32
    """Hidden units of the gru and lstm policies."""
    obs_norm: bool = False
    """Running observation normalisation."""
    reward_shift: float = 0.0
    """Subtracted from every training step's reward (the ARS paper's removal
    of the survival bonus); evaluations report the env's own reward."""
    stagger: bool = True
    """Stagger pairs over the horizon."""
    seed: int = 0
    """Random seed."""
    eval_every: int = 50_000
    """Evaluate the mean policy every this many training env steps."""
    eval_episodes: int = 5
    """Episodes per evaluation, the final one included (the same reset
    seeds every time)."""
    run_dir: str | None = None
    """Where to write results; runs/ENV-ALGO-seedS-TIME when not given."""
    progress: bool = True
    """Show a progress bar."""
    wandb: bool = False
    """Log to Weights & Biases as well as TensorBoard (the wandb extra); set
    WANDB_MODE=offline to log without a network."""
    wandb_project: str | None = None
    """W&B project of --wandb (default: pes_rl)."""
    async_envs: bool = False
    """Step the environments in parallel: in this process and one worker
    process per other CPU core."""
    workers: str | None = None
    """ray: run whole pairs of particles on Ray workers (Gymnasium envs); the
    results match one process bit for bit."""
    num_workers: int | None = None
    """Worker processes (or, with --workers ray, Ray workers: one CPU each;
    default one per CPU core here)."""
    ray_address: str | None = None
    """With --workers ray: HOST:PORT of a running Ray cluster's head, or auto
    (the cluster this machine joined); a local Ray instance when not given."""
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
            "optimizer fitness_shaping policy hidden_sizes recurrent_size obs_norm "
            "reward_shift stagger seed brax_physics"
        ).split()
        kwargs = {k: getattr(self, k) for k in keys}
        kwargs["preset"] = self.preset  # every setting is given: a record
        if self.problem is not None:
            kwargs["problem"] = problem = make_problem(self.problem)
            horizon = problem.horizon
        else:
            kwargs["env"] = self.env
            kwargs["env_kwargs"] = self.env_kwargs or None
            # None without an episode limit: building the agent says so.
            horizon = self.horizon or default_horizon(self.env) or 1
        window = window_length(self.truncation_length, horizon, self.algo == "es")
        envs = self.num_particles + (self.algo == "tes")
        kwargs["num_devices"] = self.devices
        kwargs["updates_per_call"] = self.updates_per_call or max(
            1, self.eval_every // max(1, envs * window)
        )
        cores = os.cpu_count() or 2
        kwargs["workers"] = self.workers or "processes"
        kwargs["ray_address"] = self.ray_address
        if self.workers == "ray":
            default = min(cores, envs // 2)  # a given 0 is refused, not replaced
            workers = self.num_workers
            kwargs["num_workers"] = default if workers is None else workers
        elif self.num_workers is not None:
            kwargs["num_workers"] = self.num_workers
        else:  # this process steps a block of envs too: one worker per other core
            kwargs["num_workers"] = max(1, cores - 1) if self.async_envs else 0
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
        "reward_shift": float,
        "seed": int,
        "recurrent_size": int,
        "eval_every": int,
        "eval_episodes": int,
        "updates_per_call": int,
        "devices": int,
        "num_processes": int,
        "process_id": int,
        "checkpoint_every_updates": int,
        "checkpoint_every_seconds": float,
        "num_workers": int,
    }
    choices = {
        "algo": ALGOS,
        "backend": ("gymnasium", "brax", "auto"),
        "optimizer": ("sgd", "adam"),
        "policy": POLICIES,
        "fitness_shaping": ("none", "std", "centered_ranks"),
        "brax_physics": ("generalized", "positional", "spring", "mjx"),
        "preset": (*PRESETS, GENERIC),
        "workers": ("ray",),
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
        if f.name in ("obs_norm", "stagger", "progress", "async_envs", "wandb"):
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


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Flags given on the command line override the environment's preset
    (or the generic defaults where it has none), which overrides the
    defaults. A sigma or learning rate given without its
    final value stays constant, whatever decay the preset has. With
    ``--resume DIR`` the run's own config is the base."""
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    first.add_argument("--env", default=TrainConfig.env)
    first.add_argument("--problem")
    first.add_argument("--algo")
    first.add_argument("--preset")
    first.add_argument("--horizon")
    known, _ = first.parse_known_args(argv)
    name = known.preset or preset_name(known.problem or known.env) or GENERIC
    algo = known.algo or preset_algo(name)
    preset, horizon = {}, None
    if name in (*PRESETS, GENERIC):
        preset = preset_for(name, algo, problem=known.problem is not None)
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
        defaults = {
            f.name: None if f.default is dataclasses.MISSING else f.default
            for f in dataclasses.fields(TrainConfig)
        }
        return TrainConfig(**resume_values(given["resume"], given, defaults))
    for key in ("sigma", "learning_rate"):
        if key in given and f"{key}_final" not in given:
            preset.pop(f"{key}_final", None)  # see surprises()
    config = TrainConfig(**{**preset, **given, "preset": name})
    check_combinations(config, given)
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
