"""The files of a run under faults: kills and a full disk at the writes,
a damaged checkpoint on resume, TensorBoard on kill -9, and their
permissions under any umask (issue 30, items 10-13, 16; the checks that
run no training are in integration/test_run_file_safety.py)."""

import builtins
import errno
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys

import pytest

from pes_rl.cli import evaluate
from pes_rl.cli.train import main
from pes_rl.runs.checkpoints import checkpoint_files, read, read_latest

FLAGS = ["--env", "linear_quadratic", "--eval-every", "4000", "--no-progress"]

# ``python -c KILL_AT_WRITE PATTERN COUNT ARGS...`` runs ``pes_rl.train ARGS``
# and SIGKILLs it half-way through writing the COUNT-th file opened for
# writing whose name matches PATTERN: at the worst moment of that write.
KILL_AT_WRITE = r"""
import builtins, io, os, re, signal, sys

pattern, count, real_open = re.compile(sys.argv[1]), int(sys.argv[2]), io.open
seen = []


class Dying:
    def __init__(self, file):
        self.file = file

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.file.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.file, name)


def dying_open(file, mode="r", *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    name = os.path.basename(os.readlink(f"/proc/self/fd/{opened.fileno()}"))
    if "w" in mode and pattern.search(name):
        seen.append(name)
        if len(seen) == count:
            return Dying(opened)
    return opened


io.open = builtins.open = dying_open
from pes_rl.cli.train import main

sys.exit(main(sys.argv[3:]))
"""


def train(*args, kill_at: str | None = None, count: int = 1):
    command = (
        [sys.executable, "-c", KILL_AT_WRITE, kill_at, str(count)]
        if kill_at
        else [sys.executable, "-m", "pes_rl.train"]
    )
    return subprocess.run(
        command + list(args), capture_output=True, text=True, timeout=300
    )


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def curve(run_dir):
    return [(m["env_steps"], m["eval_return"]) for m in metrics(run_dir)]


def temporaries(run_dir):
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 12k-step run: what every stopped run below must end as."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    out = train(*FLAGS, "--total-steps", "12000", "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stderr
    return run_dir


# -- item 10: --resume rewrites config.json and metrics.jsonl ---------------


@pytest.mark.parametrize("name", ["config", "metrics"])
def test_a_kill_while_resume_rewrites_a_file_loses_nothing(
    finished_run, tmp_path, name
):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    out = train(
        "--resume", str(run_dir), "--total-steps", "16000", kill_at=rf"^\.?{name}\."
    )
    assert out.returncode == -signal.SIGKILL, out.stderr  # killed at that write
    # Either the old file or the new one, whole.
    assert json.loads((run_dir / "config.json").read_text())["total_steps"] in (
        12000,
        16000,
    )
    assert (run_dir / "metrics.jsonl").read_text().splitlines() == lines
    assert main(["--resume", str(run_dir), "--total-steps", "16000"]) == 0
    after = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert after[: len(lines)] == lines
    assert metrics(run_dir)[-1]["env_steps"] >= 16000
    assert not temporaries(run_dir)


# -- item 13: a run stopped before its first checkpoint ----------------------


def test_a_run_killed_before_its_first_checkpoint_starts_again_on_resume(
    finished_run, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    flags = [*FLAGS, "--total-steps", "12000", "--run-dir", str(run_dir)]
    out = train(*flags, kill_at=r"^\.?ckpt-")
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert (run_dir / "config.json").is_file() and not checkpoint_files(run_dir)
    assert main(flags) == 2  # a new run into it is refused, with the way out
    assert f"--resume {run_dir}" in capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["--resume", str(run_dir)]) == 0
    assert "from scratch" in capsys.readouterr().err
    assert curve(run_dir) == curve(finished_run)
    assert not temporaries(run_dir)


# -- item 12: a full disk ----------------------------------------------------


