"""Slow tier: the Swimmer and HalfCheetah reproduction scripts in
``experiments/`` run in their ``--quick`` mode (tiny budgets, one seed) in a
subprocess into a temporary directory and write their tables, CSVs and
plots. The budgets are too small to test learning beyond a loose check on
Swimmer, where PES and NRES improve within 40k steps and truncated ES does
not.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_quick(script: str, out: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), "--quick", "--out", str(out)]
        + list(extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def curves(path: Path) -> dict[tuple[str, str, int], list[dict[str, str]]]:
    runs: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["setting"], row["algo"], int(row["seed"]))
            runs.setdefault(key, []).append(row)
    return runs


@pytest.mark.slow
def test_swimmer_paper_quick(tmp_path):
    stdout = run_quick("swimmer_paper.py", tmp_path)
    for name in ("steps", "seconds"):
        assert (tmp_path / f"swimmer_paper_{name}.png").stat().st_size > 0
    assert "| paper | PES |" in stdout
    assert (tmp_path / "swimmer_paper_table.md").read_text().count("| paper |") == 4

    runs = curves(tmp_path / "swimmer_paper_curves.csv")
    paper = {
        algo: rows for (setting, algo, _), rows in runs.items() if setting == "paper"
    }
    assert set(paper) == {"pes", "nres", "tes", "es"}
    for rows in paper.values():
        assert int(rows[-1]["env_steps"]) >= 40_000
        assert float(rows[-1]["seconds"]) > 0
    final = {algo: float(rows[-1]["eval_return"]) for algo, rows in paper.items()}
    # PES and NRES learn quickly with the paper's settings; TES stalls.
    assert final["pes"] > 150 and final["nres"] > 150, final
    assert final["tes"] < 100, final

    summary = json.loads((tmp_path / "swimmer_paper_summary.json").read_text())
    assert summary["paper_settings"]["tes"] == {"sigma": 0.1, "learning_rate": 0.1}
    config = json.loads(
        (tmp_path / "runs" / "paper-es-seed0" / "config.json").read_text()
    )
    # Explicit sigma and lr drop the preset's decays; FullES runs whole episodes.
    assert config["sigma_final"] is None and config["learning_rate_final"] is None
    assert config["optimizer"] == "sgd" and config["truncation_length"] == 1000


@pytest.mark.slow
def test_halfcheetah_quick(tmp_path):
    run_quick("halfcheetah_nres.py", tmp_path)
    assert (tmp_path / "halfcheetah.png").stat().st_size > 0
    runs = curves(tmp_path / "halfcheetah_curves.csv")
    assert {algo for _, algo, _ in runs} == {"pes", "nres", "es"}
    summary = json.loads((tmp_path / "halfcheetah_summary.json").read_text())
    assert all(c["obs_norm"] for c in summary["configs"].values())
    assert {m["algo"] for m in summary["methods"]} == {"pes", "nres", "es"}


@pytest.mark.slow
def test_halfcheetah_sweep_quick(tmp_path):
    stdout = run_quick("halfcheetah_nres.py", tmp_path, "--sweep")
    assert (tmp_path / "halfcheetah_sweep.png").stat().st_size > 0
    summary = json.loads((tmp_path / "halfcheetah_sweep_summary.json").read_text())
    assert [s["setting"] for s in summary["settings"]] == ["pes base", "nres base"]
    assert "| pes base |" in stdout
