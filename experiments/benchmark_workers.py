"""Where host particles run: serial, the local process pool, Ray workers.

In one run, in alternating rounds so that the machine's noise is shared:
PES updates (N particles, K steps, linear policy, obs-norm) with the envs
stepped in this process, in the process pool (``--async-envs``: a block here
and one per worker process), and on 1 and 2 Ray workers. Reports env-steps/s
per setting, and for Ray the per-window overhead: the driver's wall-clock
for a window minus the slowest worker's time inside it (transfer,
(de)serialisation, scheduling), as a share of the window. Then a paper
estimate for Humanoid-v5 on more machines, from a Humanoid window's
measured cost per particle-step and the overhead measured here.

    python experiments/benchmark_workers.py --env swimmer --rounds 3

Start-up is building the agent and its first update (compiles, starts the
workers); starting Ray itself is reported apart.
"""

import argparse
import json
import time

import numpy as np

from pes_rl.agents import PES

SETTINGS = {
    "serial": {},
    "pool (1 worker process + this one)": {"num_workers": 1},
    "ray, 1 worker": {"workers": "ray", "num_workers": 1},
    "ray, 2 workers": {"workers": "ray", "num_workers": 2},
}


def measure(agent, windows: int) -> dict:
    """Seconds per update, and for Ray the window's driver and worker time."""
    backend = agent.loop.backend
    update, window, slowest = [], [], []
    first = agent.env_steps
    began = time.perf_counter()
    for _ in range(windows):
        start = time.perf_counter()
        agent.update()
        update.append(time.perf_counter() - start)
        if hasattr(backend, "worker_seconds"):
            window.append(backend.last_seconds)
            slowest.append(backend.worker_seconds.max())
    return {
        "env_steps": agent.env_steps - first,
        "seconds": time.perf_counter() - began,
        "update": update,
        "window": window,
        "slowest_worker": slowest,
    }


def humanoid_step_seconds(particles: int, steps: int) -> float:
    """Seconds per particle-step of a Humanoid-v5 window, serial, policy
    included (one jitted call per step)."""
    agent = PES(
        env="Humanoid-v5", num_particles=particles, truncation_length=steps,
        obs_norm=True, stagger=False, seed=0, preset=None,
    )  # fmt: skip
    agent.update()  # compiles
    start, first = time.perf_counter(), agent.env_steps
    for _ in range(3):
        agent.update()
    seconds = (time.perf_counter() - start) / (agent.env_steps - first)
    agent.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--num-particles", type=int, default=32)
    parser.add_argument("--truncation-length", type=int, default=100)
    parser.add_argument("--windows", type=int, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmark_workers.json")
    args = parser.parse_args()

    import ray

    # Three Ray workers are alive at once here: one logical CPU each.
    began = time.perf_counter()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - began
    agents, startup = {}, {}
    for name, extra in SETTINGS.items():
        began = time.perf_counter()
        agents[name] = PES(
            env=args.env, num_particles=args.num_particles,
            truncation_length=args.truncation_length, obs_norm=True,
            stagger=False, seed=0, preset=None, **extra,
        )  # fmt: skip
        agents[name].update()  # compiles, starts the workers
        startup[name] = time.perf_counter() - began
    results = {name: [] for name in SETTINGS}
    for round_ in range(args.rounds):
        for name, agent in agents.items():
            results[name].append(measure(agent, args.windows))
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    thetas = {name: np.asarray(agent.theta) for name, agent in agents.items()}
    for agent in agents.values():
        agent.close()

    rows = []
    for name, runs in results.items():
        steps = sum(r["env_steps"] for r in runs)
        seconds = sum(r["seconds"] for r in runs)
        window = np.concatenate([r["window"] for r in runs])
        slowest = np.concatenate([r["slowest_worker"] for r in runs])
        row = {
            "setting": name,
            "startup_s": startup[name],
            "env_steps_per_s": steps / seconds,
            "update_ms": 1e3 * np.median(np.concatenate([r["update"] for r in runs])),
        }
        if window.size:
            overhead = window - slowest
            row["window_ms"] = 1e3 * np.median(window)
            row["overhead_ms"] = 1e3 * np.median(overhead)
            row["overhead_share"] = float(np.median(overhead / window))
        rows.append(row)
    serial = rows[0]["env_steps_per_s"]
    same = all(np.array_equal(t, thetas["serial"]) for t in thetas.values())
    print(
        f"\n{args.env}, N = {args.num_particles}, K = {args.truncation_length}, "
        f"{args.rounds} x {args.windows} updates per setting; the four runs end "
        f"with {'the same' if same else 'DIFFERENT'} theta\n"
    )
    print(
        "| setting | env-steps/s | vs serial | update (ms) | start-up (s) "
        "| Ray overhead |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        overhead = (
            f"{row['overhead_ms']:.1f} ms = {100 * row['overhead_share']:.1f} % "
            f"of a {row['window_ms']:.0f} ms window"
            if "overhead_ms" in row
            else "–"
        )
        print(
            f"| {row['setting']} | {row['env_steps_per_s']:,.0f} | "
            f"{row['env_steps_per_s'] / serial:.2f} | {row['update_ms']:.0f} | "
            f"{row['startup_s']:.1f} | {overhead} |"
        )

    step = humanoid_step_seconds(particles=4, steps=100)
    overhead = max(r.get("overhead_ms", 0.0) for r in rows) / 1e3
    print(f"\nHumanoid-v5: {1e6 * step:.0f} us per particle-step here (serial).")
    estimate = []
    for machines, cores in ((1, 2), (4, 16)):
        workers = machines * cores
        pairs = 2 * workers  # two pairs per worker
        window = 4 * args.truncation_length * step + overhead
        rate = 2 * pairs * args.truncation_length / window
        estimate.append({"machines": machines, "cores": cores, "particles":
                         2 * pairs, "env_steps_per_s": rate})  # fmt: skip
        print(
            f"{machines} x {cores} cores, {workers} workers of 2 pairs, "
            f"N = {2 * pairs}: about {rate:,.0f} env-steps/s"
        )
    summary = {
        "args": vars(args),
        "rows": rows,
        "ray_start_s": ray_start,
        "same_theta": same,
        "humanoid_step_seconds": step,
        "estimate": estimate,
    }
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
