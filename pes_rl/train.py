"""Command line: ``python -m pes_rl.train --env swimmer``.

Trains one agent, evaluates the mean policy every ``--eval-every`` env steps
on separate environments with fixed seeds, and writes a run directory:
``config.json``, ``metrics.jsonl`` (one line per evaluation), TensorBoard
events and ``checkpoints/`` (at every evaluation, periodically and on
SIGINT/SIGTERM). ``--resume RUN_DIR`` continues a run from its newest
checkpoint.
"""

import contextlib
import dataclasses
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pes_rl.callbacks import (
    Callback,
    CheckpointCallback,
    EvalCallback,
    TensorBoardCallback,
)
from pes_rl.checkpoints import DIRECTORY as CHECKPOINT_DIR
from pes_rl.checkpoints import checkpoint_files, save_best
from pes_rl.cli_config import TrainConfig, parse_config
from pes_rl.cli_rules import preset_name, surprises
from pes_rl.envs.pool import EnvironmentWorkerError
from pes_rl.errors import ConfigError, DiskFullError, NonFiniteError
from pes_rl.multihost import any_process, check_same, is_main_process
from pes_rl.presets import GENERIC
from pes_rl.run_dir import (
    Claim,
    check_new,
    default_run_dir,
    prepare_resume,
    write_config,
    write_metrics_line,
)
from pes_rl.tracking import close_quietly, import_wandb, open_writers


