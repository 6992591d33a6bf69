"""Host particles on Ray workers (a local Ray with 3 logical CPUs): the same numbers
as one process for any number of workers, a lost worker replayed or its
pairs restarted, and the errors a user meets. The two-node cluster test is
in test_ray_cluster.py."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pes_rl.agents import NRES, PES, FullES, TruncatedES
from pes_rl.envs.backends.pool import EnvironmentWorkerError

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')

from ray_envs import SMALL  # noqa: E402  (registers the test envs here too)

SUPPORT = Path(__file__).resolve().parents[1] / "support"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(
        num_cpus=3,  # logical: three workers on this 2-core machine
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(map(str, sys.path))}},
    )
    yield
    ray.shutdown()


def fingerprint(agent) -> tuple:
    state = agent.state
    return (
        np.asarray(state.theta),
        np.asarray(state.obs_stats.mean),
        np.asarray(state.obs_stats.m2),
        np.asarray(state.est_state.score),
        agent.env_steps,
    )


def assert_same(a: tuple, b: tuple) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def train(cls, updates: int, after=None, **kwargs):
    agent = cls(**{**SMALL, **kwargs})
    try:
        for i in range(updates):
            agent.update()
            if after is not None:
                after(i, agent)
        return fingerprint(agent), agent.loop.backend
    finally:
        agent.close()


@pytest.mark.parametrize(
    "cls, workers",
    [(PES, (1, 3)), (NRES, (2,)), (TruncatedES, (2,)), (FullES, (2,))],
)
def test_ray_workers_match_one_process_bit_for_bit(cls, workers):
    """obs_norm on, a staggered warm-up for PES and NRES, truncated ES's
    shared trajectory split over workers; 3 workers hold 1, 1 and 2 pairs."""
    updates = 2 if cls is FullES else 4
    expected, _ = train(cls, updates)
    for count in workers:
        got, backend = train(cls, updates, workers="ray", num_workers=count)
        assert backend.description == f"cpu, {count} Ray workers"
        assert_same(got, expected)


def test_a_killed_worker_is_replaced_and_its_window_replayed(caplog):
    expected, _ = train(PES, 5)

    def kill(i, agent):
        if i == 1:  # between windows: the next window finds it gone
            ray.kill(agent.loop.backend.workers[0])

    with caplog.at_level(logging.WARNING, logger="pes_rl.envs.backends.ray_workers"):
        got, _ = train(PES, 5, after=kill, workers="ray", num_workers=2)
    assert_same(got, expected)
    assert "Ray worker 0 lost" in caplog.text
    assert "replays its window from the env snapshots" in caplog.text


def test_a_silent_worker_times_out_and_its_window_is_replayed(tmp_path, caplog):
    """HangingToy hangs one worker in update 2 without killing it: after
    the timeout it counts as lost, and its window is replayed."""
    env = dict(env="HangingToy-v0", env_kwargs={"flags": str(tmp_path)})
    expected, _ = train(PES, 2, **env)

    def arm(i, agent):
        if i == 0:  # after the first windows, which compile the policy
            agent.loop.backend.min_timeout = 6.0
            (tmp_path / "armed").touch()

    with caplog.at_level(logging.WARNING, logger="pes_rl.envs.backends.ray_workers"):
        got, backend = train(PES, 2, after=arm, workers="ray", num_workers=2, **env)
    assert (tmp_path / "hung").exists()
    assert_same(got, expected)
    # 6 s, or 20 slowest windows if longer (on a loaded machine)
    assert "lost (no answer in" in caplog.text  # whichever worker hung
    assert "replays its window from the env snapshots" in caplog.text


def test_recurrent_policies_on_workers_match_one_process_with_a_lost_worker():
    """The carry is per-particle state the workers hold and snapshot."""
    recurrent = dict(policy="gru", recurrent_size=4, obs_norm=False)
    expected, _ = train(PES, 2, **recurrent)

    def kill(i, agent):
        if i == 0:
            ray.kill(agent.loop.backend.workers[1])

    got, backend = train(PES, 2, after=kill, workers="ray", num_workers=2, **recurrent)
    assert backend.initial_carry.size == 4
    assert_same(got, expected)


def test_without_snapshots_a_lost_workers_pairs_end_and_rejoin_in_phase(caplog):
    """LockedToy cannot be copied: worker 1's two pairs lose their episodes,
    report ended (PES's accumulators cleared), and sit out the rest of the
    old episode, so they start afresh when it would have ended."""
    kwargs = dict(env="LockedToy-v0", obs_norm=False, workers="ray", num_workers=2)
    agent = PES(**{**SMALL, **kwargs})
    backend = agent.loop.backend
    try:
        agent.update()  # warm-up (3 windows, pairs staggered) and update 1
        assert backend.particles() is None  # what a checkpoint stores then
        clock = backend.clock[4:8].copy()
        starting = backend.needs_reset[4:8].copy()  # would start afresh now
        window = backend.windows
        ray.kill(backend.workers[1])
        with caplog.at_level(
            logging.WARNING, logger="pes_rl.envs.backends.ray_workers"
        ):
            info = agent.update()
        assert "cannot be snapshotted" in caplog.text
        score = np.asarray(agent.est_state.score)
        assert (score[4:8] == 0).all() and (score[:4] != 0).any()
        left = np.where(starting, 60, 60 - clock)
        assert starting.any() and not starting.all()  # both cases are checked
        np.testing.assert_array_equal(backend.rejoin[4:8], window + -(-left // 20))
        assert np.isfinite(info["grad_norm"])
        for _ in range(4):  # the pairs rejoin and training goes on
            agent.update()
        assert backend.windows > backend.rejoin.max()
        assert (np.asarray(agent.est_state.score)[4:8] != 0).any()
    finally:
        agent.close()


def test_an_env_error_on_a_worker_surfaces_with_its_own_message():
    agent = PES(**{**SMALL, "env": "FailingToy-v0", "obs_norm": False},
                workers="ray", num_workers=2)  # fmt: skip
    try:
        with pytest.raises(EnvironmentWorkerError) as caught:
            agent.update()
    finally:
        agent.close()
    assert str(caught.value).endswith("ValueError: the simulator diverged at step 5")


def test_more_workers_than_pairs_is_refused():
    with pytest.raises(Exception, match="at most 4"):
        PES(**SMALL, workers="ray", num_workers=5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ray-address", "127.0.0.1:1"], "no Ray cluster answers there"),
        (["--num-workers", "5"], "use at most 4"),
    ],
)
def test_cli_bad_ray_input_is_one_line_and_status_2(tmp_path, flags, message):
    run = subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--env", "swimmer",
         "--num-particles", "8", "--total-steps", "1000", "--workers", "ray",
         "--run-dir", str(tmp_path / "run"), *flags],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert not (tmp_path / "run").exists()


def test_cli_env_error_on_a_worker_shows_the_envs_message(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pes_rl.train", "--env", "ray_envs:FailingToy-v0",
         "--num-particles", "4", "--total-steps", "1000", "--workers", "ray",
         "--num-workers", "2", "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(SUPPORT)},
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.endswith("ValueError: the simulator diverged at step 5"), last
    assert "Traceback" not in run.stderr


def test_without_ray_installed_the_error_names_the_extra(tmp_path):
    hide_ray = (
        "import sys; sys.modules['ray'] = None; from pes_rl.train import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_ray, "--env", "swimmer", "--workers", "ray",
         "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == (
        'error: Ray workers need Ray: pip install "pes_rl[ray]" (or -e ".[ray]")'
    )
    assert not (tmp_path / "run").exists()


def test_a_run_saved_in_one_process_resumes_on_ray_workers(tmp_path):
    expected, _ = train(PES, 4)
    agent = PES(**SMALL)
    for _ in range(2):
        agent.update()
    agent.save(tmp_path / "checkpoint")
    agent.close()
    resumed = PES.load(tmp_path / "checkpoint", workers="ray", num_workers=2)
    try:
        for _ in range(2):
            resumed.update()
        assert_same(fingerprint(resumed), expected)
    finally:
        resumed.close()
