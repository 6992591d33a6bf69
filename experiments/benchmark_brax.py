"""Brax training throughput against jitted, vmapped stepping of the same env.

In one process, alternating the two to share the machine's noise:
- baseline: ``lax.scan`` over K steps of ``vmap(env.step)`` with the zero
  action on the same number of envs, jitted, the carry donated;
- training: the agent's ``learn`` over the same number of env steps, in
  device calls of ``--updates-per-call`` updates (after a first call that
  compiles, reported apart).
Prints both rates in env-steps/s and their ratio (goal: >= 0.9). A body at
rest can cost more to simulate than a moving one (CPU denormals), so the
same stepping with uniformly random actions is reported as a second
reference. With
``--devices 1 2`` each count runs in its own process with
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (particles sharded).

    python experiments/benchmark_brax.py --env swimmer --devices 1 2
"""

import argparse
import json
import os
import subprocess
import sys
import time


def measure(args) -> dict:
    import jax
    import jax.numpy as jnp

    from pes_rl.agents import ALGORITHMS

    agent = ALGORITHMS[args.algo](
        env=args.env,
        backend="brax",
        num_particles=args.num_particles,
        truncation_length=args.truncation_length,
        updates_per_call=args.updates_per_call,
        fitness_shaping="std",
        sigma=0.1,
        learning_rate=0.01,
        optimizer="adam",
        preset=None,  # the settings above and AgentConfig's for the rest
    )
    env, num_envs, window = agent.problem.env, agent.num_envs, agent.truncation_length
    sharding = (
        agent.loop.engine.by_particle if num_envs % jax.device_count() == 0 else None
    )

    def unroll(state, actions):
        """One call's worth: updates_per_call windows of K steps."""

        def step(state, action):
            state = jax.vmap(env.step)(state, action)
            return state, state.reward

        def window_fn(state, window_actions):
            state, rewards = jax.lax.scan(step, state, window_actions)
            return state, rewards.sum()

        return jax.lax.scan(window_fn, state, actions)

    keys = jax.random.split(jax.random.key(0), num_envs)
    state = jax.jit(jax.vmap(env.reset))(jax.random.key_data(keys))
    if sharding is not None:
        state = jax.device_put(state, sharding)
    baseline_fn = jax.jit(unroll, donate_argnums=0)
    shape = (args.updates_per_call, window, num_envs, env.action_size)
    zero_actions = jnp.zeros(shape)
    random_actions = jax.random.uniform(jax.random.key(1), shape, minval=-1.0)
    start = time.perf_counter()
    state, rewards = baseline_fn(state, zero_actions)
    rewards.block_until_ready()
    baseline_compile = time.perf_counter() - start

    start = time.perf_counter()
    agent.learn(1, progress_bar=False)  # warm-up and one call: compiles
    train_startup = time.perf_counter() - start

    calls = max(1, args.steps // (num_envs * window * args.updates_per_call))
    steps = calls * args.updates_per_call * num_envs * window

    # Each baseline keeps its own env states from the same reset.
    states = {"zero": state, "random": jax.tree.map(jnp.copy, state)}

    def stepping_rate(name, actions):
        start = time.perf_counter()
        for _ in range(calls):
            states[name], rewards = baseline_fn(states[name], actions)
        rewards.block_until_ready()
        return steps / (time.perf_counter() - start)

    baseline, random_baseline, training = [], [], []
    for _ in range(args.repeats):
        baseline.append(stepping_rate("zero", zero_actions))
        random_baseline.append(stepping_rate("random", random_actions))

        first, start = agent.env_steps, time.perf_counter()
        agent.learn(steps, progress_bar=False, reset_num_timesteps=False)
        training.append((agent.env_steps - first) / (time.perf_counter() - start))
    baseline.sort()
    random_baseline.sort()
    training.sort()
    median = args.repeats // 2
    return {
        "devices": jax.device_count(),
        "num_envs": num_envs,
        "updates_per_call": args.updates_per_call,
        "baseline_steps_per_s": round(baseline[median]),
        "training_steps_per_s": round(training[median]),
        "ratio": round(training[median] / baseline[median], 3),
        "random_actions_steps_per_s": round(random_baseline[median]),
        "ratio_to_random_actions": round(training[median] / random_baseline[median], 3),
        "baseline_compile_s": round(baseline_compile, 1),
        "training_startup_s": round(train_startup, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--algo", default="pes")
    parser.add_argument("--num-particles", type=int, default=20)
    parser.add_argument("--truncation-length", type=int, default=100)
    parser.add_argument("--updates-per-call", type=int, default=25)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="*", default=None)
    args = parser.parse_args()
    if args.devices is None:
        print(json.dumps(measure(args)))
        return
    for count in args.devices:
        flags = f"--xla_force_host_platform_device_count={count}"
        argv = [a for a in sys.argv[1:]]
        cut = argv.index("--devices")
        argv = argv[:cut] + [
            a for a in argv[cut + 1 + len(args.devices) :] if a != "--devices"
        ]
        out = subprocess.run(
            [sys.executable, __file__, *argv],
            env={**os.environ, "XLA_FLAGS": flags},
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
