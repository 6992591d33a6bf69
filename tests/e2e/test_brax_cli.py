"""The Brax backend in subprocesses: device sharding (two forced host
devices) and the CLI."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SHARDED = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from pes_rl.agents import ALGORITHMS
    results = {}
    for algo in ("pes", "tes"):
        thetas = []
        for devices in (1, 2):
            agent = ALGORITHMS[algo](
                env="linear_quadratic", num_particles=8, truncation_length=5,
                sigma=0.1, learning_rate=0.01, fitness_shaping="std", seed=1,
                obs_norm=True, backend="brax", num_devices=devices,
                updates_per_call=2,
            )
            agent.learn(1000, progress_bar=False)
            thetas.append(np.asarray(agent.theta).tolist())
            results[f"{algo}-{devices}-desc"] = agent.device_description
        results[algo] = thetas
    results["devices"] = jax.local_device_count()
    print(json.dumps(results))
    """
)


def test_sharded_across_two_devices_equals_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run(
        [sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["devices"] == 2
    assert results["pes-2-desc"] == "2 x cpu"
    for algo in ("pes", "tes"):  # 8 envs split evenly; TES's 9 stay replicated
        one, two = results[algo]
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pes_rl.train", *args],
        capture_output=True,
        text=True,
    )


def test_cli_on_brax(tmp_path):
    out = run_cli(
        "--env", "linear_quadratic", "--backend", "brax", "--total-steps", "4000",
        "--eval-every", "2000", "--no-progress", "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "brax backend, cpu" in out.stderr
    # Nothing that is not the user's business (MuJoCo Warp's import notes).
    assert "warp" not in out.stdout + out.stderr
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").open()]
    # The first call also runs the staggered warm-up: 14 pair-windows live.
    assert [x["env_steps"] for x in lines][:3] == [0, 2140, 4040]
    assert lines[-1]["env_steps"] >= 4000
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["backend"] == "brax"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "swimer"], "did you mean swimmer"),
        (["--env", "linear_quadratic", "--devices", "64"], "device"),
        (["--env", "CartPole-v1"], "unknown brax environment"),
    ],
)
def test_cli_bad_brax_input(tmp_path, args, message):
    out = run_cli("--backend", "brax", "--run-dir", str(tmp_path / "r"), *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and message in lines[-1], out.stderr
    assert not (tmp_path / "r").exists()
