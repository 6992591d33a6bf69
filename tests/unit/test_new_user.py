"""What a new user trips over: run directory names, presets by env id, and
flags that would do nothing (those that train: e2e/test_cli_runs.py and
e2e/test_new_user_processes.py)."""

import pytest

from pes_rl.cli.flags import parse_config
from pes_rl.cli.train import main
from pes_rl.runs.run_dir import default_run_dir


def test_default_run_directories_are_unique_within_a_second():
    names = {default_run_dir("swimmer", "pes", 0) for _ in range(20)}
    assert len(names) == 20


@pytest.mark.parametrize("env_id", ["Swimmer-v5", "swimmer"])
def test_presets_answer_to_the_gymnasium_id_too(env_id):
    config = parse_config(["--env", env_id])
    alias = parse_config(["--env", "swimmer"])
    assert {**vars(config), "env": None} == {**vars(alias), "env": None}
    assert parse_config(["--env", "Hopper-v5"]).num_particles == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden-sizes", "64", "64"], "--hidden-sizes needs --policy mlp"),
        (["--backend", "gymnasium", "--brax-physics", "spring"], "brax backend only"),
        (["--backend", "gymnasium", "--updates-per-call", "4"], "brax backend only"),
        (["--backend", "brax", "--updates-per-call", "0"], "--updates-per-call must"),
        (["--num-particle", "4"], "unrecognized arguments: --num-particle"),
        (["--backend", "gymnasium", "--devices", "1"], "brax backend only"),
        (["--backend", "brax", "--async-envs"], "gymnasium backend only"),
        (["--algo", "es", "--truncation-length", "7"], "does not apply to --algo es"),
        (["--algo", "tes", "--no-stagger"], "--stagger does not apply"),
    ],
)
def test_flags_that_would_do_nothing_are_errors(args, message, tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert main(["--env", "linear_quadratic", *args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
    assert not run_dir.exists()


def test_help_shows_the_presets_and_the_resumable_flags(capsys):
    with pytest.raises(SystemExit):
        main(["--env", "swimmer", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.1, the swimmer preset)" in shown
    assert "--async-envs, --workers, --num-workers" in shown
    assert "--process-id" in shown


def test_suggestions_name_each_environment_once(capsys):
    assert main(["--env", "swimer", "--backend", "brax"]) == 2
    err = capsys.readouterr().err
    assert "did you mean swimmer?" in err, err
