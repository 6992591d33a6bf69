"""Worker processes (num_workers) step the same envs as the serial pool."""

import numpy as np


def test_worker_processes_match_the_serial_pool():
    from pes_rl.agents import PES, TruncatedES

    def run(cls, num_workers):
        agent = cls(
            env="linear_quadratic",
            num_particles=6,
            truncation_length=5,
            sigma=0.1,
            learning_rate=0.005,
            seed=3,
            num_workers=num_workers,
            preset=None,
        )
        try:
            infos = [agent.update() for _ in range(4)]
            return np.asarray(agent.theta), [i["window_return"] for i in infos]
        finally:
            agent.close()

    for cls in (PES, TruncatedES):  # TES copies state across processes
        serial, parallel = run(cls, 0), run(cls, 2)
        np.testing.assert_array_equal(serial[0], parallel[0])
        assert serial[1] == parallel[1]
