"""What a Swimmer-v5 step costs, and how much faster batched physics could be.

The host backend steps each env through Gymnasium. This measures, per env
step of ``--envs`` Swimmers and as ratios against that, the cost of MuJoCo's
own ``mj_step`` (4 substeps, the env's frame skip) called directly, the same
split over two threads (the binding releases the GIL), and
``mujoco.rollout`` with two threads, which steps all envs in one C call. The
ways are measured in alternation, ``--rounds`` times; medians are reported.

    python experiments/swimmer_step_cost.py [--envs 20] [--steps 300] [--rounds 5]
"""

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    envs = [gym.make("Swimmer-v5") for _ in range(args.envs)]
    for seed, env in enumerate(envs):
        env.reset(seed=seed)
    model = envs[0].unwrapped.model
    datas = [env.unwrapped.data for env in envs]
    frame_skip = envs[0].unwrapped.frame_skip
    action = np.full(model.nu, 0.5)
    halves = [datas[: args.envs // 2], datas[args.envs // 2 :]]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = np.zeros((args.envs, mujoco.mj_stateSize(model, spec)))
    for data, state in zip(datas, states, strict=True):
        mujoco.mj_getState(model, data, state, spec)
    controls = np.tile(action, (args.envs, frame_skip, 1))

    def physics(some_datas):
        for data in some_datas:
            data.ctrl[:] = action
            mujoco.mj_step(model, data, nstep=frame_skip)

    with ThreadPoolExecutor(2) as threads, rollout.Rollout(nthread=2) as roller:
        thread_datas = [mujoco.MjData(model) for _ in range(2)]

        def batched():
            nonlocal states
            out, _ = roller.rollout([model] * args.envs, thread_datas, states, controls)
            states = out[:, -1]

        ways = {
            "gymnasium env.step": lambda: [env.step(action) for env in envs],
            "mj_step": lambda: physics(datas),
            "mj_step, 2 threads": lambda: list(threads.map(physics, halves)),
            "mujoco.rollout, 2 threads": batched,
        }
        times = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, step in ways.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                elapsed = time.perf_counter() - start
                times[name].append(elapsed / args.steps / args.envs * 1e6)

    base = statistics.median(times["gymnasium env.step"])
    result = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        result[name] = {"us_per_env_step": round(median, 1), "ratio": median / base}
        print(f"{name:28s} {median:6.1f} us per env step  {median / base:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
