"""The window rules, once for both backends: pairs, absorbing ends, the
episode clock and resets.

Particles come in pairs (``partner[i]``) that share reset seeds or keys and
an episode clock. A member whose episode ends early absorbs (it is not
stepped, its reward is zero) until the pair's episode ends: both members
done, or the clock at the horizon. Resets happen only at window starts.

Each rule is a pure function of per-member arrays written with operators
alone (``&``, ``~``, ``+``, indexing), so the same code runs on numpy arrays
in the host backend (``pes_rl.envs.backends.gymnasium``, Ray workers) and on traced jax
arrays in the jitted one (``pes_rl.core.problem_window``). A parity test
(``tests/test_window_rules.py``) runs random episodes through both backends.
"""

import numpy as np


def pair_partners(num_envs: int) -> np.ndarray:
    """Antithetic pairs sit next to each other: 0-1, 2-3, ..."""
    return np.arange(num_envs) ^ 1


def members_to_reset(needs_reset, active, broadcast_from: int | None):
    """At a window's start: the members whose pair's episode ended, if they
    take part in the window (``active``); with ``broadcast_from`` (truncated
    ES) only that member, whose state the others then copy."""
    if broadcast_from is None:
        return needs_reset & active
    return needs_reset & (np.arange(needs_reset.shape[0]) == broadcast_from)


def live_members(running, alive):
    """The members stepped now: their pair's episode runs and they are not
    done (a done member absorbs)."""
    return running & alive


def absorb(alive, live, done):
    """A live member whose env says done stops being stepped."""
    return alive & ~(live & done)


def tick(running, alive, clock, partner, horizon: int):
    """After a step: the running pairs' clocks advance, and a pair whose
    members are both done, or whose clock reached ``horizon``, ends its
    episode. Returns ``(running, alive, clock, finished)``."""
    clock = clock + running
    finished = running & ((~alive & ~alive[partner]) | (clock >= horizon))
    return running & ~finished, alive & ~finished, clock, finished


def resets_after(needs_reset, ended, active):
    """At a window's end: the members to reset at the next start, those of
    the window whose pair's episode ended (idle members report an ended
    episode so estimators start them afresh, but are not reset)."""
    return needs_reset | (ended & active)