def run(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train as the CLI does and return the final summary; with ``resume``,
    continue the run in ``config.run_dir`` from its newest checkpoint.

    After ``jax.distributed.initialize`` every process runs this with the
    same config: all take part in each update, evaluation and checkpoint,
    and process 0 alone writes the run directory (a resume reads its
    checkpoint on every process, so the directory must be readable there)."""
    start = time.perf_counter()  # "seconds" include building envs and compiling
    config.validate(resume=resume)
    from pes_rl.agents import agent_class
    from pes_rl.agents import load_latest as load_agent

    main = is_main_process()
    if config.wandb and main:  # before anything is written
        import_wandb()
    if not main:
        config = dataclasses.replace(config, progress=False)
    say = _printer(main)
    kwargs = config.agent_kwargs()
    claim = None
    if resume:
        run_dir = Path(config.run_dir)
        try:
            claim = _together(lambda: Claim(run_dir, new=False) if main else None)
            # The flags a resume may change: how the work is spread.
            spread = ("num_workers", "workers", "ray_address", "num_devices")
            overrides = {name: kwargs[name] for name in (*spread, "updates_per_call")}
            fresh = not checkpoint_files(run_dir)  # stopped before its first
            agent, loop_state, checkpoint_path = _together(
                lambda: (
                    (agent_class(config.algo)(**kwargs), {}, None)
                    if fresh
                    else load_agent(run_dir, **overrides)
                )
            )
            # Every process read the same checkpoint, or none goes on.
            check_same(
                (agent.num_updates, agent.env_steps), f"checkpoints of {run_dir}"
            )
        except BaseException:
            if claim is not None:
                claim.release()
            raise
        if loop_state.get("finished") and agent.env_steps >= config.total_steps:
            agent.close()
            if claim is not None:
                claim.release()
            raise ConfigError(
                f"{run_dir} already finished at {agent.env_steps} env steps; "
                "pass a larger --total-steps to continue it"
            )
        start -= loop_state.get("seconds", 0.0)
        if main:
            prepare_resume(run_dir, config.total_steps, agent.env_steps)
        origin = "scratch (no checkpoint)" if fresh else checkpoint_path.name
        say(
            f"resuming {run_dir} from {origin}: {agent.env_steps} "
            f"env steps, {agent.num_updates} updates",
            file=sys.stderr,
        )
    else:
        run_dir = (
            Path(config.run_dir)
            if config.run_dir is not None
            else default_run_dir(config.problem or config.env, config.algo, config.seed)
        )
        _together(lambda: check_new(run_dir) if main else None)
        agent = _together(lambda: agent_class(config.algo)(**kwargs))
        loop_state = {}
        # Only a fully built agent gets a run directory: bad input writes nothing.
        try:
            agent.check_evaluation(2 * config.eval_episodes)  # the final one's
            claim = _together(lambda: Claim(run_dir, new=True) if main else None)
        except ConfigError:
            agent.close()
            raise
        if main:
            record = {
                **dataclasses.asdict(config),
                "run_dir": str(run_dir),
                "env_id": agent.env_name,
                "horizon": agent.horizon,
                "truncation_length": agent.truncation_length,
                "backend": agent.backend_name,
            }
            write_config(run_dir, record)
    preset = config.preset or preset_name(config.problem or config.env)
    settings = {GENERIC: "generic defaults", None: "no preset"}.get(
        preset, f"{preset} preset"
    )
    space = agent.flattened_observations  # Dict or Tuple: say so
    flat = f"{type(space).__name__} observations flattened; " if space else ""
    say(
        f"{type(agent).__name__} on {agent.env_name} ({agent.backend_name} backend, "
        f"{agent.device_description}), N={agent.num_particles}, "
        f"K={agent.truncation_length}, T={agent.horizon}, "
        f"{settings}; "
        f"{flat}writing {run_dir}",
        file=sys.stderr,
    )
    for line in [] if resume else surprises(config, agent.warm_up_steps, agent.horizon):
        say(f"warning: {line}", file=sys.stderr)
    eval_seconds = loop_state.get("eval_seconds", 0.0)
    finished = False
    try:
        writer = open_writers(
            run_dir, main, config.wandb, config.wandb_project, resume, agent.env_steps
        )
    except BaseException:
        agent.close()
        if claim is not None:
            claim.release()
        raise

    def loop_state_now() -> dict[str, Any]:
        return {
            "seconds": time.perf_counter() - start,
            "eval_seconds": eval_seconds,
            "next_eval": evaluations.next_eval,
            "finished": finished,
            "best_return": best_return,
        }

    checkpoints = CheckpointCallback(
        run_dir / CHECKPOINT_DIR,
        every_updates=config.checkpoint_every_updates,
        every_seconds=config.checkpoint_every_seconds,
        extra=loop_state_now,
        flush=writer.flush,  # TensorBoard's points up to each checkpoint
    )

    last_line: dict[str, Any] = {}

    best_return = loop_state.get("best_return", -math.inf)

    def record_evaluation(result: dict[str, Any]) -> None:
        nonlocal eval_seconds, last_line, best_return
        eval_seconds += evaluations.last_duration
        seconds = time.perf_counter() - start
        line = {
            "env_steps": result["env_steps"],
            "seconds": round(seconds, 3),
            "train_seconds": round(seconds - eval_seconds, 3),
            "wall_time": round(time.time(), 3),
            **{k: v for k, v in result.items() if k != "env_steps"},
        }
        if agent.compile_seconds is not None:
            line["compile_seconds"] = round(agent.compile_seconds, 3)
        # The line first, then the checkpoint: a resume from an older
        # checkpoint drops lines past it, so every line is written once.
        if main:
            write_metrics_line(run_dir / "metrics.jsonl", line)
        writer.add_scalar("eval/return", line["eval_return"], line["env_steps"])
        if line["eval_return"] > best_return:  # first, so a resume redoes it
            best_return = line["eval_return"]
            save_best(agent, run_dir / CHECKPOINT_DIR, line)
        checkpoints.save(agent)
        last_line = line

    evaluations = EvalCallback(
        config.eval_every, config.eval_episodes, on_result=record_evaluation
    )
    evaluations.next_eval = loop_state.get("next_eval")
    stop = _SignalStop(checkpoints)
    logger = TensorBoardCallback(writer)
    try:
        with stop.installed():
            # Up to the run's budget: a resumed agent counts on from its steps.
            agent.learn(
                max(0, config.total_steps - agent.env_steps),
                callback=[evaluations, checkpoints, logger, stop],
                progress_bar=config.progress,
                reset_num_timesteps=False,
            )
            if stop.signal_name is None:
                finished = True
                # The final evaluation is like the others; the policy the last
                # one saw (on the last update) is not evaluated twice.
                done = evaluations.results[-1:]
                if done and done[0]["env_steps"] == agent.env_steps:
                    checkpoints.save(agent)  # marks the run finished
                else:
                    evaluations.evaluate(agent)
    except BaseException:
        close_quietly(writer)  # on a full disk, not to hide the first error
        raise
    else:
        writer.close()
    finally:
        agent.close()
        if claim is not None:
            claim.release()
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
    say(
        f"done: {type(agent).__name__} on {agent.env_name}, "
        f"{agent.env_steps} env steps in {final['seconds']:.1f} s "
        f"({summary['steps_per_s']:.0f} training steps/s), final eval return "
        f"{final['eval_return']:.1f} ± {final['eval_return_std']:.1f} over "
        f"{final['eval_episodes']} episodes; results in {run_dir}"
    )
    return summary


def _together(step: Callable[[], Any]) -> Any:
    """``step()``; where processes train together, an error in any of them
    stops all (the others would wait for it in the first device call)."""
    try:
        result, error = step(), None
    except Exception as err:
        result, error = None, err
    if any_process(error is not None):
        raise error or ConfigError(
            "another process of this run stopped; see its output"
        )
    return result


def _printer(main: bool):
    """``print`` on process 0; the other processes of a multi-process run
    stay quiet."""
    return print if main else (lambda *args, **kwargs: None)


class Interrupted(Exception):
    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class _SignalStop(Callback):
    """On SIGINT or SIGTERM, finish the current update, save a checkpoint
    and stop training."""

    def __init__(self, checkpoints: CheckpointCallback):
        self.checkpoints = checkpoints
        self.agent = None
        self.signal_name: str | None = None
        self.exit_status = 0

    @contextlib.contextmanager
    def installed(self):
        def handler(signum, frame):
            if self.signal_name is not None:  # a second signal: stop now
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(signum).name
            self.exit_status = 128 + signum
            print(
                f"{self.signal_name}: stopping after {self._in_progress()}, then "
                "saving a checkpoint; a second signal stops at once",
                file=sys.stderr,
                flush=True,
            )

        previous = {
            sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _in_progress(self) -> str:
        """What the stop waits for: on the jitted engine a whole device call."""
        agent = self.agent
        if agent is None or agent.backend_name == "gymnasium":
            return "the update in progress"
        updates = agent.config.updates_per_call
        seconds = agent.last_call_seconds
        took = (
            f"the last took {seconds:.0f} s"
            if seconds is not None
            else "the first waits for its compilation"
        )
        return f"the device call in progress (up to {updates} updates; {took})"

    def on_training_start(self, agent):
        self.agent = agent

    def on_update(self, agent, info):
        # Processes of a multi-process run stop together, whichever had the
        # signal (a collective: each process asks after every call).
        if not any_process(self.signal_name is not None):
            return None
        if self.signal_name is None:
            self.signal_name = "a signal to another process"
            self.exit_status = 128 + signal.SIGTERM
        self.checkpoints.save(agent)
        return False


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
        _init_distributed(config)  # then only process 0 writes (``run``)
        run(config, resume=config.resume is not None)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (EnvironmentWorkerError, DiskFullError) as err:
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
