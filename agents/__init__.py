"""Agent classes (installed as ``pes_rl.agents``)."""

from pes_rl.agents.es_agent import ESAgent


class PES(ESAgent):
    """Persistent ES (Vicol et al. 2021): fresh noise every window, returns
    weighted by the perturbations accumulated since the episode began.
    Unbiased."""

    accumulate = True


class NRES(ESAgent):
    """Noise-Reuse ES (Li et al. 2023): one perturbation per episode, reused
    in every window. Unbiased, lower variance than PES."""

    reuse_noise = True


class TruncatedES(ESAgent):
    """Truncated ES (PES paper, Algorithm 1): all particles start each window
    from a shared state advanced with the unperturbed parameters. Biased by
    truncation, by design."""

    shared_state = True


class FullES(ESAgent):
    """Full-episode ES (Salimans et al. 2017): K = horizon, every update
    starts particles from reset. Unbiased, one update per episode."""

    full_episodes = True


ALGORITHMS = {"pes": PES, "nres": NRES, "tes": TruncatedES, "es": FullES}

__all__ = ["ALGORITHMS", "ESAgent", "FullES", "NRES", "PES", "TruncatedES"]
