"""Training env-steps/s of the gymnasium and mujoco backends, in one run.

For each env (its preset: particles, window) and each thread count, one
PES agent per backend is built and warmed up (compilation, the staggered
start), then timed in alternating rounds of updates, so that a busy machine
slows both alike. Threads: the mujoco backend's batch threads; for the
gymnasium backend the same parallelism as worker processes (threads - 1
workers and this process). Also timed: the physics alone, the same Batch
(particles, threads, frame skip) stepped with zero controls and nothing
else. Reported: medians over rounds, the ratio mujoco / gymnasium, the
fraction of the physics-only rate that training reaches, and the share of
training's time spent in the batch's step (the rest: the jitted policy
call, numpy observations and rewards, Ant's contact forces, the window
bookkeeping, the update).

    python experiments/benchmark_mujoco.py --rounds 3 --seconds 3 2>/dev/null

(stderr: MuJoCo's compiler warns once per HalfCheetah env built.)
"""

import argparse
import json
import time

import numpy as np
from mujoco.batch import Batch

from pes_rl.agents import PES
from pes_rl.envs.registry import gymnasium_factory, gymnasium_id

ENVS = ("swimmer", "halfcheetah", "hopper", "walker2d", "ant")


def agent(env: str, backend: str, threads: int) -> PES:
    built = PES(env=env, backend=backend, num_workers=threads - 1, seed=0)
    built.update()  # compiles, and runs the staggered warm-up windows
    built.update()
    return built


class StepClock:
    """Seconds spent in the batch's ``step`` (the physics), wrapped around
    the pool's batch."""

    def __init__(self, pool):
        self.seconds, self.step = 0.0, pool.batch.step
        pool.batch.step = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        self.step(*args, **kwargs)
        self.seconds += time.perf_counter() - start


def training_rate(built: PES, seconds: float) -> tuple[float, float, float]:
    """Env steps per second of wall-clock and per second of this process's
    CPU time over updates for at least ``seconds``, and the share of the
    wall-clock in the batch's step (mujoco backend; else 0)."""
    clock = getattr(built.loop.backend.pool, "batch", None)
    clock = clock.step if isinstance(getattr(clock, "step", None), StepClock) else None
    first = steps = built.update()["env_steps"]
    spent = clock.seconds if clock else 0.0
    start, cpu = time.perf_counter(), time.process_time()
    now = start
    while now - start < seconds:
        steps = built.update()["env_steps"]
        now = time.perf_counter()
    share = (clock.seconds - spent) / (now - start) if clock else 0.0
    done = steps - first
    return done / (now - start), done / (time.process_time() - cpu), share


def physics_rate(env: str, num_envs: int, threads: int, steps: int) -> tuple:
    """Env steps per second (wall, CPU) of the batch alone, zero controls."""
    make_env, _, _ = gymnasium_factory(env, None)
    gym_env = make_env()
    inner = gym_env.unwrapped
    batch = Batch(inner.model, num_envs, threads)
    batch.reset()
    batch.bind("ctrl")[:] = 0.0
    batch.step(nstep=inner.frame_skip)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        batch.step(nstep=inner.frame_skip)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    gym_env.close()
    return num_envs * steps / wall, num_envs * steps / cpu


def measure(env: str, threads: int, rounds: int, seconds: float) -> dict:
    agents = {name: agent(env, name, threads) for name in ("gymnasium", "mujoco")}
    StepClock(agents["mujoco"].loop.backend.pool)
    num_envs = len(agents["mujoco"].loop.backend.partner)
    window = agents["mujoco"].config.truncation_length
    rates = {}
    try:
        for _ in range(rounds):
            for name, built in agents.items():
                wall, cpu, share = training_rate(built, seconds)
                rates.setdefault(name, []).append(wall)
                rates.setdefault(f"{name}_cpu", []).append(cpu)
            rates.setdefault("share", []).append(share)
            wall, cpu = physics_rate(env, num_envs, threads, window)
            rates.setdefault("physics", []).append(wall)
            rates.setdefault("physics_cpu", []).append(cpu)
    finally:
        for built in agents.values():
            built.close()
    m = {name: float(np.median(values)) for name, values in rates.items()}
    return {
        "env": gymnasium_id(env),
        "threads": threads,
        "particles": num_envs,
        **{f"{name}_steps_per_s": round(m[name]) for name in rates if name != "share"},
        "speedup": round(m["mujoco"] / m["gymnasium"], 2),
        "of_physics": round(m["mujoco"] / m["physics"], 2),
        # per CPU-second: all the work is in this process with one thread
        "cpu_speedup": round(m["mujoco_cpu"] / m["gymnasium_cpu"], 2),
        "cpu_of_physics": round(m["mujoco_cpu"] / m["physics_cpu"], 2),
        "batch_share": round(m["share"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(
        "| env | threads | N | gymnasium steps/s | mujoco steps/s | speedup "
        "| physics only steps/s | training / physics | in Batch.step "
        "| speedup per CPU-s | training / physics per CPU-s |"
    )
    print("|---" * 11 + "|")
    rows = []
    for env in args.envs:
        for threads in args.threads:
            row = measure(env, threads, args.rounds, args.seconds)
            rows.append(row)
            cpu = threads == 1  # else other processes' or threads' CPU time
            print(
                f"| {row['env']} | {threads} | {row['particles']} "
                f"| {row['gymnasium_steps_per_s']} | {row['mujoco_steps_per_s']} "
                f"| {row['speedup']}x | {row['physics_steps_per_s']} "
                f"| {row['of_physics']} | {row['batch_share']} "
                f"| {str(row['cpu_speedup']) + 'x' if cpu else '-'} "
                f"| {row['cpu_of_physics'] if cpu else '-'} |",
                flush=True,
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
