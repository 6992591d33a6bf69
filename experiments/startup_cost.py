"""Where the first seconds of ``python -m pes_rl.train --env swimmer`` go.

    python experiments/startup_cost.py
    python experiments/startup_cost.py --baseline OTHER_VENV/bin/python

For each interpreter (this one, and the baseline's: another checkout's
install), alternating round by round so that both see the same machine:

- ``import jax`` and ``import pes_rl.train``: process wall-clock, interpreter
  start included;
- the CLI on Swimmer: from launching the process to its first metrics line
  (the step-0 evaluation, after building the envs and the agent), found by
  polling the file.

Prints the medians, and the ratios to the baseline when there is one;
writes ``experiments/results/startup_cost.json``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def seconds_to_exit(python: str, code: str) -> float:
    began = time.perf_counter()
    # Elsewhere than a checkout: ``python -c`` puts the working directory
    # first on sys.path, where it would shadow the interpreter's install.
    subprocess.run([python, "-c", code], check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - began


def seconds_to_first_line(python: str) -> float:
    """Launch the CLI, time its first metrics line, and stop it."""
    with tempfile.TemporaryDirectory() as scratch:
        metrics = Path(scratch, "run", "metrics.jsonl")
        flags = ["--env", "swimmer", "--run-dir", str(metrics.parent)]
        flags += ["--no-progress", "--total-steps", "2000"]
        began = time.perf_counter()
        process = subprocess.Popen(
            [python, "-m", "pes_rl.train", *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=scratch,
        )
        while not (metrics.is_file() and metrics.read_text().endswith("\n")):
            if process.poll() is not None:
                raise SystemExit(f"{python}: the run ended without a metrics line")
            time.sleep(0.005)
        seconds = time.perf_counter() - began
        process.terminate()
        process.wait()
    return seconds


def measure(python: str) -> dict[str, float]:
    return {
        "import_jax": seconds_to_exit(python, "import jax"),
        "import_pes_rl_train": seconds_to_exit(python, "import pes_rl.train"),
        "first_evaluation": seconds_to_first_line(python),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="python of another install to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS / "startup_cost.json"))
    args = parser.parse_args()
    pythons = {"this": sys.executable}
    if args.baseline:
        pythons["baseline"] = args.baseline
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in pythons}
    for round_ in range(args.rounds):
        for name, python in pythons.items():
            samples[name].append(measure(python))
        print(f"round {round_ + 1}/{args.rounds}", file=sys.stderr)
    versions = {
        name: subprocess.run(
            [python, "-c", "import jax, ml_dtypes; print(jax.__version__, "
             "ml_dtypes.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        for name, python in pythons.items()
    }  # fmt: skip
    result = {
        name: {
            "python": python,
            "jax": versions[name][0],
            "ml_dtypes": versions[name][1],
            **{
                phase: round(statistics.median(s[phase] for s in samples[name]), 3)
                for phase in samples[name][0]
            },
        }
        for name, python in pythons.items()
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    columns = [*pythons, "this / baseline"] if args.baseline else [*pythons]
    print(f"| phase (median of {args.rounds}, s) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for phase in samples["this"][0]:
        row = [str(result[name][phase]) for name in pythons]
        if args.baseline:
            ratio = result["this"][phase] / result["baseline"][phase]
            row.append(f"{ratio:.2f}x")
        print(f"| {phase} | " + " | ".join(row) + " |")
    for name in pythons:
        print(
            f"{name}: jax {result[name]['jax']}, ml_dtypes {result[name]['ml_dtypes']}"
        )


if __name__ == "__main__":
    main()
