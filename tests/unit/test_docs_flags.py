"""The command line guide names only flags that exist, and every flag of
``python -m pes_rl.train`` is documented somewhere on the site."""

import re
from pathlib import Path

import pytest

from pes_rl.cli.flags import parse_config

ROOT = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def train_flags(capsys, monkeypatch) -> set[str]:
    monkeypatch.setenv("COLUMNS", "1000")  # no flag broken over two lines
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    return set(FLAG.findall(capsys.readouterr().out))


def test_the_cli_guide_names_only_real_flags(capsys, monkeypatch):
    guide = set(FLAG.findall((ROOT / "docs" / "guides" / "cli.md").read_text()))
    assert guide - train_flags(capsys, monkeypatch) == set()
    assert len(guide) > 30


def test_every_flag_is_documented(capsys, monkeypatch):
    site = "".join(path.read_text() for path in (ROOT / "docs").rglob("*.md"))
    documented = set(FLAG.findall(site))
    # --no-X and --X of a boolean flag: either one documents both.
    undocumented = {
        flag
        for flag in train_flags(capsys, monkeypatch)
        if flag not in documented
        and flag.replace("--no-", "--") not in documented
        and "--no-" + flag[2:] not in documented
    }
    assert undocumented == set()
