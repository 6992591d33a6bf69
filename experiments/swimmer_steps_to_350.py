"""Env steps to the first evaluation >= 350 on Swimmer, for train-CLI flags.

    python experiments/swimmer_steps_to_350.py LABEL BUDGET SEEDS [FLAGS...]
    THRESHOLD=325 python experiments/swimmer_steps_to_350.py LABEL BUDGET ...
    python experiments/swimmer_steps_to_350.py nres-sgd 200000 0,1,2,3,4 \\
        --algo nres --optimizer sgd --learning-rate 0.06 --learning-rate-final 0.005

Each seed trains the CLI's configuration for ``--env swimmer`` with FLAGS
(the preset, then the flags, the decays over BUDGET env steps) in this
process, evaluating the mean policy on 5 episodes every 10k env steps
(10 at the end, as the CLI's final evaluation did when the
numbers of docs/results/swimmer-time-to-350.md were measured). Counts env steps, not
seconds: evaluations this frequent would dominate the wall-clock. Prints
one line per seed and a summary line.
"""

import os
import sys

from pes_rl.agents import ALGORITHMS
from pes_rl.cli.flags import parse_config

EVERY = 10_000
THRESHOLD = float(os.environ.get("THRESHOLD", 350))  # the ARS paper's is 325


def run(flags: list[str], seed: int, budget: int) -> tuple[int | None, float, list]:
    """(env steps at the first evaluation >= THRESHOLD or None, final return,
    [(env steps, return)])."""
    argv = ["--env", "swimmer", "--seed", str(seed), "--total-steps", str(budget)]
    config = parse_config([*argv, *flags])
    agent = ALGORITHMS[config.algo](**config.agent_kwargs())
    curve, next_eval = [], 0
    try:
        while agent.env_steps < budget:
            if agent.env_steps >= next_eval:
                curve.append((agent.env_steps, agent.evaluate(5)))
                next_eval += EVERY
            agent.learn(1, progress_bar=False, reset_num_timesteps=False)  # one update
        curve.append((agent.env_steps, agent.evaluate(10)))
    finally:
        agent.close()
    first = next((steps for steps, r in curve if r >= THRESHOLD), None)
    return first, curve[-1][1], curve


def main() -> None:
    label, budget, seeds, *flags = sys.argv[1:]
    firsts, finals = [], []
    for seed in map(int, seeds.split(",")):
        first, final, curve = run(flags, seed, int(budget))
        firsts.append(first)
        finals.append(round(final, 1))
        shown = [(steps, round(r, 1)) for steps, r in curve[::3]]
        reached = f"first >= {THRESHOLD:g} at {first}"
        print(f"{label} seed {seed}: {reached}, final {final:.1f}, curve {shown}",
              flush=True)  # fmt: skip
    reached = f"first >= {THRESHOLD:g} at {firsts}"
    print(f"{label}: {reached}, finals {finals}, flags {flags}")


if __name__ == "__main__":
    main()
