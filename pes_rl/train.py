"""Command line: ``python -m pes_rl.train --env swimmer``.

Trains one agent, evaluates the mean policy every ``--eval-every`` env steps
on separate environments with fixed seeds, and writes a run directory:
``config.json``, ``metrics.jsonl`` (one line per evaluation), TensorBoard
events and ``checkpoints/`` (at every evaluation, periodically and on
SIGINT/SIGTERM). ``--resume RUN_DIR`` continues a run from its newest
checkpoint.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from pes_rl.callbacks import Callback, CheckpointCallback, EvalCallback
from pes_rl.checkpoints import DIRECTORY as CHECKPOINT_DIR
from pes_rl.checkpoints import load_latest
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
    coordinator_address: str | None = None
    """Multi-host Brax: HOST:PORT of process 0; with --num-processes and
    --process-id, calls jax.distributed.initialize before anything else."""
    num_processes: int | None = None
    """Multi-host Brax: number of processes (one per host)."""
    process_id: int | None = None
    """Multi-host Brax: this process's index; only process 0 writes results."""
    checkpoint_every_updates: int | None = None
    """Also save a checkpoint every this many updates (one is always saved at
    each evaluation and on SIGINT/SIGTERM)."""
    checkpoint_every_seconds: float | None = 300.0
    """Also save a checkpoint every this many seconds."""
    resume: str | None = None
    """Continue the run in this directory from its newest checkpoint; only
    --total-steps and --progress may differ from the run's flags."""
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
    final value stays constant, whatever decay the preset has. With
    ``--resume DIR`` the run's own config is the base."""
    args = vars(_parser().parse_args(argv))
    given = {k: v for k, v in args.items() if v is not None}
    if "hidden_sizes" in given:
        given["hidden_sizes"] = tuple(given["hidden_sizes"])
    if "resume" in given:
        return resume_config(given["resume"], given)
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


