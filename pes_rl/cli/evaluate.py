"""Evaluate a trained agent: ``python -m pes_rl.evaluate RUN_DIR``.

Prints the mean policy's return over evaluation episodes and, with
``--video``, records one episode (``pes_rl.cli.video``): an mp4 for Gymnasium
and Playground agents, an HTML viewer for Brax agents.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pes_rl.cli.video import (
    DEFAULT_VIDEO_SEED,
    check_ffmpeg,
    check_gl,
    check_output,
    record,
)
from pes_rl.errors import ConfigError


def load_agent(
    path: str | os.PathLike, checkpoint: str | None = None, **overrides: Any
):
    """Restore the agent of a checkpoint file, or of a run directory: its
    best evaluated policy (``checkpoint="best"``; the default where the run
    kept one) or its newest readable checkpoint (``"last"``)."""
    agent, _ = _load(Path(path), checkpoint, overrides)
    return agent


def _load(path: Path, checkpoint: str | None, overrides: dict[str, Any]):
    """(agent, which checkpoint: "best", "last" or the file's name)."""
    from pes_rl.agents import ESAgent
    from pes_rl.runs.checkpoints import BEST, DIRECTORY, read_latest

    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if checkpoint is not None and not path.is_dir():
        raise ConfigError("--checkpoint needs a run directory, not a checkpoint file")
    best = path / DIRECTORY / BEST
    if path.is_dir() and checkpoint is None:
        checkpoint = "best" if best.is_file() else "last"
    # Read the file before building the agent, so that errors from building
    # it (a missing dependency, an unregistered env) keep their message.
    if checkpoint == "last":
        state, _ = read_latest(path)
    else:
        file = best if checkpoint == "best" else path
        if not file.is_file():
            raise ConfigError(
                f"{path} kept no best checkpoint (runs before it did, or none "
                "evaluated yet): use --checkpoint last"
            )
        try:
            state = ESAgent.read_checkpoint(file)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    label = checkpoint or path.name
    return ESAgent.from_checkpoint(state, **overrides), label


def _track_video(run_dir: str, path: str, env_steps: int) -> None:
    """A run trained with --wandb gets its video in its W&B run (an mp4;
    W&B does not show Brax's HTML viewer)."""
    from pes_rl.runs import tracking

    if Path(run_dir).is_dir() and tracking.tracked(run_dir) and path.endswith("mp4"):
        tracking.log_video(run_dir, path, env_steps)
        print(f"logged {path} to the run's W&B run")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, exit status 2 (through main), instead of usage + message.
        raise ConfigError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pes_rl.evaluate",
        description="Evaluate the mean policy of a trained agent and optionally "
        "record one episode.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="run directory, or a checkpoint file"
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=10,
        help="evaluation episodes, on the fixed evaluation seeds training uses; "
        "0 skips the evaluation (default: 10)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        help="which policy of a run directory: best, the best evaluated one "
        "(checkpoints/best.pkl), or last, the newest checkpoint (default: best "
        "where the run kept one, else last)",
    )
    parser.add_argument(
        "--video",
        metavar="PATH",
        help="record one episode: an mp4 for Gymnasium agents, an HTML viewer "
        "(.html) for Brax agents",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_VIDEO_SEED,
        help="reset seed of the recorded episode (default: that of the first "
        "evaluation episode)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.episodes < 0:
            raise ConfigError("--episodes must be 0 or more")
        if args.video is not None:
            # Fail before loading and evaluating. A .html path asks for the
            # Brax viewer, which needs neither ffmpeg nor OpenGL.
            check_output(Path(args.video))
            if not args.video.endswith(".html"):
                check_ffmpeg()
                check_gl()  # before the agent's envs import MuJoCo
        # Evaluation needs no worker processes: a few episodes are not worth
        # spawning them.
        agent, which = _load(Path(args.run_dir), args.checkpoint, {"num_workers": 0})
        try:
            name = f"{type(agent).__name__} on {agent.env_name}"
            if args.episodes:
                returns = agent.evaluate_episodes(args.episodes)
                print(
                    f"{name} ({which} checkpoint), {agent.env_steps} training env "
                    "steps: eval return "
                    f"{returns.mean():.2f} ± {returns.std():.2f} over "
                    f"{args.episodes} episode{'s' if args.episodes > 1 else ''}",
                    flush=True,
                )
            if args.video is not None:
                info = record(agent, args.video, args.seed)
                print(
                    f"wrote {info['path']}: one episode of {name} "
                    f"({info['frames']} frames, seed {args.seed}, "
                    f"return {info['return']:.2f})"
                )
                _track_video(args.run_dir, info["path"], agent.env_steps)
        finally:
            agent.close()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
