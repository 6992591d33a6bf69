"""CLI evaluations: the same episodes and seeds every time, the final one
included and not repeated; the best evaluated policy kept as
checkpoints/best.pkl, which evaluate uses by default."""

import json
import re

import pytest

from pes_rl.agents import ESAgent
from pes_rl.cli import evaluate
from pes_rl.cli.train import main
from pes_rl.runs.checkpoints import read


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def counted_run(tmp_path_factory):
    """A toy run (100 env steps per update, evaluations every 200) and the
    number of evaluations it ran."""
    run_dir = tmp_path_factory.mktemp("evaluations") / "run"
    calls = []
    original = ESAgent.evaluate_episodes

    def counting(agent, num_episodes=10):
        calls.append(num_episodes)
        return original(agent, num_episodes)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ESAgent, "evaluate_episodes", counting)
        argv = ["--env", "linear_quadratic", "--total-steps", "600"]
        argv += ["--eval-every", "200", "--run-dir", str(run_dir), "--no-progress"]
        assert main(argv) == 0
    return run_dir, calls


def test_every_evaluation_runs_the_same_episodes_and_none_is_repeated(counted_run):
    run_dir, calls = counted_run
    lines = metrics(run_dir)
    assert [line["eval_episodes"] for line in lines] == [5] * len(lines)
    # The last periodic evaluation fell on the last update: it is the final
    # one, not evaluated again.
    assert lines[-1]["env_steps"] >= 600
    assert calls == [5] * len(lines)


def test_the_best_evaluation_is_kept_and_evaluate_uses_it(counted_run, capsys):
    run_dir, _ = counted_run
    lines = metrics(run_dir)
    best = max(lines, key=lambda line: line["eval_return"])
    saved = read(run_dir / "checkpoints" / "best.pkl")
    assert saved["counters"]["env_steps"] == best["env_steps"]
    assert saved["extra"]["evaluation"]["eval_return"] == best["eval_return"]

    def evaluated(*flags):
        assert evaluate.main([str(run_dir), "--episodes", "5", *flags]) == 0
        out = capsys.readouterr().out
        which = re.search(r"\((\w+) checkpoint\)", out)[1]
        return which, float(re.search(r"eval return (-?\d+\.\d+)", out)[1])

    which, value = evaluated()  # the default: best
    assert which == "best" and value == pytest.approx(best["eval_return"], abs=0.006)
    which, value = evaluated("--checkpoint", "last")
    assert which == "last"
    assert value == pytest.approx(lines[-1]["eval_return"], abs=0.006)


def test_checkpoint_needs_a_run_directory(counted_run, capsys):
    run_dir, _ = counted_run
    ckpt = next((run_dir / "checkpoints").glob("ckpt-*.pkl"))
    assert evaluate.main([str(ckpt), "--checkpoint", "best"]) == 2
    assert "needs a run directory" in capsys.readouterr().err
