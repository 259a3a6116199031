"""The README documents what users rely on: every setting, every CLI command, the two set-up commands."""

from __future__ import annotations

from pathlib import Path

from tracker.cli import cli
from tracker.config import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    missing = [name for name in SETTINGS if f"`{name}`" not in README]
    assert not missing, f"README's Settings table misses {missing}"


def test_every_command_is_documented():
    missing = [name for name in cli.commands if f"`tracker {name}" not in README]
    assert not missing, f"README misses commands {missing}"


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()[1:]]
    assert commands == ["make run", "make test"]
