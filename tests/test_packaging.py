"""Install and docs hygiene (issue 14 item 10): the package licence as an SPDX expression with its licence files,
and the bundled snapshot's SOURCES.md describing the project's own files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tracker" / "data" / "snapshot"
GEOGRAPHY = ROOT / "tracker" / "data" / "geography"


def test_licence_is_an_spdx_expression_with_its_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    licence = project["project"]["license"]
    assert isinstance(licence, str)  # not the deprecated {text = ...} table setuptools warns about
    assert canonicalize_license_expression(licence) == "MIT AND OGL-UK-3.0"
    files = project["project"]["license-files"]
    assert files and all((ROOT / f).is_file() for f in files)
    # license-files needs setuptools 77 (PEP 639)
    assert any(re.fullmatch(r"setuptools>=(\d+)", r) and int(r.split(">=")[1]) >= 77
               for r in project["build-system"]["requires"])


def test_snapshot_sources_describe_the_files_bundled_here():
    text = (SNAPSHOT / "SOURCES.md").read_text(encoding="utf-8")
    assert "shared/" not in text and "data/boundaries/" not in text and "data/lookups/" not in text
    bundled = [p for p in SNAPSHOT.rglob("*") if p.is_file() and p.suffix != ".md"]
    assert len(bundled) > 50
    missing = [str(p.relative_to(SNAPSHOT)) for p in bundled if str(p.relative_to(SNAPSHOT)) not in text]
    assert not missing, f"SOURCES.md does not describe {missing}"
    folders = {p.name for p in SNAPSHOT.iterdir() if p.is_dir()}
    named = set(re.findall(r"(?<![\w/.-])((?:\.\./geography|" + "|".join(folders) + r")/[\w.-]+\.(?:csv|gz|geojson))", text))
    gone = [p for p in named if not (SNAPSHOT / p).resolve().is_file()]
    assert not gone, f"SOURCES.md names files that are not in the project: {gone}"
    assert any(p.startswith("../geography/") for p in named)


def test_the_dashboard_started_from_the_project_folder_runs_without_streamlits_developer_features():
    """`make run`, the systemd units and the image start Streamlit in the project folder: its settings there must turn
    off the developer's file watcher, which cost every new visitor's page view about half the server's CPU, and magic,
    which no page uses and which rewrote each page script for every new visit."""
    import subprocess
    import sys

    read = ("from streamlit import config; print(*(config.get_option(o) for o in "
            "('server.fileWatcherType', 'server.runOnSave', 'runner.magicEnabled')))")
    out = subprocess.run([sys.executable, "-c", read], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["none", "False", "False"]
