"""Command-line configuration of ``python -m pes_rl.train``: the run's
config, its flags and presets (``pes_rl.cli.rules`` holds which combinations are
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
import types
from dataclasses import MISSING, dataclass
from typing import Any

from pes_rl.agents.presets import (
    GENERIC,
    PRESETS,
    generic_budget,
    preset_algo,
    preset_for,
)
from pes_rl.cli.rules import (
    RESUMABLE,
    check_combinations,
    check_values,
    preset_name,
    resume_values,
)
from pes_rl.core import algorithms
from pes_rl.core.config import (
    AgentConfig,
    expected_windows,
    field_docs,
    flag_name,
    setting,
)
from pes_rl.core.schedules import LinearDecay
from pes_rl.envs.registry import default_horizon
from pes_rl.errors import ConfigError
from pes_rl.problems import make as make_problem


def _cli(name: str, default: Any = MISSING, **metadata: Any):
    """AgentConfig's field ``name`` with the command line's default (and
    ``metadata`` added): its docstring stays AgentConfig's unless the line
    after it gives one."""
    base = AgentConfig.__dataclass_fields__[name]
    factory = metadata.pop("factory", MISSING)
    return setting(default, factory=factory, **{**base.metadata, **metadata})


@dataclass(frozen=True)
class TrainConfig(AgentConfig):
    """The command line's settings: the agent's (``AgentConfig``, declared
    there) and the run's own. The flags and ``--help`` come from the fields."""

    # The agent's settings whose command-line default or meaning differs.
    backend: str = _cli("backend", "auto")
    workers: str | None = _cli("workers", None, choices=("ray",))
    """ray: run whole pairs of particles on Ray workers (Gymnasium envs); the
    results match one process bit for bit."""
    num_workers: int | None = _cli("num_workers", None)
    """Worker processes (or, with --workers ray, Ray workers: one CPU each;
    default one per CPU core here)."""
    updates_per_call: int | None = _cli("updates_per_call", None)
    """Brax backend: updates per jitted device call; by default as many as
    fit between two evaluations."""
    env_kwargs: dict[str, Any] = _cli("env_kwargs", factory=dict)
    preset: str | None = _cli("preset", None, choices=lambda: (*PRESETS, GENERIC))
    """Settings to start from: a named preset or generic; by default the
    environment's own preset, else the generic defaults."""

    # The run's own settings.
    algo: str = setting("pes", choices=algorithms.names)
    """The algorithm (``pes_rl.core.algorithms``; --help lists them)."""
    total_steps: int = 1_000_000
    """Training env steps (warm-up included; evaluation steps not)."""
    sigma_final: float | None = None
    """If given, sigma decays linearly to this value over the run."""
    learning_rate_final: float | None = None
    """If given, the learning rate decays linearly to this value over the run."""
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

    def validate(self, given: Any = (), resume: bool = False) -> None:
        """ConfigError for the first setting no run can use: the algorithm,
        the agent's learning settings (``AgentConfig.check_settings``), the
        run's values and, of the flags ``given``, those that cannot take
        effect together (``pes_rl.cli.rules``). Where the work runs (workers,
        devices) is checked once resolved, as the agent is built
        (``AgentConfig.validate``)."""
        algorithms.get(self.algo)
        self.check_settings()
        check_values(self, resume)
        check_combinations(self, given)

    def agent_kwargs(self) -> dict[str, Any]:
        """The agent's arguments: flags mapped to the agent's config, decays
        over the run's budget (``pes_rl.core.config`` holds the rules)."""
        kwargs = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(AgentConfig)
            if f.name not in RUN_DEPENDENT
        }
        kwargs["preset"] = self.preset  # every setting is given: a record
        if self.problem is not None:
            kwargs["problem"] = problem = make_problem(self.problem)
            horizon = problem.horizon
        else:
            kwargs["env"] = self.env
            kwargs["env_kwargs"] = self.env_kwargs or None
            # None without an episode limit: building the agent says so.
            horizon = self.horizon or default_horizon(self.env) or 1
        algorithm = algorithms.get(self.algo)
        window = algorithm.window(self.truncation_length, horizon)
        envs = algorithm.num_envs(self.num_particles)
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
    for f in sorted(dataclasses.fields(TrainConfig), key=_help_order):
        flag = f.metadata.get("flag", f.name)
        if flag is False:
            continue
        flag = "--" + flag.replace("_", "-")
        helptext = _DOCS.get(f.name, "").replace("%", "%%").replace("``", "")
        if f.name == "algo":
            helptext = algorithms.help_text() + "."
        if f.name == "resume":
            helptext += " Flags that may differ: " + ", ".join(
                flag_name(name) for name in RESUMABLE if name != "resume"
            )
        default = f"(default: {_default(f, preset, preset_label)})"
        if f.type is bool:
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{helptext} {default}",
            )
        elif f.name == "hidden_sizes":
            parser.add_argument(
                flag, dest=f.name, type=int, nargs="+", default=None, help=helptext
            )
        else:
            choices = f.metadata.get("choices")
            parser.add_argument(
                flag,
                dest=f.name,
                metavar=None if choices else flag[2:].replace("-", "_").upper(),
                type=_flag_type(f),
                choices=choices() if callable(choices) else choices,
                default=None,
                help=f"{helptext} {default}",
            )
    return parser


# --help lists these first: what is trained, how, and from which settings.
_LEADING = ("env", "problem", "algo", "preset")
# The agent's settings agent_kwargs derives from the run rather than copies.
RUN_DEPENDENT = (
    "env", "problem", "preset", "env_kwargs", "workers", "num_workers",
    "ray_address", "updates_per_call",
)  # fmt: skip


def _help_order(f: dataclasses.Field) -> int:
    return _LEADING.index(f.name) if f.name in _LEADING else len(_LEADING)


def _flag_type(f: dataclasses.Field) -> type:
    """int, float or str, from the metadata or the annotation (``int | None``
    is int; ``Any`` is str)."""
    if "type" in f.metadata:
        return f.metadata["type"]
    options = f.type.__args__ if isinstance(f.type, types.UnionType) else (f.type,)
    return next((t for t in options if t in (int, float)), str)


_DOCS = field_docs(TrainConfig)


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
    if name == GENERIC:  # the budget follows the particles and the window
        total = given.get("total_steps")
        if total is None:
            total = _generic_budget(
                config.num_particles, config.truncation_length, horizon
            )
        every = given.get("eval_every", max(1, total // 20))
        config = dataclasses.replace(config, total_steps=total, eval_every=every)
    config.validate(given)
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
