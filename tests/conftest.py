import pytest

from pes_rl.agents import PES


@pytest.fixture
def lq_pes():
    """A small PES agent on the linear-quadratic toy task."""

    def make(**kwargs):
        settings = dict(
            env="linear_quadratic",
            num_particles=8,
            truncation_length=5,
            sigma=0.1,
            learning_rate=0.005,
            fitness_shaping="std",
            seed=0,
        )
        return PES(**{**settings, **kwargs})

    return make
