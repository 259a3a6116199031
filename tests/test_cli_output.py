"""`tracker` output where users send it: a pipe that closes early, a log file, and where an evidence pack lands when
no --output is given (issue 14, items 6 and 7). Run as a user runs them: the installed `tracker` command in a shell,
or main() with standard output captured (not a terminal)."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path


from tests.cli_helpers import run_cli as run

ROOT = Path(__file__).resolve().parents[1]
TRACKER = ROOT / ".venv" / "bin" / "tracker"
NENC, HARTLEPOOL = "E54000050", "E06000001"


def test_export_into_a_pipe_that_closes_early_ends_quietly(snapshot_db_file, tmp_path):
    """`tracker export --output - | head`: head reads two lines and closes the pipe; a normal end, exit 0, silent.
    Every area (in batches, so writing goes on after head has gone), one domain to keep it small."""
    env = {**os.environ, "TRACKER_DATABASE_URL": f"sqlite:///{snapshot_db_file}", "TRACKER_DATA_DIR": str(tmp_path)}
    command = f"set -o pipefail; '{TRACKER}' export --area all --domain transport --output - | head -n 2"
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    lines = done.stdout.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and lines[0].startswith('"Area code","Area name"') and lines[1].startswith('"E92000001"')


def test_tables_off_a_terminal_are_plain_rows_one_line_each(capsys):
    code, out, _ = run(capsys, "departments")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Ministerial departments"
    assert not set("│┃─━┏┓└┘") & set(out)  # no box drawing: one row, one line, however long
    header, rows = lines[1], lines[2:]
    assert header.split() == ["abbreviation", "name", "slug", "dhsc", "scope"]
    dhsc = [r for r in rows if " DHSC " in r]
    assert len(dhsc) == 1 and "Department of Health and Social Care" in dhsc[0]
    assert len(rows) == 25  # every ministerial department, none wrapped onto a second line


def test_refresh_summary_in_a_log_keeps_each_source_on_one_line(capsys):
    from tracker.cli import _print_summaries
    from tracker.refresh import RunSummary

    summary = RunSummary(source="desnz_fuel_poverty", status="succeeded", rows_read=34090, rows_loaded=34082,
                         rows_changed=34082, rows_rejected=0, rows_unmapped=8, seconds=5.2)
    _print_summaries([summary], "text")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Refresh summary"
    assert out[1].split()[5:7] == ["removed", "kept"]
    assert out[2].split() == ["desnz_fuel_poverty", "succeeded", "34090", "34082", "34082", "0", "0", "0", "8", "5.2"]


def test_export_without_output_in_the_project_folder_goes_to_the_data_folder(snapshot_db_file, tmp_path,
                                                                             monkeypatch, capsys):
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{snapshot_db_file}")
    monkeypatch.setenv("TRACKER_DATA_DIR", str(tmp_path / "data"))
    name = f"pack-{HARTLEPOOL}-{date.today().isoformat()}.csv"
    monkeypatch.chdir(ROOT)  # as after `make run`: the repository root
    before = set(os.listdir(ROOT))
    code, out, err = run(capsys, "export", "--area", HARTLEPOOL, "--domain", "transport")
    assert code == 0, err
    assert (tmp_path / "data" / "packs" / name).exists()
    assert (tmp_path / "data" / "packs" / name.replace(".csv", "-dictionary.csv")).exists()
    assert set(os.listdir(ROOT)) == before  # nothing left among the source files
    assert f"to {tmp_path / 'data' / 'packs' / name};" in out

    elsewhere = tmp_path / "my-packs"  # run deliberately in a folder of the user's own: the pack lands there
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run(capsys, "export", "--area", HARTLEPOOL, "--domain", "transport")
    assert code == 0, err
    assert (elsewhere / name).exists() and f"to {name};" in out


def test_packs_in_the_repository_are_ignored_by_git():
    for name in ("pack-E54000050-2025-06-01.csv", "pack-E54000050-2025-06-01-dictionary.csv",
                 "pack-E06000001-E06000002-2025-06-01.xlsx"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name
