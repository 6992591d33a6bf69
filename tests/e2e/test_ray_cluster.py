"""Ray workers on a local two-node cluster (``ray.cluster_utils.Cluster``,
one CPU per node, one worker per node): losing a node mid-run neither stops
training nor changes its numbers."""

import logging
import os
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')
from ray.cluster_utils import Cluster  # noqa: E402
from ray_envs import SMALL  # noqa: E402

from pes_rl.agents import PES  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    path = os.pathsep.join(map(str, sys.path))
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "env_vars": {"PYTHONPATH": path}},
    )
    cluster.add_node(num_cpus=1, env_vars={"PYTHONPATH": path})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def run(updates: int, after=None, **kwargs) -> np.ndarray:
    agent = PES(**SMALL, **kwargs)
    try:
        for i in range(updates):
            agent.update()
            if after is not None:
                after(i, agent)
        return np.asarray(agent.theta), np.asarray(agent.obs_stats.mean)
    finally:
        agent.close()


def test_a_removed_node_is_replaced_and_the_run_unchanged(cluster, caplog):
    expected = run(5)
    nodes = {}

    def swap_node(i, agent):
        if i == 1:
            worker_node = next(n for n in cluster.list_all_nodes() if not n.head)
            cluster.remove_node(worker_node)  # its worker dies with it
            nodes["new"] = cluster.add_node(num_cpus=1)

    with caplog.at_level(logging.WARNING, logger="pes_rl.envs.backends.ray_workers"):
        got = run(5, after=swap_node, workers="ray", num_workers=2)
    assert "lost" in caplog.text and "replays its window" in caplog.text
    for x, y in zip(got, expected, strict=True):
        np.testing.assert_array_equal(x, y)
