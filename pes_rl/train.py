"""Command line: ``python -m pes_rl.train --env swimmer``.

Trains one agent, evaluates the mean policy every ``--eval-every`` env steps
on separate environments with fixed seeds, and writes a run directory:
``config.json``, ``metrics.jsonl`` (one line per evaluation) and
``checkpoint.pkl`` (rewritten atomically at every evaluation).
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from pes_rl.envs.pool import EnvironmentWorkerError
from pes_rl.envs.registry import BRAX_DEFAULT_HORIZON, gymnasium_id
from pes_rl.errors import ConfigError, NonFiniteError
from pes_rl.presets import preset_for
from pes_rl.schedules import LinearDecay

ALGOS = ("pes", "nres", "tes", "es")


@dataclass(frozen=True)
class TrainConfig:
    env: str = "swimmer"
    """Alias (swimmer, halfcheetah, hopper, walker2d, ant, linear_quadratic),
    Gymnasium id, or module:EnvId."""
    algo: str = "pes"
    """pes, nres, tes (truncated ES) or es (full-episode ES)."""
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
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Not a flag: constructor arguments for the environment."""

    def agent_kwargs(self) -> dict[str, Any]:
        keys = (
            "backend num_particles truncation_length horizon sigma learning_rate "
            "optimizer fitness_shaping policy hidden_sizes obs_norm stagger seed "
            "brax_physics"
        ).split()
        kwargs = {k: getattr(self, k) for k in keys}
        kwargs["num_devices"] = self.devices
        kwargs["updates_per_call"] = self.updates_per_call or max(
            1, self.eval_every // max(1, self._envs() * self._window())
        )
        # This process steps a block of envs too: one worker per other core.
        kwargs["num_workers"] = (
            max(1, (os.cpu_count() or 2) - 1) if self.async_envs else 0
        )
        if self.sigma_final is not None:
            kwargs["sigma"] = LinearDecay(
                self.sigma, self.sigma_final, self._expected_windows()
            )
        if self.learning_rate_final is not None:
            kwargs["learning_rate"] = LinearDecay(
                self.learning_rate, self.learning_rate_final, self._expected_windows()
            )
        return {"env": self.env, "env_kwargs": self.env_kwargs or None, **kwargs}

    def _expected_windows(self) -> int:
        """Windows (and so updates) the run's budget buys when every
        particle is stepped for the whole window: the decay length."""
        # Invalid sizes are reported by the agent's validation, not here.
        return max(1, self.total_steps // max(1, self._envs() * self._window()))

    def _envs(self) -> int:
        return self.num_particles + (1 if self.algo == "tes" else 0)

    def _window(self) -> int:
        horizon = self.horizon
        if horizon is None:
            try:
                horizon = gym.spec(gymnasium_id(self.env)).max_episode_steps
            except ConfigError:  # a Brax-only name: Brax's default length
                horizon = BRAX_DEFAULT_HORIZON
        window = self.truncation_length
        if horizon is not None:  # without one the agent reports the error
            window = horizon if self.algo == "es" else min(window, horizon)
        return window


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, exit status 2 (through main), instead of usage + message.
        raise ConfigError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pes_rl.train",
        description="Train a policy with online evolution strategies. Flags not "
        "given take the environment's preset, then the defaults shown.",
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
    }
    choices = {
        "algo": ALGOS,
        "backend": ("gymnasium", "brax", "auto"),
        "optimizer": ("sgd", "adam"),
        "policy": ("linear", "mlp"),
        "fitness_shaping": ("none", "std", "centered_ranks"),
        "brax_physics": ("generalized", "positional", "spring", "mjx"),
    }
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        helptext = _DOCS.get(f.name, "").replace("%", "%%")
        if f.name == "env_kwargs":
            continue
        if f.name in ("obs_norm", "stagger", "progress", "async_envs"):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=helptext
            )
        elif f.name == "hidden_sizes":
            parser.add_argument(flag, type=int, nargs="+", default=None, help=helptext)
        else:
            parser.add_argument(
                flag,
                type=flag_types.get(f.name, str),
                choices=choices.get(f.name),
                default=None,
                help=f"{helptext} (default: {f.default})",
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


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Flags given on the command line override the environment's preset,
    which overrides the defaults. A sigma or learning rate given without its
    final value stays constant, whatever decay the preset has."""
    args = vars(_parser().parse_args(argv))
    given = {k: v for k, v in args.items() if v is not None}
    env = given.get("env", TrainConfig.env)
    algo = given.get("algo", TrainConfig.algo)
    if "hidden_sizes" in given:
        given["hidden_sizes"] = tuple(given["hidden_sizes"])
    preset = preset_for(env, algo)
    for name in ("sigma", "learning_rate"):
        if name in given and f"{name}_final" not in given:
            preset.pop(f"{name}_final", None)
    return TrainConfig(**{**preset, **given})


def _prepare_run_dir(config: TrainConfig) -> Path:
    if config.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{config.env.replace(':', '_').replace('/', '_')}-{config.algo}"
        return Path("runs") / f"{name}-seed{config.seed}-{stamp}"
    path = Path(config.run_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run directory {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise ConfigError(f"run directory {path} is not empty; choose a new one")
    return path


def run(config: TrainConfig) -> dict[str, Any]:
    """Train as the CLI does and return the final summary."""
    start = time.perf_counter()  # "seconds" include building envs and compiling
    if config.algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {config.algo!r}: use one of {ALGOS}")
    for name in ("total_steps", "eval_every", "eval_episodes"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be a positive integer")
    run_dir = _prepare_run_dir(config)
    from pes_rl.agents import ALGORITHMS

    agent = ALGORITHMS[config.algo](**config.agent_kwargs())
    # Only a fully built agent gets a run directory: bad input writes nothing.
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        agent.close()
        raise ConfigError(f"cannot create run directory {run_dir}: {err}") from None
    record = {
        **dataclasses.asdict(config),
        "run_dir": str(run_dir),
        "env_id": agent.env_name,
        "horizon": agent.horizon,
        "truncation_length": agent.truncation_length,
        "backend": agent.backend_name,
    }
    (run_dir / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{type(agent).__name__} on {agent.env_name} ({agent.backend_name} backend, "
        f"{agent.device_description}), N={agent.num_particles}, "
        f"K={agent.truncation_length}, T={agent.horizon}; writing {run_dir}",
        file=sys.stderr,
    )
    checkpoint = run_dir / "checkpoint.pkl"
    eval_seconds = 0.0
    next_eval = 0

    def evaluate(num_episodes: int) -> dict[str, Any]:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        returns = agent.evaluate_episodes(num_episodes)
        agent.last_eval_return = float(returns.mean())
        eval_seconds += time.perf_counter() - t0
        seconds = time.perf_counter() - start
        line = {
            "env_steps": agent.env_steps,
            "seconds": round(seconds, 3),
            "train_seconds": round(seconds - eval_seconds, 3),
            "update": agent.num_updates,
            "eval_return": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": num_episodes,
            "eval_env_steps": agent.eval_env_steps,
        }
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        agent.save(checkpoint)
        return line

    def callback(info: dict[str, Any]) -> None:
        nonlocal next_eval
        if agent.env_steps >= next_eval:
            evaluate(config.eval_episodes)
            next_eval += config.eval_every

    evaluate(config.eval_episodes)
    next_eval = config.eval_every
    try:
        agent.learn(config.total_steps, callback=callback, progress_bar=config.progress)
        final = evaluate(2 * config.eval_episodes)
    finally:
        agent.close()
    train_seconds = final["train_seconds"]
    summary = {
        **final,
        "algo": config.algo,
        "env_id": agent.env_name,
        "steps_per_s": agent.env_steps / train_seconds if train_seconds else math.nan,
        "run_dir": str(run_dir),
    }
    print(
        f"done: {type(agent).__name__} on {agent.env_name}, "
        f"{agent.env_steps} env steps in {final['seconds']:.1f} s "
        f"({summary['steps_per_s']:.0f} training steps/s), final eval return "
        f"{final['eval_return']:.1f} ± {final['eval_return_std']:.1f} over "
        f"{final['eval_episodes']} episodes; results in {run_dir}"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        run(config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except EnvironmentWorkerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except NonFiniteError as err:
        print(
            f"error: training stopped: {err}; the last checkpoint is intact",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
