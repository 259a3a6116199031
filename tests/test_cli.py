"""The `tracker` command as a user runs it: output formats, filters and one-line usage errors (exit 2)."""

from __future__ import annotations

import io
import json

import pandas as pd

from tests.cli_helpers import run_cli as run


def test_departments_csv_flags_dhsc(capsys):
    code, out, _ = run(capsys, "departments", "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert code == 0
    assert frame.loc[frame["dhsc"] == "DHSC", "abbreviation"].tolist() == ["DHSC"]
    assert {"MHCLG", "DESNZ", "DWP", "DfE", "Defra", "DfT", "HO", "MoJ"} <= set(frame["abbreviation"])


def test_department_lookup_by_historical_name(capsys):
    code, out, _ = run(capsys, "departments", "--lookup", "DCLG", "--format", "json")
    (row,) = json.loads(out)
    assert code == 0 and row["abbreviation"] == "MHCLG" and row["name_used_until"].startswith("2018-01-08")


def test_indicators_filter_accepts_a_historical_department_name(capsys):
    code, out, _ = run(capsys, "indicators", "--department", "DLUHC", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and rows
    assert all(r["department"] == "MHCLG" or "MHCLG" in r["secondary"] for r in rows)


def test_unknown_department_is_a_one_line_usage_error(capsys):
    code, out, err = run(capsys, "indicators", "--department", "Ministry of Magic")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("tracker: error: unknown department 'Ministry of Magic'; use a GOV.UK slug or one of:")


def test_bad_area_type_says_what_is_valid(capsys):
    code, _, err = run(capsys, "areas", "--type", "ward")
    assert code == 2 and err.count("\n") == 1
    assert "'ward' is not one of 'england', 'region', 'icb', 'utla', 'ltla'" in err


def test_unknown_domain_says_what_is_valid(capsys):
    code, _, err = run(capsys, "indicators", "--domain", "weather")
    assert code == 2 and "'weather' is not one of 'housing'" in err


def test_areas_lists_42_icbs_after_init(capsys):
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "init")[0] == 0  # safe to run twice
    code, out, _ = run(capsys, "areas", "--type", "icb", "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert code == 0 and len(frame) == 42
    assert "NHS North East and North Cumbria Integrated Care Board" in set(frame["name"])
    code, out, _ = run(capsys, "areas", "--type", "utla", "--format", "json")
    assert len(json.loads(out)) == 153
