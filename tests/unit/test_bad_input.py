"""Bad input, from the command line and from Python: one line (exit status
2, or a ConfigError), and nothing written; never a traceback, a run that
fails later and blames the env, a hang or unbounded memory."""

import math

import pytest

from pes_rl.agents import PES
from pes_rl.agents.resources import available_bytes
from pes_rl.cli import plot
from pes_rl.cli.train import main
from pes_rl.errors import ConfigError
from pes_rl.problems import make as make_problem

LQ = ["--env", "linear_quadratic"]
needs_meminfo = pytest.mark.skipif(
    available_bytes() is None, reason="free memory unknown here: no estimate"
)


@pytest.mark.parametrize(
    "args, message",
    [
        (LQ + ["--sigma-final", "nan"], "sigma's decay end must be a positive"),
        (LQ + ["--learning-rate-final", "inf"], "learning_rate's decay end"),
        (LQ + ["--learning-rate", "1e300"], "learning_rate must be a positive"),
        (LQ + ["--sigma", "1e300"], "sigma must be a positive number up to"),
        (LQ + ["--checkpoint-every-seconds", "nan"], "--checkpoint-every-seconds"),
        (LQ + ["--workers", "ray", "--num-workers", "0"], "num_workers (Ray"),
        (LQ + ["--seed", str(2**64)], "non-negative integer below 2**63"),
        (LQ + ["--total-steps", str(10**19)], "--total-steps must be a positive"),
        (["--env", "swimmer", "--total-steps", str(5 * 10**18)], "int32 counters"),
        (LQ + ["--horizon", str(10**12)], "longer than --total-steps"),
        (["--problem", "raises_on_import:make"], "RuntimeError: broken on import"),
        pytest.param(
            LQ + ["--eval-episodes", str(10**12)],
            "evaluation episodes",
            marks=needs_meminfo,
        ),
        pytest.param(
            ["--env", "swimmer", "--num-particles", "200000"],
            "200000 environments of about",
            marks=needs_meminfo,
        ),
        pytest.param(
            ["--env", "swimmer", "--policy", "mlp", "--hidden-sizes", "1000000000"],
            "parameters need about",
            marks=needs_meminfo,
        ),
    ],
)
def test_bad_value_is_one_line_exit_2_and_writes_nothing(
    args, message, tmp_path, capsys, monkeypatch
):
    module = tmp_path / "raises_on_import.py"
    module.write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    assert main([*args, "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
    assert not run_dir.exists()


def test_plot_of_a_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_bytes(b'{"env_steps": 1, "eval_return": \xff}\n')
    output = tmp_path / "curves.png"
    assert plot.main([str(run), "-o", str(output)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "not UTF-8" in err
    assert not output.exists()


@pytest.fixture(scope="module")
def agent():
    agent = PES(env="linear_quadratic", num_particles=4, truncation_length=5)
    yield agent
    agent.close()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: a.evaluate(0), "num_episodes must be a positive integer"),
        (lambda a: a.learn(-5), "total_env_steps must be a non-negative"),
        (lambda a: a.learn(math.nan), "total_env_steps must be a non-negative"),
        (lambda a: PES(env=42), "env must be a name"),
        (
            lambda a: PES(
                env="linear_quadratic", problem=make_problem("lr_schedule_toy")
            ),
            "pass env or problem, not both",
        ),
        pytest.param(
            lambda a: a.evaluate(10**12), "evaluation episodes", marks=needs_meminfo
        ),
    ],
)
def test_bad_python_call_is_a_config_error(agent, call, message):
    steps = agent.env_steps
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        call(agent)
    assert agent.env_steps == steps and agent.eval_env_steps == 0


def test_a_problem_alone_takes_no_env():
    problem = make_problem("linear_quadratic")
    assert PES(problem=problem, num_particles=4).config.env is None