def _read_metrics(path: Path, upto_env_steps: int) -> list[str]:
    """The metrics lines up to a checkpoint's env steps; a line cut off by a
    crash and lines the resumed run will redo are dropped."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("env_steps", math.inf) <= upto_env_steps:
            kept.append(line)
    return kept


def write_metrics_line(path: Path, line: dict[str, Any]) -> None:
    """Append ``line``; one at the same env steps as the last line replaces
    it (the final evaluation after a periodic one on the last update), so
    env_steps increase strictly down the file."""
    lines = path.read_text().splitlines() if path.exists() else []
    if lines and json.loads(lines[-1]).get("env_steps") == line["env_steps"]:
        lines[-1] = json.dumps(line)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(m + "\n" for m in lines))
        os.replace(tmp, path)
        return
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


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


def run(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train as the CLI does and return the final summary; with ``resume``,
    continue the run in ``config.run_dir`` from its newest checkpoint."""
    start = time.perf_counter()  # "seconds" include building envs and compiling
    if config.algo not in ALGOS:
        raise ConfigError(f"unknown algorithm {config.algo!r}: use one of {ALGOS}")
    for name in ("total_steps", "eval_every", "eval_episodes"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be a positive integer")
    for name in ("checkpoint_every_updates", "checkpoint_every_seconds"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive")
    from pes_rl.agents import ALGORITHMS

    kwargs = config.agent_kwargs()
    if resume:
        run_dir = Path(config.run_dir)
        agent, loop_state, checkpoint_path = load_latest(
            run_dir, num_workers=kwargs["num_workers"]
        )
        if loop_state.get("finished") and agent.env_steps >= config.total_steps:
            agent.close()
            raise ConfigError(
                f"{run_dir} already finished at {agent.env_steps} env steps; "
                "pass a larger --total-steps to continue it"
            )
        start -= loop_state.get("seconds", 0.0)
        stored = json.loads((run_dir / "config.json").read_text())
        stored["total_steps"] = config.total_steps  # the run's budget from now on
        (run_dir / "config.json").write_text(json.dumps(stored, indent=2) + "\n")
        metrics = _read_metrics(run_dir / "metrics.jsonl", agent.env_steps)
        (run_dir / "metrics.jsonl").write_text("".join(m + "\n" for m in metrics))
        print(
            f"resuming {run_dir} from {checkpoint_path.name}: {agent.env_steps} "
            f"env steps, {agent.num_updates} updates",
            file=sys.stderr,
        )
    else:
        run_dir = _prepare_run_dir(config)
        agent = ALGORITHMS[config.algo](**kwargs)
        loop_state = {}
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
    eval_seconds = loop_state.get("eval_seconds", 0.0)
    finished = False
    # On resume, events logged after the checkpoint are purged: work redone.
    writer = _tensorboard(run_dir, purge_step=agent.env_steps if resume else None)

    def loop_state_now() -> dict[str, Any]:
        return {
            "seconds": time.perf_counter() - start,
            "eval_seconds": eval_seconds,
            "next_eval": evaluations.next_eval,
            "finished": finished,
        }

    checkpoints = CheckpointCallback(
        run_dir / CHECKPOINT_DIR,
        every_updates=config.checkpoint_every_updates,
        every_seconds=config.checkpoint_every_seconds,
        extra=loop_state_now,
    )

    last_line: dict[str, Any] = {}

    def record_evaluation(result: dict[str, Any]) -> None:
        nonlocal eval_seconds, last_line
        eval_seconds += evaluations.last_duration
        seconds = time.perf_counter() - start
        line = {
            "env_steps": result["env_steps"],
            "seconds": round(seconds, 3),
            "train_seconds": round(seconds - eval_seconds, 3),
            **{k: v for k, v in result.items() if k != "env_steps"},
        }
        if agent.compile_seconds is not None:
            line["compile_seconds"] = round(agent.compile_seconds, 3)
        # The line first, then the checkpoint: a resume from an older
        # checkpoint drops lines past it, so every line is written once.
        write_metrics_line(run_dir / "metrics.jsonl", line)
        writer.add_scalar("eval/return", line["eval_return"], line["env_steps"])
        checkpoints.save(agent)
        last_line = line

    evaluations = EvalCallback(
        config.eval_every, config.eval_episodes, on_result=record_evaluation
    )
    evaluations.next_eval = loop_state.get("next_eval")
    stop = _SignalStop(checkpoints)
    logger = _TensorBoardLogger(writer, start)
    try:
        with stop.installed():
            agent.learn(
                config.total_steps,
                callback=[evaluations, checkpoints, logger, stop],
                progress_bar=config.progress,
            )
            if stop.signal_name is None:
                finished = True
                evaluations.num_episodes = 2 * config.eval_episodes
                evaluations.evaluate(agent)
    finally:
        agent.close()
        writer.close()
    if stop.signal_name is not None:
        raise Interrupted(
            f"stopped by {stop.signal_name} at {agent.env_steps} env steps; "
            f"checkpoint saved; continue with: python -m pes_rl.train --resume "
            f"{run_dir}",
            stop.exit_status,
        )
    final = last_line
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


class Interrupted(Exception):
    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class _SignalStop(Callback):
    """On SIGINT or SIGTERM, finish the current update, save a checkpoint
    and stop training."""

    def __init__(self, checkpoints: CheckpointCallback):
        self.checkpoints = checkpoints
        self.signal_name: str | None = None
        self.exit_status = 0

    @contextlib.contextmanager
    def installed(self):
        def handler(signum, frame):
            if self.signal_name is not None:  # a second signal: stop now
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(signum).name
            self.exit_status = 128 + signum

        previous = {
            sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def on_update(self, agent, info):
        if self.signal_name is None:
            return None
        self.checkpoints.save(agent)
        return False


class _TensorBoardLogger(Callback):
    """Per update: window return, env-steps/s, gradient norm, sigma and the
    learning rate, against training env steps."""

    def __init__(self, writer, start: float):
        self.writer = writer
        self.start = start
        self.last: tuple[float, int] | None = None

    def on_update(self, agent, info):
        now, steps = time.perf_counter(), agent.env_steps
        if self.last is not None and now > self.last[0]:
            rate = (steps - self.last[1]) / (now - self.last[0])
            self.writer.add_scalar("train/env_steps_per_s", rate, steps)
        self.last = (now, steps)
        for name in ("window_return", "grad_norm", "train_episode_return"):
            if not math.isnan(info[name]):
                self.writer.add_scalar(f"train/{name}", info[name], steps)
        self.writer.add_scalar("train/sigma", agent.sigma, steps)
        self.writer.add_scalar("train/learning_rate", agent.learning_rate, steps)
        return None


def _tensorboard(run_dir: Path, purge_step: int | None = None):
    from tensorboardX import SummaryWriter

    return SummaryWriter(
        str(run_dir / "tensorboard"), purge_step=purge_step, flush_secs=10
    )


def _init_distributed(config: TrainConfig) -> None:
    """Join a multi-host run: every process runs the same command with the
    same seed and computes the same updates; XLA shards the particles over
    all hosts' devices."""
    given = [
        config.coordinator_address is not None,
        config.num_processes is not None,
        config.process_id is not None,
    ]
    if not any(given):
        return
    if not all(given):
        raise ConfigError(
            "multi-host runs need --coordinator-address, --num-processes "
            "and --process-id together"
        )
    import jax

    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes,
        process_id=config.process_id,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        _init_distributed(config)
        if config.process_id:  # only process 0 writes the run directory
            import tempfile

            config = dataclasses.replace(
                config, run_dir=tempfile.mkdtemp(prefix="pes_rl-"), progress=False
            )
        run(config, resume=config.resume is not None)
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
    except Interrupted as err:
        print(str(err), file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is intact", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
