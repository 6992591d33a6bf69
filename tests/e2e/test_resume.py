"""Checkpoints, signals and resuming a run; callbacks of learn()."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pes_rl.agents import load_latest
from pes_rl.cli.train import main
from pes_rl.runs.callbacks import CheckpointCallback, EvalCallback, StopOnReturn
from pes_rl.runs.checkpoints import checkpoint_files

TOY_FLAGS = ["--env", "linear_quadratic", "--eval-every", "4000", "--no-progress"]


def start_training(run_dir, total_steps, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "pes_rl.train", *TOY_FLAGS, "--run-dir", str(run_dir)]
        + ["--total-steps", str(total_steps), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def resume(run_dir, *extra):
    return subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--resume", str(run_dir), *extra],
        capture_output=True,
        text=True,
    )


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def wait_for_evaluations(run_dir, count, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = run_dir / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("training did not reach the evaluations in time")


@pytest.mark.parametrize(
    "how, backend",
    [
        ("SIGTERM", "gymnasium"),
        # The two others take 10-15 s each; the default suite keeps one.
        pytest.param("SIGKILL", "gymnasium", marks=pytest.mark.slow),
        pytest.param("SIGTERM", "brax", marks=pytest.mark.slow),
    ],
)
def test_interrupted_run_resumes_where_its_checkpoint_left_off(tmp_path, how, backend):
    run_dir = tmp_path / "run"
    process = start_training(
        run_dir, 400_000, "--checkpoint-every-updates", "50", "--backend", backend
    )
    wait_for_evaluations(run_dir, 3, process)
    process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=60)
    if how == "SIGTERM":
        assert process.returncode == 128 + signal.SIGTERM
        assert "--resume" in err.strip().splitlines()[-1]
        # Said at once: what the stop waits for (on Brax, a whole device call).
        waits_for = "device call" if backend == "brax" else "update"
        assert f"SIGTERM: stopping after the {waits_for} in progress" in err
    else:
        assert process.returncode == -signal.SIGKILL
    before = metrics(run_dir)
    agent, loop_state, _ = load_latest(run_dir)
    saved_steps, saved_updates = agent.env_steps, agent.num_updates
    agent.close()
    assert 0 < saved_steps < 400_000

    out = resume(run_dir, "--total-steps", str(saved_steps + 10_000))
    assert out.returncode == 0, out.stderr
    assert f"({backend} backend" in out.stderr
    assert f"{saved_steps} env steps, {saved_updates} updates" in out.stderr
    after = metrics(run_dir)
    # Every line up to the checkpoint is kept exactly once, then it goes on.
    kept = [x for x in before if x["env_steps"] <= saved_steps]
    assert after[: len(kept)] == kept
    steps = [x["env_steps"] for x in after]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps[-1] >= saved_steps + 10_000
    assert after[-1]["seconds"] >= before[-1]["seconds"] - 1e-6 or how == "SIGKILL"
    agent, _, _ = load_latest(run_dir)
    assert agent.num_updates > saved_updates
    agent.close()


def test_resume_falls_back_when_the_newest_checkpoint_is_corrupt(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, 12_000, "--checkpoint-every-updates", "20")
    assert process.wait(timeout=120) == 0, process.communicate()
    newest, previous = checkpoint_files(run_dir)[:2]
    newest.write_bytes(b"\x00garbage")
    out = resume(run_dir, "--total-steps", "16000")
    assert out.returncode == 0, out.stderr
    assert "warning:" in out.stderr and newest.name in out.stderr
    assert f"from {previous.name}" in out.stderr


def test_resume_refuses_a_conflicting_flag(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, 2000)
    assert process.wait(timeout=120) == 0, process.communicate()
    before = (run_dir / "metrics.jsonl").read_text()
    out = resume(run_dir, "--sigma", "0.5")
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot resume with --sigma 0.5")
    assert (run_dir / "metrics.jsonl").read_text() == before
    out = resume(tmp_path / "nothing")
    assert out.returncode == 2 and "not a run directory" in out.stderr


def test_resume_accepts_the_runs_own_flags_and_refuses_a_finished_run(tmp_path):
    run_dir = tmp_path / "run"
    flags = ["--truncation-length", "50", "--run-dir", f"{run_dir}/"]  # K > T
    assert start_training(run_dir, 2000, *flags[:2]).wait(timeout=120) == 0
    out = resume(run_dir, *flags)
    assert out.returncode == 2
    assert "already finished at" in out.stderr.strip().splitlines()[-1]
    out = resume(run_dir, *flags, "--total-steps", "3000", "--async-envs")
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "config.json").read_text())["total_steps"] == 3000
    assert resume(run_dir).returncode == 2  # finished again, at the new budget
    steps = [x["env_steps"] for x in metrics(run_dir)]
    assert len(steps) == len(set(steps)) and steps[-1] >= 3000


def test_ctrl_c_with_worker_processes_saves_a_checkpoint(tmp_path):
    """Ctrl-C reaches the whole process group; the workers leave stopping
    to the main process."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "pes_rl.train", *TOY_FLAGS, "--async-envs"]
        + ["--total-steps", "400000", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for_evaluations(run_dir, 2, process)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, err
    assert "--resume" in err.strip().splitlines()[-1]
    agent, _, _ = load_latest(run_dir)
    assert agent.env_steps > 4000
    agent.close()


def test_tensorboard_events_are_written(tmp_path):
    run_dir = tmp_path / "run"
    assert start_training(run_dir, 4000).wait(timeout=120) == 0
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_callbacks_evaluate_checkpoint_and_stop(lq_pes, tmp_path):
    agent = lq_pes()
    seen = []
    evaluations = EvalCallback(every_env_steps=1000, num_episodes=2)
    agent.learn(
        50_000,
        callback=[
            evaluations,
            CheckpointCallback(tmp_path / "ckpts", every_updates=10, keep=2),
            StopOnReturn(-3.0),
            seen.append,
        ],
        progress_bar=False,
    )
    assert agent.env_steps < 50_000, "never reached the threshold"
    assert evaluations.results[-1]["eval_return"] >= -3.0
    assert all(r["eval_return"] < -3.0 for r in evaluations.results[:-1])
    first, second = [r["env_steps"] for r in evaluations.results][:2]
    assert first == 0 and 1000 <= second < 1000 + 8 * 5  # within one update
    assert len(checkpoint_files(tmp_path / "ckpts")) == 2
    assert seen[-1]["env_steps"] == agent.env_steps


def test_a_user_callback_can_stop_training(lq_pes):
    agent = lq_pes()
    agent.learn(10_000, callback=lambda info: info["update"] < 3, progress_bar=False)
    assert agent.num_updates == 3


@pytest.mark.parametrize("backend", ["gymnasium", "brax"])
def test_a_loaded_agent_continues_exactly_as_if_never_stopped(tmp_path, backend):
    from pes_rl.agents import NRES, PES, TruncatedES

    for cls in (PES, NRES, TruncatedES):
        kwargs = dict(
            env="linear_quadratic",
            num_particles=8,
            truncation_length=5,
            sigma=0.1,
            learning_rate=0.01,
            optimizer="adam",
            fitness_shaping="std",
            obs_norm=True,
            backend=backend,
            seed=2,
        )
        uninterrupted = cls(**kwargs)
        for _ in range(7):
            uninterrupted.update()
        stopped = cls(**kwargs)
        for _ in range(3):  # mid-episode: 4 windows per episode
            stopped.update()
        stopped.save(tmp_path / "a.pkl")
        resumed = cls.load(tmp_path / "a.pkl")
        for _ in range(4):
            resumed.update()
        np.testing.assert_array_equal(resumed.theta, uninterrupted.theta)
        assert resumed.env_steps == uninterrupted.env_steps


def test_load_restarts_episodes_when_an_env_cannot_be_saved(lq_pes, tmp_path):
    agent = lq_pes()
    for _ in range(5):
        agent.update()
    agent.loop.particles = lambda: lambda: None  # not picklable
    agent.save(tmp_path / "a.pkl")
    restored = type(agent).load(tmp_path / "a.pkl")
    assert (restored.env_steps, restored.num_updates) == (
        agent.env_steps,
        agent.num_updates,
    )
    assert int(restored.state.hyper.updates) == int(agent.state.hyper.updates)
    assert not np.asarray(restored.est_state.score).any()  # accumulators cleared
    assert os.path.getsize(tmp_path / "a.pkl") > 0
    restored.update()  # a new staggered warm-up, then an update


def test_a_resumed_run_writes_the_metrics_of_an_uninterrupted_one(tmp_path):
    """Evaluations fall on the same env steps with the same returns, and
    env_steps increase strictly (the final evaluation replaces a periodic
    one on the same step)."""
    whole = start_training(tmp_path / "whole", 30000, "--eval-every", "2000")
    assert whole.wait(timeout=120) == 0, whole.communicate()
    run_dir = tmp_path / "stopped"
    process = start_training(run_dir, 30000, "--eval-every", "2000")
    wait_for_evaluations(run_dir, 4, process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    out = resume(run_dir)
    assert out.returncode == 0, out.stderr

    def curve(path):
        return [(m["env_steps"], m["eval_return"]) for m in metrics(path)]

    assert curve(run_dir) == curve(tmp_path / "whole")
    steps = [step for step, _ in curve(run_dir)]
    assert len(set(steps)) == len(steps) and steps[-1] >= 30000


def test_a_run_from_before_the_flag_resumes_with_its_default(tmp_path):
    run_dir = tmp_path / "run"
    flags = ["--env", "linear_quadratic", "--no-progress", "--eval-every", "2000"]
    assert main([*flags, "--total-steps", "2000", "--run-dir", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    del config["reward_shift"]  # as an older version wrote it
    (run_dir / "config.json").write_text(json.dumps(config))
    resumed = ["--resume", str(run_dir), "--total-steps", "4000", "--no-progress"]
    assert main([*resumed, "--reward-shift", "0"]) == 0
    assert main([*resumed[:2], "--total-steps", "6000", "--reward-shift", "1"]) == 2
