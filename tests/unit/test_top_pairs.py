"""Top-b directions (``top_pairs``): which pairs an update keeps, over which
span each estimator ranks them, and the bias the selection brings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents import NRES, PES
from pes_rl.cli.flags import parse_config
from pes_rl.core.estimators import nres, pes, top_pairs_mask, truncated_es
from pes_rl.errors import ConfigError

NO_END = jnp.zeros(6, bool)


def asked(estimator, sigma=0.5, key=0):
    return estimator.ask(jax.random.key(key), estimator.init(6, 3), sigma)


def test_the_pairs_with_the_best_member_are_kept():
    # Pairs' best members: 5, 2, 4 -> the top two are pairs 0 and 2.
    span = jnp.array([5.0, -9.0, 2.0, 1.0, 0.0, 4.0])
    np.testing.assert_array_equal(
        top_pairs_mask(span, 2), [True, True, False, False, True, True]
    )
    assert top_pairs_mask(span, None).all()


@pytest.mark.parametrize("shaping", ["none", "std", "centered_ranks"])
def test_the_update_is_that_of_the_kept_pairs_alone(shaping):
    """With b of 3 pairs kept, the direction is the plain estimate of an
    estimator that only ever had those pairs."""
    returns = jnp.array([5.0, -9.0, 2.0, 1.0, 0.0, 4.0])
    state = asked(pes(shaping, top_pairs=2))
    grad, _ = pes(shaping, top_pairs=2).tell(state, returns, NO_END)
    kept = np.array([0, 1, 4, 5])
    alone = pes(shaping)
    sub = state.replace(
        eps=state.eps[kept],
        score=state.score[kept],
        redraw=state.redraw[kept],
        span_return=state.span_return[kept],
        span_windows=state.span_windows[kept],
    )
    expected, _ = alone.tell(sub, returns[kept], NO_END[kept])
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_all_pairs_kept_is_the_plain_estimate():
    state = asked(nres("std", top_pairs=3))
    returns = jnp.array([5.0, -9.0, 2.0, 1.0, 0.0, 4.0])
    grad, _ = nres("std", top_pairs=3).tell(state, returns, NO_END)
    plain, _ = nres("std").tell(state, returns, NO_END)
    np.testing.assert_allclose(grad, plain, rtol=1e-6)


def kept_pairs(estimator, windows, ended=NO_END):
    """Per window (its returns in ``windows``), the pairs whose noise the
    update used: with D = 3 and 3 pairs, the direction is sum_j c_j s_j,
    s_j the pair's score (eps / sigma^2, or PES's sum of them) and
    c_j = (R+ - R-) / 2 for a kept pair j, 0 for the others."""
    state, kept = estimator.init(6, 3), []
    for i, returns in enumerate(windows):
        state = estimator.ask(jax.random.key(i), state, 0.5)
        grad, after = estimator.tell(state, jnp.asarray(returns), ended)
        scores = np.asarray(state.score[::2])  # one row per pair
        coefficients = np.linalg.solve(scores.T, np.asarray(grad))
        kept.append((np.abs(coefficients) > 1e-3).tolist())
        state = after
    return kept


def test_nres_ranks_over_the_episode_pes_over_the_window():
    """Pair 0 earns 10 then 1; pair 1 earns 0 then 6: in the second window
    NRES (one eps per episode) still ranks pair 0 first (5.5 a window
    against 3); PES and truncated ES, whose noise is new every window, rank
    pair 1 first. After an episode ends, NRES starts counting again."""
    first = [10.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    second = [1.0, 0.0, 6.0, 0.0, 0.0, 0.0]
    assert kept_pairs(nres(top_pairs=1), [first, second])[1] == [
        True, False, False,
    ]  # fmt: skip
    for estimator in (pes(top_pairs=1), truncated_es(top_pairs=1)):
        assert kept_pairs(estimator, [first, second])[1] == [False, True, False]
    ended = jnp.ones(6, bool)
    assert kept_pairs(nres(top_pairs=1), [first, second], ended)[1] == [
        False, True, False,
    ]  # fmt: skip


def test_nres_ranks_per_window_of_its_span():
    """A pair 3 windows into its episode with 2 a window ranks below a pair
    that started this window with 4, though its sum (6) is larger."""
    estimator = nres(top_pairs=1)
    state = estimator.init(6, 3)
    windows = [[2.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 2 + [[2.0, 0.0, 4.0, 0.0, 0, 0]]
    ended = [jnp.array([False, False, True, True, True, True])] * 2 + [NO_END]
    for i, (returns, end) in enumerate(zip(windows, ended, strict=True)):
        state = estimator.ask(jax.random.key(i), state, 0.5)
        grad, after = estimator.tell(state, jnp.asarray(returns), end)
        if i < 2:
            state = after
    scores = np.asarray(state.score[::2])
    coefficients = np.linalg.solve(scores.T, np.asarray(grad))
    assert (np.abs(coefficients) > 1e-3).tolist() == [False, True, False]


def test_top_pairs_biases_the_estimate():
    """On R = theta + eps (gradient 1) the plain estimate is unbiased; the
    best pair of 4 is the one with the largest |eps|, so the kept estimate
    is larger than 1 on average (by many standard errors)."""

    def estimates(top_pairs, count=4000):
        estimator = truncated_es(top_pairs=top_pairs)
        keys = jax.random.split(jax.random.key(0), count)

        def one(key):
            state = estimator.ask(key, estimator.init(8, 1), 0.1)
            returns = state.eps[:, 0]  # theta = 0
            return estimator.tell(state, returns, jnp.zeros(8, bool))[0][0]

        return np.asarray(jax.vmap(one)(keys))

    plain, kept = estimates(None), estimates(1)
    for values, lies_near_1 in ((plain, True), (kept, False)):
        error = abs(values.mean() - 1.0) / (values.std() / np.sqrt(len(values)))
        assert (error < 4) == lies_near_1, (values.mean(), error)
    assert kept.mean() > 1.5


def test_agents_and_the_cli_take_top_pairs_and_refuse_too_many():
    settings = dict(env="linear_quadratic", num_particles=8, preset=None)
    kept, every = PES(**settings, top_pairs=2), PES(**settings)
    for agent in (kept, every):
        agent.learn(400, progress_bar=False)
    assert not np.allclose(kept.theta, every.theta)
    flags = ["--env", "linear_quadratic", "--top-pairs", "2"]
    assert PES(**parse_config(flags).agent_kwargs()).config.top_pairs == 2
    with pytest.raises(ConfigError, match="only 4 pairs"):
        NRES(**settings, top_pairs=5)
    with pytest.raises(ConfigError, match="top_pairs must be a positive integer"):
        NRES(**settings, top_pairs=0)
