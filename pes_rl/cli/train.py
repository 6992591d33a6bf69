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
import sys
import time
from pathlib import Path
from typing import Any

from pes_rl.agents.presets import GENERIC
from pes_rl.cli.flags import TrainConfig, parse_config
from pes_rl.cli.processes import (
    Interrupted,
    SignalStop,
    init_distributed,
    printer,
    together,
)
from pes_rl.cli.rules import preset_name, surprises
from pes_rl.core.multihost import check_same, is_main_process
from pes_rl.envs.backends.pool import EnvironmentWorkerError
from pes_rl.errors import ConfigError, DiskFullError, NonFiniteError
from pes_rl.runs.callbacks import (
    CheckpointCallback,
    EvalCallback,
    TensorBoardCallback,
)
from pes_rl.runs.checkpoints import DIRECTORY as CHECKPOINT_DIR
from pes_rl.runs.checkpoints import checkpoint_files, save_best
from pes_rl.runs.run_dir import (
    Claim,
    check_new,
    default_run_dir,
    prepare_resume,
    write_config,
    write_metrics_line,
)
from pes_rl.runs.tracking import close_quietly, import_wandb, open_writers


def run(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train as the CLI does and return the final summary; with ``resume``,
    continue the run in ``config.run_dir`` from its newest checkpoint.

    After ``jax.distributed.initialize`` every process runs this with the
    same config: all take part in each update, evaluation and checkpoint,
    and process 0 alone writes the run directory (a resume reads its
    checkpoint on every process, so the directory must be readable there)."""
    return TrainingRun(config, resume).execute()


class TrainingRun:
    """One run of ``python -m pes_rl.train``. ``execute`` claims the run
    directory, builds the agent, opens the writers, trains with periodic
    evaluations and checkpoints, and returns the summary. What it opens (the
    claim, the agent with its envs, worker processes or Ray workers, the
    TensorBoard and W&B writers) closes through one ``ExitStack``, last
    opened first, however the run ends."""

    def __init__(self, config: TrainConfig, resume: bool):
        self.started = time.perf_counter()  # "seconds" include building, compiling
        config.validate(resume=resume)
        self.main = is_main_process()
        if config.wandb and self.main:  # before anything is written
            import_wandb()
        if not self.main:
            config = dataclasses.replace(config, progress=False)
        self.config, self.resume = config, resume
        self.say = printer(self.main)
        self.run_dir = Path(config.run_dir) if config.run_dir is not None else None
        self.agent: Any = None
        self.writer: Any = None
        self.loop_state: dict[str, Any] = {}  # from the checkpoint resumed
        self.finished = False  # trained to the budget (not stopped by a signal)
        self.last_line: dict[str, Any] = {}  # the newest metrics line

    def execute(self) -> dict[str, Any]:
        with contextlib.ExitStack() as resources:
            if self.resume:
                self._open_resumed(resources)
            else:
                self._open_new(resources)
            self.eval_seconds = self.loop_state.get("eval_seconds", 0.0)
            self.best_return = self.loop_state.get("best_return", -math.inf)
            self._announce()
            self.writer = self._open_writers(resources)
            stop = self._train()
        if stop.signal_name is not None:
            raise Interrupted(
                f"stopped by {stop.signal_name} at {self.agent.env_steps} env "
                "steps; checkpoint saved; continue with: python -m pes_rl.train "
                f"--resume {self.run_dir}",
                stop.exit_status,
            )
        return self._summary()

    # -- opening ------------------------------------------------------------

    def _open_resumed(self, resources: contextlib.ExitStack) -> None:
        """Claim the run directory, then rebuild the agent from its newest
        checkpoint (or anew if it stopped before its first)."""
        config, run_dir, main = self.config, self.run_dir, self.main
        claim = together(lambda: Claim(run_dir, new=False) if main else None)
        if claim is not None:
            resources.callback(claim.release)
        from pes_rl.agents import agent_class
        from pes_rl.agents import load_latest as load_agent

        kwargs = config.agent_kwargs()
        # The flags a resume may change: how the work is spread.
        spread = ("num_workers", "workers", "ray_address", "num_devices")
        overrides = {name: kwargs[name] for name in (*spread, "updates_per_call")}
        fresh = not checkpoint_files(run_dir)  # stopped before its first
        agent, self.loop_state, checkpoint_path = together(
            lambda: (
                (agent_class(config.algo)(**kwargs), {}, None)
                if fresh
                else load_agent(run_dir, **overrides)
            )
        )
        self.agent = agent
        resources.callback(agent.close)
        # Every process read the same checkpoint, or none goes on.
        check_same((agent.num_updates, agent.env_steps), f"checkpoints of {run_dir}")
        if self.loop_state.get("finished") and agent.env_steps >= config.total_steps:
            raise ConfigError(
                f"{run_dir} already finished at {agent.env_steps} env steps; "
                "pass a larger --total-steps to continue it"
            )
        self.started -= self.loop_state.get("seconds", 0.0)
        if main:
            prepare_resume(run_dir, config.total_steps, agent.env_steps)
        origin = "scratch (no checkpoint)" if fresh else checkpoint_path.name
        self.say(
            f"resuming {run_dir} from {origin}: {agent.env_steps} "
            f"env steps, {agent.num_updates} updates",
            file=sys.stderr,
        )

    def _open_new(self, resources: contextlib.ExitStack) -> None:
        """Build the agent, then claim a new run directory and write its
        config.json: only a fully built agent gets a run directory, so bad
        input writes nothing."""
        from pes_rl.agents import agent_class

        config, main = self.config, self.main
        if self.run_dir is None:
            problem_or_env = config.problem or config.env
            self.run_dir = default_run_dir(problem_or_env, config.algo, config.seed)
        run_dir = self.run_dir
        together(lambda: check_new(run_dir) if main else None)
        with contextlib.ExitStack() as building:
            agent = together(lambda: agent_class(config.algo)(**config.agent_kwargs()))
            building.callback(agent.close)
            agent.check_evaluation(2 * config.eval_episodes)  # the final one's
            claim = together(lambda: Claim(run_dir, new=True) if main else None)
            # The claim is released after the agent closes: the run owns
            # its directory until everything it started has stopped.
            if claim is not None:
                resources.callback(claim.release)
            resources.enter_context(building.pop_all())
        self.agent = agent
        if main:
            write_config(
                run_dir,
                {
                    **dataclasses.asdict(config),
                    "run_dir": str(run_dir),
                    "env_id": agent.env_name,
                    "horizon": agent.horizon,
                    "truncation_length": agent.truncation_length,
                    "backend": agent.backend_name,
                },
            )

    def _announce(self) -> None:
        """The run's first line (what trains where, with which settings) and
        warnings about surprising flags."""
        config, agent = self.config, self.agent
        preset = config.preset or preset_name(config.problem or config.env)
        settings = {GENERIC: "generic defaults", None: "no preset"}.get(
            preset, f"{preset} preset"
        )
        space = agent.flattened_observations  # Dict or Tuple: say so
        flat = f"{type(space).__name__} observations flattened; " if space else ""
        self.say(
            f"{type(agent).__name__} on {agent.env_name} ({agent.backend_name} "
            f"backend, {agent.device_description}), N={agent.num_particles}, "
            f"K={agent.truncation_length}, T={agent.horizon}, "
            f"{settings}; "
            f"{flat}writing {self.run_dir}",
            file=sys.stderr,
        )
        if not self.resume:
            for line in surprises(config, agent.warm_up_steps, agent.horizon):
                self.say(f"warning: {line}", file=sys.stderr)

    def _open_writers(self, resources: contextlib.ExitStack):
        """TensorBoard (and W&B) writers, closed with the run: after an error
        quietly, so that a full disk's second error does not hide the first."""
        config = self.config
        writer = open_writers(
            self.run_dir,
            self.main,
            config.wandb,
            config.wandb_project,
            self.resume,
            self.agent.env_steps,
        )

        def close(error_type, error, traceback) -> bool:
            if error_type is None:
                writer.close()
            else:
                close_quietly(writer)
            return False  # an error goes on

        resources.push(close)
        return writer

    # -- training -----------------------------------------------------------

    def _train(self) -> "SignalStop":
        """Up to the run's budget (a resumed agent counts on from its steps),
        then the final evaluation; stops early, with a checkpoint, on a
        signal."""
        config, agent = self.config, self.agent
        self.checkpoints = CheckpointCallback(
            self.run_dir / CHECKPOINT_DIR,
            every_updates=config.checkpoint_every_updates,
            every_seconds=config.checkpoint_every_seconds,
            extra=self._loop_state_now,
            flush=self.writer.flush,  # TensorBoard's points up to each checkpoint
        )
        self.evaluations = EvalCallback(
            config.eval_every, config.eval_episodes, on_result=self._record_evaluation
        )
        self.evaluations.next_eval = self.loop_state.get("next_eval")
        stop = SignalStop(self.checkpoints)
        logger = TensorBoardCallback(self.writer)
        with stop.installed():
            agent.learn(
                max(0, config.total_steps - agent.env_steps),
                callback=[self.evaluations, self.checkpoints, logger, stop],
                progress_bar=config.progress,
                reset_num_timesteps=False,
            )
            if stop.signal_name is None:
                self.finished = True
                # The final evaluation is like the others; the policy the last
                # one saw (on the last update) is not evaluated twice.
                done = self.evaluations.results[-1:]
                if done and done[0]["env_steps"] == agent.env_steps:
                    self.checkpoints.save(agent)  # marks the run finished
                else:
                    self.evaluations.evaluate(agent)
        return stop

    def _loop_state_now(self) -> dict[str, Any]:
        """What a checkpoint keeps of the run beside the agent (its ``extra``)."""
        return {
            "seconds": time.perf_counter() - self.started,
            "eval_seconds": self.eval_seconds,
            "next_eval": self.evaluations.next_eval,
            "finished": self.finished,
            "best_return": self.best_return,
        }

    def _record_evaluation(self, result: dict[str, Any]) -> None:
        """An evaluation's metrics line, its TensorBoard point, best.pkl if
        it is the best so far, and a checkpoint."""
        agent, checkpoint_dir = self.agent, self.run_dir / CHECKPOINT_DIR
        self.eval_seconds += self.evaluations.last_duration
        seconds = time.perf_counter() - self.started
        line = {
            "env_steps": result["env_steps"],
            "seconds": round(seconds, 3),
            "train_seconds": round(seconds - self.eval_seconds, 3),
            "wall_time": round(time.time(), 3),
            **{k: v for k, v in result.items() if k != "env_steps"},
        }
        if agent.compile_seconds is not None:
            line["compile_seconds"] = round(agent.compile_seconds, 3)
        # The line first, then the checkpoint: a resume from an older
        # checkpoint drops lines past it, so every line is written once.
        if self.main:
            write_metrics_line(self.run_dir / "metrics.jsonl", line)
        self.writer.add_scalar("eval/return", line["eval_return"], line["env_steps"])
        if line["eval_return"] > self.best_return:  # first, so a resume redoes it
            self.best_return = line["eval_return"]
            save_best(agent, checkpoint_dir, line)
        self.checkpoints.save(agent)
        self.last_line = line

    def _summary(self) -> dict[str, Any]:
        """The final summary, said in one line."""
        agent, final = self.agent, self.last_line
        train_seconds = final["train_seconds"]
        steps_per_s = agent.env_steps / train_seconds if train_seconds else math.nan
        summary = {
            **final,
            "algo": self.config.algo,
            "env_id": agent.env_name,
            "steps_per_s": steps_per_s,
            "run_dir": str(self.run_dir),
        }
        self.say(
            f"done: {type(agent).__name__} on {agent.env_name}, "
            f"{agent.env_steps} env steps in {final['seconds']:.1f} s "
            f"({summary['steps_per_s']:.0f} training steps/s), final eval return "
            f"{final['eval_return']:.1f} ± {final['eval_return_std']:.1f} over "
            f"{final['eval_episodes']} episodes; results in {self.run_dir}"
        )
        return summary


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        init_distributed(config)  # then only process 0 writes (``run``)
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
