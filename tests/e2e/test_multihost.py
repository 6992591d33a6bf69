"""Multi-process training: two CPU processes joined by jax.distributed on
localhost, two devices each, against one process with four devices."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from pes_rl.runs.checkpoints import checkpoint_files
from pes_rl.runs.checkpoints import read as read_checkpoint

FLAGS = [
    "--problem", "linear_quadratic", "--num-particles", "8",
    "--eval-every", "200", "--no-progress", "--checkpoint-every-updates", "2",
]  # fmt: skip


def environment(devices: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return {**env, "JAX_NUM_CPU_DEVICES": str(devices), "JAX_PLATFORMS": "cpu"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def train(*args, devices=4, cwd=None, tmp=None):
    env = environment(devices) | ({"TMPDIR": str(tmp)} if tmp else {})
    return subprocess.Popen(
        [sys.executable, "-m", "pes_rl.train", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def two_processes(tmp_path, *args):
    """Both processes of one run; process 1 in its own empty working and
    temporary directories, which must stay empty. (pid of process 0,
    outputs)."""
    port, (elsewhere, tmp) = free_port(), (tmp_path / "p1-cwd", tmp_path / "p1-tmp")
    for path in (elsewhere, tmp):
        path.mkdir(exist_ok=True)
    processes = []
    for i in (0, 1):
        address = ["--coordinator-address", f"localhost:{port}"]
        flags = [*args, *address, "--num-processes", "2", "--process-id", str(i)]
        if i:
            processes.append(train(*flags, devices=2, cwd=elsewhere, tmp=tmp))
        else:
            processes.append(train(*flags, devices=2))
    outputs = [p.communicate(timeout=240) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    assert not any(elsewhere.iterdir()) and not any(tmp.iterdir())
    return processes[0].pid, outputs


def one_process(*args):
    out, err = (process := train(*args, devices=4)).communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return out, err


# Gloo's connection note, "[Gloo] Rank R is connected to N peer ranks. Expected
# number of connected peer ranks is : N", is written piece by piece from several
# threads: notes interleave, even inside a phrase, on a loaded machine.
GLOO_WORDS = set(
    "[Gloo] Rank is connected to peer ranks. Expected number of ranks :".split()
)


def own_output(text: str) -> str:
    """What pes_rl wrote: the text unless it is only Gloo's words and
    numbers (every line pes_rl writes has other words)."""
    words = text.split()
    return "" if all(w in GLOO_WORDS or w.isdigit() for w in words) else text


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def newest_checkpoint(run_dir):
    path = checkpoint_files(run_dir)[0]
    return path.name, read_checkpoint(path)


def assert_same_run(multi, single):
    m, s = metrics(multi), metrics(single)
    exact = ("env_steps", "update", "eval_episodes", "eval_env_steps")
    assert [{k: x[k] for k in exact} for x in m] == [
        {k: x[k] for k in exact} for x in s
    ]
    np.testing.assert_allclose(
        [x["eval_return"] for x in m], [x["eval_return"] for x in s], rtol=1e-5
    )
    (name_m, ckpt_m), (name_s, ckpt_s) = (
        newest_checkpoint(multi),
        newest_checkpoint(single),
    )
    assert name_m == name_s and ckpt_m["counters"] == ckpt_s["counters"]
    np.testing.assert_allclose(ckpt_m["state"].theta, ckpt_s["state"].theta, atol=1e-6)
    for a, b in zip(
        jax.tree.leaves((ckpt_m["state"], ckpt_m["particles"], ckpt_m["reset_rng"])),
        jax.tree.leaves((ckpt_s["state"], ckpt_s["particles"], ckpt_s["reset_rng"])),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_two_processes_match_one_and_resume(tmp_path):
    multi, single = tmp_path / "multi", tmp_path / "single"
    pid0, outputs = two_processes(
        tmp_path, *FLAGS, "--total-steps", "400", "--run-dir", str(multi)
    )
    one_process(*FLAGS, "--total-steps", "400", "--run-dir", str(single))
    (out0, err0), (out1, err1) = outputs
    assert "4 x cpu" in err0 and "done:" in out0
    assert own_output(out1) == ""  # process 1 trains but reports and writes nothing
    # Process 0 alone wrote the run directory: it holds the lock and the one
    # event file, and every metrics line appears once.
    assert (multi / ".lock").read_text().strip() == str(pid0)
    assert len(list((multi / "tensorboard").iterdir())) == 1
    assert [x["env_steps"] for x in metrics(multi)] == [0, 260, 420]
    assert_same_run(multi, single)

    # Resume both from their newest checkpoint and go on to 600 env steps.
    pid0, outputs = two_processes(
        tmp_path, "--resume", str(multi), "--total-steps", "600", "--no-progress"
    )
    one_process("--resume", str(single), "--total-steps", "600", "--no-progress")
    (out0, err0), (out1, _) = outputs
    assert "resuming" in err0 and "9 updates" in err0 and own_output(out1) == ""
    assert (multi / ".lock").read_text().strip() == str(pid0)
    assert [x["env_steps"] for x in metrics(multi)] == [0, 260, 420, 620]
    assert_same_run(multi, single)
