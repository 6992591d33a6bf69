"""Interrupt a training run with SIGTERM at about half its budget, resume
it, and compare with the same run left alone.

    python experiments/interrupt_and_resume.py --env swimmer --seed 0

Prints both final evaluation returns. The resumed run restarts its
particles' episodes (accumulators cleared), so it is not bit-identical to
the uninterrupted one; it should land in the same band.
"""

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def train(*flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pes_rl.train", "--no-progress", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def last_line(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--total-steps", type=int, default=600_000)
    parser.add_argument("--out", default="runs/interrupt")
    parser.add_argument("extra", nargs="*", help="flags for the train CLI")
    args = parser.parse_args()
    out = Path(args.out)
    common = ["--env", args.env, "--seed", args.seed, *args.extra]
    common += ["--total-steps", str(args.total_steps)]

    whole = out / "uninterrupted"
    assert train(*common, "--run-dir", str(whole)).wait() == 0

    cut = out / "interrupted"
    process = train(*common, "--run-dir", str(cut))
    while True:  # stop once an evaluation past half the budget is written
        time.sleep(0.2)
        path = cut / "metrics.jsonl"
        if path.exists() and last_line(cut)["env_steps"] >= args.total_steps // 2:
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate()
    print(err.strip().splitlines()[-1])
    resumed = subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--resume", str(cut), "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    print(resumed.stderr.strip().splitlines()[-1])
    print(json.dumps({"uninterrupted": last_line(whole), "resumed": last_line(cut)}))


if __name__ == "__main__":
    main()
