"""pes_rl: reinforcement learning with online evolution strategies."""

__version__ = "0.1.0"
