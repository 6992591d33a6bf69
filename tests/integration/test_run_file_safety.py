"""The files of a run, in-process: a full disk at fsync, damaged and
earlier-version checkpoints, planted symlinks (issue 30, items 11, 12, 15;
the kills, resumes and a whole run under a loose umask are in
e2e/test_run_files.py)."""

import errno
import json
import os

import pytest

from pes_rl.errors import ConfigError, DiskFullError
from pes_rl.runs.checkpoints import read, save_checkpoint
from pes_rl.runs.files import write_text_atomic
from pes_rl.runs.run_dir import Claim, write_metrics_line

FLAGS = ["--env", "linear_quadratic", "--eval-every", "4000", "--no-progress"]


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_full_disk_at_fsync_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    """Some file systems report a full disk only when the data is flushed."""
    path = tmp_path / "config.json"
    path.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match=f"to write {path} "):
        write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["config.json"]


def test_every_flipped_bit_of_a_checkpoint_is_refused_before_unpickling(
    lq_pes, tmp_path
):
    agent = lq_pes()
    for _ in range(3):
        agent.update()
    path = tmp_path / "a.pkl"
    agent.save(path)
    assert read(path)["counters"]["num_updates"] == 3
    data = path.read_bytes()
    # Every byte of the header and of the first 500 of the pickle, then a
    # sample spread over the rest.
    positions = sorted({*range(min(len(data), 600)), *range(0, len(data), 97)})
    damaged = tmp_path / "damaged.pkl"
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1 << (position % 8)
        damaged.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="damaged|not a pes_rl checkpoint"):
            read(damaged)


def test_checkpoints_of_earlier_versions_still_load(lq_pes, tmp_path):
    """Files without the checksum header (a bare pickle) load as before."""
    agent = lq_pes()
    agent.update()
    agent.save(tmp_path / "new.pkl")
    data = (tmp_path / "new.pkl").read_bytes()
    (tmp_path / "old.pkl").write_bytes(data[data.index(b"\n") + 1 :])
    assert not data.startswith(b"\x80") and data.index(b"\n") == 89
    old = read(tmp_path / "old.pkl")
    assert old["counters"] == read(tmp_path / "new.pkl")["counters"]
    assert old["counters"]["num_updates"] == 1


@pytest.fixture
def victim(tmp_path):
    """A file the user cares about, outside the run directory."""
    path = tmp_path / "victim"
    path.write_text("precious\n")
    yield path
    assert path.read_text() == "precious\n"


def test_a_checkpoint_does_not_follow_a_link_at_its_old_temporary_name(
    lq_pes, tmp_path, victim
):
    directory = tmp_path / "run" / "checkpoints"
    directory.mkdir(parents=True)
    agent = lq_pes()
    agent.update()
    name = f"ckpt-{agent.num_updates:09d}.pkl"
    (directory / f"{name}.tmp").symlink_to(victim)  # the name used to be fixed
    save_checkpoint(agent, directory)
    assert not (directory / name).is_symlink()
    assert read(directory / name)["counters"]["num_updates"] == 1


def test_metrics_do_not_follow_a_link_at_their_old_temporary_name(tmp_path, victim):
    (tmp_path / "metrics.tmp").symlink_to(victim)
    write_metrics_line(tmp_path / "metrics.jsonl", {"env_steps": 5, "x": 0})
    write_metrics_line(tmp_path / "metrics.jsonl", {"env_steps": 5, "x": 1})
    assert metrics(tmp_path) == [{"env_steps": 5, "x": 1}]  # replaced


def test_the_lock_file_does_not_follow_a_link(tmp_path, victim):
    (tmp_path / ".lock").symlink_to(victim)
    with pytest.raises(ConfigError, match="cannot use run directory"):
        Claim(tmp_path, new=False)