def test_a_full_disk_is_one_line_and_the_run_resumes_once_space_is_freed(
    finished_run, tmp_path, monkeypatch, capsys
):
    """The disk fills half-way through the second checkpoint."""
    run_dir = tmp_path / "run"
    real_open, opened = io.open, []

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self.file, name)

    def full_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{f.fileno()}"))
        if "w" in mode and name.lstrip(".").startswith("ckpt-"):
            opened.append(name)
            return Full(f) if len(opened) == 2 else f
        return f

    monkeypatch.setattr(io, "open", full_open)
    monkeypatch.setattr(builtins, "open", full_open)
    status = main([*FLAGS, "--total-steps", "12000", "--run-dir", str(run_dir)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 1 and len(opened) == 2
    assert "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith("error: no space left on device to write ")
    assert str(run_dir / "checkpoints") in line
    assert re.search(r"\(\d+(\.\d)? (bytes|[KMG]iB) free\)", line)
    assert not temporaries(run_dir)  # the partial file is gone
    assert len(checkpoint_files(run_dir)) == 1

    assert main(["--resume", str(run_dir)]) == 0
    assert curve(run_dir) == curve(finished_run)


# -- item 11: damaged checkpoints --------------------------------------------


def test_evaluate_and_resume_skip_a_damaged_checkpoint_with_one_warning(
    finished_run, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    newest, previous = checkpoint_files(run_dir)[:2]
    # Flip one bit of the policy's parameters: the file unpickles as before.
    saved = read(newest)
    theta = saved["state"].theta.tobytes()
    data = bytearray(newest.read_bytes())
    at = data.find(theta) + len(theta) // 2
    data[at] ^= 0x10
    newest.write_bytes(bytes(data))

    assert evaluate.main([str(run_dir), "--episodes", "1", "--checkpoint", "last"]) == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert len(warnings) == 1 and newest.name in warnings[0]
    state, path = read_latest(run_dir)
    assert path == previous
    assert main(["--resume", str(run_dir), "--total-steps", "14000"]) == 0
    assert f"from {previous.name}" in capsys.readouterr().err


# -- item 15: temporary names, symlinks and permissions ---------------------


# -- item 16: TensorBoard and kill -9 -----------------------------------------


def scalar_points(run_dir) -> list[tuple[str, int]]:
    """(tag, step) of every scalar in the run's event files; a record cut
    short by the kill ends its file."""
    from tensorboardX.proto.event_pb2 import Event

    points = []
    for path in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        data, offset = path.read_bytes(), 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            record = data[offset + 12 : offset + 12 + length]
            if len(record) < length or offset + 16 + length > len(data):
                break
            offset += 16 + length
            event = Event.FromString(record)
            points += [(value.tag, event.step) for value in event.summary.value]
    return points


def test_tensorboard_points_logged_before_a_checkpoint_survive_kill_9(tmp_path):
    """Killed while writing the checkpoint of its second evaluation: the
    evaluation's point, logged just before, and every update's are on disk."""
    run_dir = tmp_path / "run"
    flags = ["--total-steps", "400000", "--run-dir", str(run_dir)]
    out = train(*FLAGS, *flags, kill_at=r"^\.?ckpt-", count=2)
    assert out.returncode == -signal.SIGKILL, out.stderr
    evaluation = metrics(run_dir)[-1]
    assert evaluation["env_steps"] >= 4000 and len(metrics(run_dir)) == 2
    points = scalar_points(run_dir)
    assert sorted(step for tag, step in points if tag == "eval/return") == [
        0,
        evaluation["env_steps"],
    ]
    # One point per update before the evaluation's (logged after it).
    sigma = [step for tag, step in points if tag == "train/sigma"]
    assert len(sigma) == len(set(sigma)) == evaluation["update"] - 1
    assert max(sigma) < evaluation["env_steps"]


def test_run_files_are_writable_by_their_owner_alone_whatever_the_umask(tmp_path):
    run_dir = tmp_path / "runs" / "run"
    umask = os.umask(0)
    try:
        status = main([*FLAGS, "--total-steps", "4000", "--run-dir", str(run_dir)])
    finally:
        os.umask(umask)
    assert status == 0
    paths = [run_dir.parent, run_dir, *run_dir.rglob("*")]
    assert any(p.name.startswith("ckpt-") for p in paths)
    loose = [p for p in paths if p.lstat().st_mode & 0o022]
    assert not loose
    # Reading stays as the umask allows (here: everyone).
    assert all(p.lstat().st_mode & 0o444 == 0o444 for p in paths)
