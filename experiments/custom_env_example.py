"""Train PES on a user-defined Gymnasium environment (``my_env.py``).

    python experiments/custom_env_example.py            # from Python
    PYTHONPATH=experiments python -m pes_rl.train --env my_env:PointMass-v0 \\
        --truncation-length 10 --total-steps 20000 --eval-every 5000

The same env registered under a library name works too:
``pes_rl.envs.register("point_mass", gymnasium="my_env:PointMass", ...)``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # make my_env importable

import my_env  # noqa: E402  registers PointMass-v0 with Gymnasium

from pes_rl.agents import PES  # noqa: E402
from pes_rl.envs import register  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-steps", type=int, default=20_000)
    args = parser.parse_args()
    register("point_mass", gymnasium=my_env.PointMass, max_episode_steps=50)
    for env in ("PointMass-v0", "point_mass"):  # Gymnasium id, library name
        agent = PES(
            env=env,
            num_particles=10,
            truncation_length=10,
            sigma=0.1,
            learning_rate=0.05,
            optimizer="adam",
            fitness_shaping="none",
            obs_norm=False,
            policy_bias=True,
        )
        before = agent.evaluate(5)
        agent.learn(args.total_steps, progress_bar=False)
        print(f"{env}: mean return {before:.1f} -> {agent.evaluate(5):.1f}")
        agent.close()


if __name__ == "__main__":
    main()
