"""sigma and the learning rate are data of the training state, not constants
of the compiled update: a sweep over their values (or over the length of a
decay) compiles the update once. Compilations are counted as XLA reports
them (JAX's backend-compile and cache-read events), whatever function they
come from."""

import jax
import numpy as np
import pytest
from compile_events import compiles

from pes_rl.agents import PES
from pes_rl.core.schedules import LinearDecay
from pes_rl.problems.toys import LinearQuadratic


def trained(name, value, settings):
    """An agent with ``name`` set to ``value``, after two updates."""
    agent = PES(**{**settings, name: value})
    agent.learn(2 * agent.num_envs * agent.truncation_length, progress_bar=False)
    return agent


SWEEPS = {
    "sigma": [0.05, 0.1, 0.2, 0.3],
    "learning_rate": [0.001, 0.003, 0.01, 0.03],
    "sigma decays": [LinearDecay(0.3, 0.1), LinearDecay(0.2, 0.01, 5), 0.1, 0.25],
}


def sweep(name, values, settings):
    """(compiles of the first agent, of the other three, the agents)."""
    key = name.split()[0]
    with compiles() as first:
        agents = [trained(key, values[0], settings)]
    with compiles() as rest:
        agents += [trained(key, value, settings) for value in values[1:]]
    return first, rest, agents


def distinct(agents):
    """The agents' different results: the values reached the update (sigma
    scales this window's noise, drawn from the same key; an SGD step
    scales with the learning rate)."""
    return {
        np.asarray(a.est_state.eps).tobytes() + np.asarray(a.theta).tobytes()
        for a in agents
    }


@pytest.mark.parametrize("name", SWEEPS)
def test_a_sweep_on_the_jitted_engine_compiles_once(name):
    # A new Problem instance is a new recipe: the first agent compiles.
    settings = dict(
        problem=LinearQuadratic(),
        num_particles=4,
        truncation_length=5,
        optimizer="sgd",  # Adam's first steps are about lr whatever sigma
        preset=None,
    )
    first, rest, agents = sweep(name, SWEEPS[name], settings)
    assert first, "the first agent compiles its engine"
    assert rest == [], f"a new {name} recompiled: {rest}"
    assert len({a.loop.engine for a in agents}) == 1
    assert len(distinct(agents)) == 4


@pytest.mark.parametrize("name", ["sigma", "learning_rate"])
def test_a_sweep_on_the_host_loop_compiles_once(name):
    jax.clear_caches()  # so the first agent surely compiles
    settings = dict(
        env="linear_quadratic",
        num_particles=4,
        truncation_length=5,
        fitness_shaping="std",
        preset=None,
    )
    first, rest, agents = sweep(name, SWEEPS[name], settings)
    assert first, "the first agent compiles its update"
    assert rest == [], f"a new {name} recompiled: {rest}"
    assert len(distinct(agents)) == 4


def old_layout(state):
    """A state as checkpoints held it before sigma and the learning rate were
    traced, as unpickling one gives it: no ``hyper``, a window count in the
    estimator's state, a learning-rate schedule's count in Adam's state."""
    import optax

    from pes_rl.core.train_state import TrainState

    saved = object.__new__(TrainState)
    fields = {k: v for k, v in vars(state).items() if k != "hyper"}
    est_state = object.__new__(type(state.est_state))
    vars(est_state).update(vars(state.est_state), count=np.int32(9))
    adam, _ = state.opt_state
    updates = np.int32(state.hyper.updates)
    fields.update(
        est_state=est_state,
        opt_state=(adam, optax.ScaleByScheduleState(count=updates)),
    )
    vars(saved).update(fields)
    return saved


def test_a_checkpoint_from_before_the_traced_hyperparameters_resumes(tmp_path, lq_pes):
    from pes_rl.runs import checkpoints

    settings = dict(optimizer="adam", learning_rate=LinearDecay(0.01, 0.001, 6))
    uninterrupted, stopped = lq_pes(**settings), lq_pes(**settings)
    for _ in range(5):
        uninterrupted.update()
    for _ in range(3):
        stopped.update()
    stopped.save(tmp_path / "a.pkl")
    saved = checkpoints.read(tmp_path / "a.pkl")
    checkpoints.write(
        tmp_path / "a.pkl", {**saved, "state": old_layout(saved["state"])}
    )
    resumed = type(stopped).load(tmp_path / "a.pkl")
    assert int(resumed.state.hyper.updates) == 3
    for _ in range(2):
        resumed.update()
    np.testing.assert_array_equal(resumed.theta, uninterrupted.theta)
