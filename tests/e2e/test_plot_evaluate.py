"""The plot and evaluate commands: curves, seed grouping, evaluation, video."""

import json
import os
import re
import subprocess
import sys

import pytest
from run_dirs import write_run

from pes_rl.cli import evaluate, plot
from pes_rl.errors import ConfigError


def run_module(module, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def assert_one_line_error(stderr, *fragments):
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


@pytest.fixture(scope="module")
def lq_run(tmp_path_factory):
    """A real, tiny training run on the toy task."""
    run_dir = tmp_path_factory.mktemp("lq") / "run"
    result = run_module(
        "pes_rl.train",
        "--env=linear_quadratic",
        "--total-steps=400",
        "--eval-every=200",
        f"--run-dir={run_dir}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    return run_dir


# -- plot ---------------------------------------------------------------------


def test_plot_cli_draws_a_real_run(lq_run, tmp_path):
    out = tmp_path / "curves.png"
    result = run_module("pes_rl.plot", lq_run, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    result = run_module("pes_rl.plot", tmp_path / "missing", "-o", tmp_path / "x.png")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "does not exist")

    (tmp_path / "not_a_run").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text("")
    good = write_run(tmp_path / "good", [(0, 0.0)])
    out = str(tmp_path / "x.png")
    cases = [
        ([str(tmp_path / "not_a_run"), "-o", out], "no metrics.jsonl"),
        ([str(empty), "-o", out], "no evaluations"),
        ([str(good)], "-o/--output"),
        ([str(good), "-o", out, "--x", "updates"], "--x"),
        ([str(good), "-o", str(tmp_path / "x.nope")], "cannot write"),
    ]
    for argv, fragment in cases:
        assert plot.main(argv) == 2, argv
        assert_one_line_error(capsys.readouterr().err, fragment)
    assert not (tmp_path / "x.png").exists()


# -- evaluate -----------------------------------------------------------------


def test_evaluate_prints_mean_and_std_matching_training(lq_run):
    result = run_module(
        "pes_rl.evaluate", lq_run, "--episodes", "5", "--checkpoint", "last"
    )
    assert result.returncode == 0, result.stderr
    match = re.search(
        r"eval return (-?\d+\.\d+) ± (\d+\.\d+) over 5 episodes", result.stdout
    )
    assert match, result.stdout
    # The final evaluation of training ran 5 episodes on the same seeds.
    final = json.loads((lq_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["eval_episodes"] == 5
    assert float(match[1]) == pytest.approx(final["eval_return"], abs=0.006)


def test_evaluate_bad_input_is_one_line_and_exit_2(
    lq_run, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("MUJOCO_GL", raising=False)  # main sets a default
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    cases = [
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(tmp_path / "empty")], "no checkpoint"),
        ([str(tmp_path / "junk.pkl")], "not a pes_rl checkpoint"),
        ([str(lq_run), "--episodes", "-1"], "--episodes"),
        ([str(lq_run), "--video", str(tmp_path / "no" / "x.mp4")], "not a directory"),
        (
            [str(lq_run), "--episodes", "0", "--video", str(tmp_path / "x.mp4")],
            "cannot render rgb_array frames",
        ),
        ([str(lq_run), "--video", str(tmp_path / "x.html")], "Brax"),
    ]
    for argv, fragment in cases:
        assert evaluate.main(argv) == 2, argv
        assert_one_line_error(capsys.readouterr().err, fragment)
    assert not (tmp_path / "x.mp4").exists()


def test_evaluate_without_ffmpeg_names_the_package(
    lq_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    assert evaluate.main([str(lq_run), "--video", str(tmp_path / "x.mp4")]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, "pip install imageio-ffmpeg")
    assert captured.out == ""  # failed before evaluating


@pytest.fixture(scope="module")
def swimmer_checkpoint(tmp_path_factory):
    """An untrained Swimmer agent with a 20-step horizon: a short video."""
    from pes_rl.agents import PES

    path = tmp_path_factory.mktemp("swimmer") / "checkpoint.pkl"
    agent = PES(env="swimmer", num_particles=2, truncation_length=10, horizon=20)
    agent.save(path)
    agent.close()
    return path


def test_video_of_one_swimmer_episode(swimmer_checkpoint, tmp_path):
    out = tmp_path / "swimmer.mp4"
    result = run_module(
        "pes_rl.evaluate", swimmer_checkpoint, "--episodes", "1", "--video", out
    )
    if result.returncode == 2 and (
        "cannot render" in result.stderr or "imageio-ffmpeg" in result.stderr
    ):
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "fork" not in result.stderr
    assert out.stat().st_size > 1000 and out.read_bytes()[4:8] == b"ftyp"
    assert "21 frames" in result.stdout  # the reset frame and 20 steps
    # By default the video replays the first evaluation episode.
    evaluated = re.search(r"eval return (-?\d+\.\d+)", result.stdout)[1]
    recorded = re.search(r"frames, seed \d+, return (-?\d+\.\d+)", result.stdout)[1]
    assert evaluated == recorded


def test_a_broken_renderer_names_what_to_install(swimmer_checkpoint, tmp_path):
    result = run_module(
        "pes_rl.evaluate",
        swimmer_checkpoint,
        "--video",
        tmp_path / "x.mp4",
        env={"MUJOCO_GL": "bogus"},
    )
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "MUJOCO_GL=bogus", "apt install libegl1")
    assert result.stdout == ""  # failed before evaluating


@pytest.mark.slow
def test_brax_html_viewer(tmp_path):
    from pes_rl.agents import PES

    agent = PES(
        env="swimmer", backend="brax", num_particles=2, truncation_length=5, horizon=5
    )
    agent.save(tmp_path / "checkpoint.pkl")
    out = tmp_path / "swimmer.html"
    result = run_module(
        "pes_rl.evaluate",
        tmp_path / "checkpoint.pkl",
        "--episodes",
        "1",
        "--video",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "6 frames" in result.stdout  # the reset state and 5 steps
    assert "brax-viewer" in out.read_text()
    with pytest.raises(ConfigError, match=".html"):
        evaluate.record(agent, tmp_path / "swimmer.mp4")
