import pytest


def pytest_collection_modifyitems(items):
    """End-to-end tests start subprocesses, Ray clusters and multi-host
    runs with fixed CPU counts: under pytest-xdist they run one at a time,
    on one worker."""
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("e2e"))
