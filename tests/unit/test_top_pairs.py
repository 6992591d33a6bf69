"""Top-b directions (``top_pairs``): which pairs an update keeps, over which
span each estimator ranks them, and the bias the selection brings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents import NRES, PES
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
    )
    expected, _ = alone.tell(sub, returns[kept], NO_END[kept])
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_all_pairs_kept_is_the_plain_estimate():
    state = asked(nres("std", top_pairs=3))
    returns = jnp.array([5.0, -9.0, 2.0, 1.0, 0.0, 4.0])
    grad, _ = nres("std", top_pairs=3).tell(state, returns, NO_END)
    plain, _ = nres("std").tell(state, returns, NO_END)
    np.testing.assert_allclose(grad, plain, rtol=1e-6)


def window_kept(estimator, windows, ended=NO_END):
    """Per window (its returns in ``windows``), which pairs the update kept:
    ranked on the span returns the update saw."""
    state, kept = estimator.init(6, 3), []
    for i, returns in enumerate(windows):
        state = estimator.ask(jax.random.key(i), state, 0.5)
        _, state = estimator.tell(state, jnp.asarray(returns), ended)
        kept.append(np.asarray(top_pairs_mask(state.span_return, 1))[::2])
    return kept


def test_nres_ranks_over_the_episode_pes_over_the_window():
    """Pair 0 earns 10 then 0; pair 1 earns 0 then 6. In the second window
    NRES (one eps per episode) still ranks pair 0 first (10 against 6 so
    far); PES and truncated ES, whose noise is new every window, rank pair
    1 first. After an episode ends, NRES starts counting again."""
    first = [10.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    second = [0.0, 0.0, 6.0, 0.0, 0.0, 0.0]
    assert window_kept(nres(top_pairs=1), [first, second])[1].tolist() == [
        True, False, False,
    ]  # fmt: skip
    for estimator in (pes(top_pairs=1), truncated_es(top_pairs=1)):
        assert window_kept(estimator, [first, second])[1].tolist() == [
            False, True, False,
        ]  # fmt: skip
    ended = jnp.ones(6, bool)
    assert window_kept(nres(top_pairs=1), [first, second], ended)[1].tolist() == [
        False, True, False,
    ]  # fmt: skip


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


def test_agents_take_top_pairs_and_refuse_too_many():
    agent = PES(env="linear_quadratic", num_particles=8, top_pairs=2, preset=None)
    agent.learn(400, progress_bar=False)
    assert np.isfinite(np.asarray(agent.theta)).all()
    with pytest.raises(ConfigError, match="only 4 pairs"):
        NRES(env="linear_quadratic", num_particles=8, top_pairs=5, preset=None)
    with pytest.raises(ConfigError, match="top_pairs must be a positive integer"):
        NRES(env="linear_quadratic", num_particles=8, top_pairs=0, preset=None)
