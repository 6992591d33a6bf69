"""Problems: any unrolled computation the agents can train.

A problem is an object with

- ``horizon``: T, the length of one inner run (an episode, a training run);
- ``init_params(key) -> params``: the mean parameters theta to start from
  (a pytree);
- ``init(key) -> state``: a fresh inner run;
- ``step(params, state, key) -> (state, reward, done)``: one step of it
  under ``params``, pure JAX and vmappable. ``key`` is shared by the two
  members of an antithetic pair (common random numbers: the same
  minibatch, the same noise). ``done`` ends the run early; the member then
  absorbs (no reward) until its pair's run ends.

A run that fails (diverges, crashes) should end with ``done`` and a
terminal reward that charges, once, what the rest of the run is worth: its
worst per-step reward times the steps left (``charge_rest``). Charging the
same total step by step keeps the objective, but PES weighs every later
step's constant by perturbations that can no longer change it: where the
partner trains on at a low loss, that is most of the estimate's variance
(docs/guides/problems.md says where charging once does not help).

``PES(problem=obj, ...)`` (and NRES, TruncatedES, FullES) trains it on the
jitted engine. A problem that also has ``observation(state) -> obs [O]``
can use ``obs_norm``: its ``step`` then takes a fourth argument, the
normaliser ``(mean, inv_std)``, and its parameters' first layer must be a
``Dense_0`` reading the normalised observation (``pes_rl.core.normalization``).
The RL problem (``pes_rl.envs.adapters.brax_problem``) is one such.

Shipped problems, by name: ``linear_quadratic``, ``influence_balancing``,
``lr_schedule_toy`` (``toys``); ``lr_schedule_digits`` (its training loss),
``lr_schedule_digits_val_accuracy``, ``hyperparams_digits`` (``digits``) and
``learned_optimizer``, which need scikit-learn (the ``meta`` extra).
``register(name, factory)`` adds one; the CLI takes ``--problem NAME`` or
``--problem module:factory``.
"""

import difflib
import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax.numpy as jnp

from pes_rl.errors import ConfigError


def charge_rest(
    failed: Any, reward: Any, worst: Any, steps_left: Any
) -> tuple[Any, Any]:
    """``(reward, done)`` of a step at which a run may fail: if ``failed``,
    ``worst`` (the worst reward of one step) times ``steps_left`` (this step
    included) and ``done``; else ``reward`` and not done. The run's total
    is the same as scoring ``worst`` at every step to the end."""
    failed = jnp.asarray(failed, bool)
    return jnp.where(failed, worst * steps_left, reward), failed


@runtime_checkable
class Problem(Protocol):
    horizon: int

    def init_params(self, key: Any) -> Any: ...

    def init(self, key: Any) -> Any: ...

    def step(self, params: Any, state: Any, key: Any) -> tuple[Any, Any, Any]: ...


_REGISTRY: dict[str, Callable[..., Problem]] = {}


def register(name: str, factory: Callable[..., Problem]) -> None:
    """Make ``factory(**kwargs)`` available as ``--problem NAME``."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    return sorted(_REGISTRY)


def registered_name(problem: Any) -> str | None:
    """The name ``problem``'s class is registered under (the first, where
    several share it), or None."""
    for name, factory in _REGISTRY.items():
        target = getattr(factory, "func", factory)  # a functools.partial's class
        if isinstance(target, type) and type(problem) is target:
            return name
    return None


def make(spec: str, **kwargs: Any) -> Problem:
    """A problem from a registered name or ``module:factory``."""
    if spec in _REGISTRY:
        factory = _REGISTRY[spec]
    elif ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot load problem {spec!r}: {err}") from None
        except Exception as err:  # the module's own code failed on import
            raise ConfigError(
                f"cannot load problem {spec!r}: importing {module} raised "
                f"{type(err).__name__}: {err}"
            ) from None
    else:
        close = difflib.get_close_matches(spec, names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown problem {spec!r}{hint} (registered: {', '.join(names())}; "
            "or pass module:factory)"
        )
    try:
        problem = factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot build problem {spec!r}: {err}") from None
    check(problem, spec)
    return problem


def check(problem: Any, name: str = "the problem") -> None:
    """One line naming what a problem object lacks."""
    missing = [
        attr
        for attr in ("horizon", "init_params", "init", "step")
        if not hasattr(problem, attr)
    ]
    if missing:
        raise ConfigError(f"{name} is not a Problem: it has no {', '.join(missing)}")
    horizon = problem.horizon
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon <= 0:
        raise ConfigError(
            f"{name}'s horizon must be a positive integer, got {horizon!r}"
        )


def _register_shipped() -> None:
    import functools

    from pes_rl.problems import digits, learned_optimizer, toys

    register("linear_quadratic", toys.LinearQuadratic)
    register("influence_balancing", toys.InfluenceBalancing)
    register("lr_schedule_toy", toys.LRScheduleToy)
    register("lr_schedule_digits", digits.LRScheduleDigits)
    register(
        "lr_schedule_digits_val_accuracy",
        functools.partial(digits.LRScheduleDigits, objective="val_accuracy"),
    )
    register("hyperparams_digits", digits.HyperparamsDigits)
    register("learned_optimizer", learned_optimizer.LearnedOptimizer)


_register_shipped()
