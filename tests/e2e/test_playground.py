"""MuJoCo Playground environments on the jitted engine (the playground
extra). The DM Control Suite tasks ship their models, so these run offline."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.envs.adapters.playground import flatten_obs

pytest.importorskip("mujoco_playground")


def run(code_or_module, *args, env=None, module=True):
    command = ["-m", code_or_module] if module else ["-c", code_or_module]
    return subprocess.run(
        [sys.executable, *command, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_dict_observations_are_flattened_or_their_state_selected():
    obs = {"b": jnp.ones((2, 2)), "a": jnp.zeros(1)}
    np.testing.assert_array_equal(flatten_obs(obs), [0, 1, 1, 1, 1])
    obs["state"] = jnp.arange(3.0)
    np.testing.assert_array_equal(flatten_obs(obs), [0, 1, 2])
    np.testing.assert_array_equal(flatten_obs(jnp.ones((2, 3))), np.ones(6))


@pytest.mark.slow  # a minute: two processes compile Playground's physics
def test_cli_trains_a_playground_task_and_records_its_video(tmp_path):
    out = tmp_path / "run"
    result = run(
        "pes_rl.train", "--env", "playground:CartpoleBalance", "--horizon", "50",
        "--num-particles", "4", "--truncation-length", "25", "--total-steps",
        "1000", "--eval-every", "500", "--eval-episodes", "1", "--no-progress",
        "--run-dir", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "playground backend" in result.stderr
    lines = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert lines[0]["env_steps"] == 0 and lines[-1]["env_steps"] >= 1000
    assert all(0 < line["eval_return"] <= 50 for line in lines)  # reward <= 1
    assert json.loads((out / "config.json").read_text())["backend"] == "playground"
    video = tmp_path / "cartpole.mp4"
    result = run("pes_rl.evaluate", out, "--episodes", "0", "--video", video)
    if result.returncode == 2 and "cannot render" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert "51 frames" in result.stdout  # the reset state and 50 steps
    assert video.read_bytes()[4:8] == b"ftyp"


def test_a_registered_playground_env_runs_on_the_jitted_engine():
    from pes_rl.agents import NRES
    from pes_rl.envs import register

    register("my_cartpole", playground="CartpoleBalance", max_episode_steps=50)
    agent = NRES(env="my_cartpole", policy="gru", recurrent_size=4, num_particles=2,
                 truncation_length=25, preset=None)  # fmt: skip
    assert (agent.backend_name, agent.horizon) == ("playground", 50)
    agent.update()
    action, state = agent.predict(np.zeros(5))
    assert action.shape == (1,) and -1 <= action[0] <= 1 and state.shape == (4,)


@pytest.mark.parametrize(
    "env, block, words",
    [
        ("playground:CartpoleBalanse", None, ["unknown Playground", "CartpoleBalance"]),
        ("playground:CheetahRun", "mujoco_playground", ["pes_rl[playground]"]),
        ("playground:CheetahRun --backend brax", None, ["--backend does not apply"]),
    ],
)
def test_playground_errors_are_one_line(tmp_path, env, block, words):
    blocked = f"sys.modules[{block!r}] = None\n" if block else ""
    argv = ["--env", *env.split(), "--run-dir", str(tmp_path / "r")]
    code = (
        f"import sys\n{blocked}from pes_rl.train import main\nsys.exit(main({argv!r}))"
    )
    result = run(code, module=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    for word in words:
        assert word in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()
