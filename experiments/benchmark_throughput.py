"""Training throughput against stepping the same environments with no learning.

In one run, alternating to share the machine's noise fairly:
- baseline: N sub-environments made exactly as the agent makes them, stepped
  in a plain Python loop with the zero action, reset when their episode ends;
- training: the agent's ``learn`` over the same number of env steps (after
  one update that compiles everything, so compile time is reported apart).
Prints both rates in env-steps/s and their ratio (goal: >= 0.85). MuJoCo's
step costs more for a body that moves than for one at rest, so the same
stepping with uniformly random actions is reported as a second reference.

    python experiments/benchmark_throughput.py --env swimmer --steps 200000
"""

import argparse
import json
import time

import numpy as np

from pes_rl.agents import ALGORITHMS
from pes_rl.envs.registry import gymnasium_factory


def plain_loop_rate(env: str, num_envs: int, steps: int, random: bool) -> float:
    make_env, _, _ = gymnasium_factory(env, None)
    envs = [make_env() for _ in range(num_envs)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
    space = envs[0].action_space
    rng = np.random.default_rng(0)
    actions = np.zeros((steps // num_envs + 1, num_envs, *space.shape), np.float32)
    if random:
        actions[:] = rng.uniform(space.low, space.high, actions.shape)
    start, done_steps = time.perf_counter(), 0
    while done_steps < steps:
        step_actions = actions[done_steps // num_envs]
        for i, e in enumerate(envs):
            _, _, terminated, truncated, _ = e.step(step_actions[i])
            if terminated or truncated:
                e.reset(seed=i)
        done_steps += num_envs
    return done_steps / (time.perf_counter() - start)


def training_rate(algo: str, env: str, steps: int, **kwargs) -> tuple[float, float]:
    start = time.perf_counter()
    agent = ALGORITHMS[algo](env=env, preset=None, **kwargs)
    agent.update()  # compiles
    startup = time.perf_counter() - start
    first, start = agent.env_steps, time.perf_counter()
    agent.learn(steps, progress_bar=False, reset_num_timesteps=False)
    rate = (agent.env_steps - first) / (time.perf_counter() - start)
    agent.close()
    return rate, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--algo", default="pes", choices=sorted(ALGORITHMS))
    parser.add_argument("--num-particles", type=int, default=20)
    parser.add_argument("--truncation-length", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--num-workers", type=int, default=0, help="agent env worker processes"
    )
    args = parser.parse_args()
    kwargs = dict(
        num_particles=args.num_particles,
        truncation_length=args.truncation_length,
        fitness_shaping="std",
        num_workers=args.num_workers,
    )
    baseline, random_baseline, training, startup = [], [], [], []
    for _ in range(args.repeats):
        baseline.append(
            plain_loop_rate(args.env, args.num_particles, args.steps, random=False)
        )
        random_baseline.append(
            plain_loop_rate(args.env, args.num_particles, args.steps, random=True)
        )
        rate, seconds = training_rate(args.algo, args.env, args.steps, **kwargs)
        training.append(rate)
        startup.append(seconds)
    result = {
        "env": args.env,
        "algo": args.algo,
        "num_envs": args.num_particles,
        "agent_num_workers": args.num_workers,
        "steps_per_measurement": args.steps,
        "zero_policy_steps_per_s": round(float(np.median(baseline))),
        "training_steps_per_s": round(float(np.median(training))),
        "ratio": round(float(np.median(training) / np.median(baseline)), 3),
        "random_action_steps_per_s": round(float(np.median(random_baseline))),
        "ratio_to_random_action": round(
            float(np.median(training) / np.median(random_baseline)), 3
        ),
        "startup_seconds": round(float(np.median(startup)), 2),
        "all_zero_policy": [round(x) for x in baseline],
        "all_training": [round(x) for x in training],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
