"""Gymnasium spaces as the policies see them: a flat observation vector, and
policy outputs turned into env actions.

``Box`` actions are the policy's outputs clipped to the bounds. ``Discrete``
and ``MultiDiscrete`` actions are a deterministic argmax over one output
(logit) per choice, per sub-space. Observations are a ``Box``, or a space
Gymnasium flattens into one (``Dict``, ``Tuple``, ``Discrete``, ...), which
the registry wraps in ``FlattenObservation``.
"""

from typing import NamedTuple

import gymnasium as gym
import numpy as np

from pes_rl.errors import ConfigError


class ActionDecoder(NamedTuple):
    size: int  # policy outputs per action
    low: np.ndarray | None  # Box bounds (flat), None for discrete spaces
    high: np.ndarray | None
    nvec: np.ndarray | None  # choices per sub-space (one for Discrete)
    start: np.ndarray | None
    multi: bool  # MultiDiscrete: one integer per sub-space
    shape: tuple[int, ...]  # a Box action's shape

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Env actions for policy outputs [n, size]."""
        outputs = np.asarray(outputs)
        if self.nvec is None:
            clipped = np.clip(outputs, self.low, self.high)
            return clipped.reshape(clipped.shape[:-1] + self.shape)
        splits = np.cumsum(self.nvec)[:-1]
        choices = [
            np.argmax(block, axis=-1) for block in np.split(outputs, splits, axis=-1)
        ]
        actions = np.stack(choices, axis=-1) + self.start
        return actions if self.multi else actions[..., 0]


def needs_flattening(space: gym.Space) -> bool:
    """Observations that are not a Box but flatten into one."""
    return not isinstance(space, gym.spaces.Box) and space.is_np_flattenable


def space_problems(observation_space: gym.Space, action_space: gym.Space) -> list:
    """Why an env's spaces cannot be used, all at once (empty when they can)."""
    problems = []
    if not (
        isinstance(observation_space, gym.spaces.Box)
        or needs_flattening(observation_space)
    ):
        problems.append(_observation_error(observation_space))
    try:
        action_decoder(action_space)
    except ConfigError as err:
        problems.append(str(err))
    return problems


def _observation_error(space: gym.Space) -> str:
    return (
        f"pes_rl needs observations that flatten into a vector (Box, Dict, Tuple, "
        f"Discrete, ...), got {space}"
    )


def action_decoder(space: gym.Space) -> ActionDecoder:
    if isinstance(space, gym.spaces.Box):
        low, high = (
            np.asarray(x, np.float32).reshape(-1) for x in (space.low, space.high)
        )
        return ActionDecoder(low.size, low, high, None, None, False, space.shape)
    if isinstance(space, gym.spaces.Discrete):
        nvec = np.array([space.n])
        start = np.array([space.start])
        return ActionDecoder(int(space.n), None, None, nvec, start, False, ())
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        nvec = np.asarray(space.nvec, np.int64)
        start = np.asarray(space.start, np.int64)
        return ActionDecoder(int(nvec.sum()), None, None, nvec, start, True, ())
    raise ConfigError(
        f"pes_rl supports Box, Discrete and (flat) MultiDiscrete action spaces, "
        f"got {space}"
    )


def observation_dim(space: gym.Space) -> int:
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(_observation_error(space))
    return int(np.prod(space.shape))
