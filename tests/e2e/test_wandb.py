"""--wandb: the TensorBoard scalars, the config and the evaluation video in a
W&B run (offline here: no network)."""

import glob
import json
import os
import subprocess
import sys

import pytest
import wandb_records

pytest.importorskip("wandb")


def run(*args, code=None):
    command = ["-c", code] if code else ["-m", *map(str, args)]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip


def run_file(run_dir):
    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    return path


def test_wandb_offline_run_holds_the_metrics_config_and_video(tmp_path):
    out = tmp_path / "run"
    result = run(
        "pes_rl.train", "--env", "swimmer", "--horizon", "20", "--num-particles",
        "4", "--truncation-length", "10", "--total-steps", "400", "--eval-every",
        "200", "--eval-episodes", "1", "--no-progress", "--wandb", "--run-dir", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    history = wandb_records.history(run_file(out))
    evals = [row for row in history if "eval/return" in row]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    # As in TensorBoard, the final evaluation follows one at the same step;
    # metrics.jsonl keeps the final one.
    assert {r["env_steps"]: r["eval/return"] for r in evals} == {
        m["env_steps"]: m["eval_return"] for m in metrics
    }
    train = [row for row in history if "train/window_return" in row]
    assert len(train) >= 4 and all("env_steps" in row for row in train)
    names = {key for row in history for key in row}
    for name in ("train/grad_norm", "train/sigma", "train/learning_rate"):
        assert name in names
    run_file_of_training = run_file(out)
    config = wandb_records.config(run_file_of_training)
    assert config["env"] == "swimmer" and config["num_particles"] == 4

    video = tmp_path / "swimmer.mp4"
    result = run(
        "pes_rl.evaluate", out, "--episodes", "0", "--video", video,
        "--checkpoint", "last",
    )  # fmt: skip
    if result.returncode == 2 and "cannot render" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert "logged" in result.stdout
    # Appended to the same W&B run (its id), by a second offline process.
    files = glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert {os.path.basename(path) for path in files} == {
        os.path.basename(run_file_of_training)
    }
    rows = [row for path in files for row in wandb_records.history(path)]
    logged = [row for row in rows if row.get("eval/video/_type") == "video-file"]
    assert len(logged) == 1 and logged[0]["env_steps"] == metrics[-1]["env_steps"]
    media = glob.glob(
        str(out / "wandb" / "offline-run-*" / "files" / logged[0]["eval/video/path"])
    )
    assert len(media) == 1 and os.path.getsize(media[0]) > 1000


def test_wandb_without_the_extra_is_one_line_and_writes_nothing(tmp_path):
    code = (
        "import sys; sys.modules['wandb'] = None\n"
        "from pes_rl.train import main\n"
        f"sys.exit(main(['--env', 'linear_quadratic', '--wandb', '--run-dir', "
        f"{str(tmp_path / 'r')!r}]))"
    )
    result = run(code=code)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "pes_rl[wandb]" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    out = tmp_path / "run"
    common = ["--no-progress", "--eval-every", "200", "--eval-episodes", "1"]
    result = run(
        "pes_rl.train", "--env", "linear_quadratic", "--total-steps", "400",
        "--num-particles", "4", "--wandb", "--wandb-project", "mine",
        "--run-dir", out, *common,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first = json.loads((out / "wandb.json").read_text())
    assert first["project"] == "mine"
    result = run("pes_rl.train", "--resume", out, "--total-steps", "800", *common)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "wandb.json").read_text()) == first
    files = glob.glob(str(out / "wandb" / "offline-run-*" / f"run-{first['id']}.wandb"))
    assert len(files) == 2  # one per process, one W&B run id
    steps = [
        row["env_steps"]
        for path in files
        for row in wandb_records.history(path)
        if "eval/return" in row
    ]
    assert max(steps) >= 800
