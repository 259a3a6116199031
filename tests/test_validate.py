"""pipelines.validate.to_numbers: the bulk path for plain numbers and the careful path for everything else
must agree with what a publisher's cell means."""

import math

import pandas as pd

from pipelines.base import TIDY_COLUMNS, Payload, read_csv_strict, tidy
from pipelines.validate import Problems, to_numbers

MARKERS = {"x": "suppressed", "-1": "not collected (numeric-looking marker)"}


def _frame(values: list, note=None) -> pd.DataFrame:
    rows = pd.DataFrame({"indicator_id": "i", "area_code": [f"E0600000{n}" for n in range(len(values))],
                         "period": "2024", "value": values})
    if note is not None:
        rows["note"] = note
    return tidy(rows)


def test_cells_as_publishers_write_them():
    cells = ["12.5", "1,234", " 7 ", "", "x", "X ", "-3", "1e3", ".5", "nan", "-1"]
    problems = Problems()
    out = to_numbers(_frame(cells), MARKERS, problems)
    got = {cells[i]: v for i, v in out["value"].items()}  # by row: a rejected row is left out
    assert got["12.5"] == 12.5 and got["1,234"] == 1234 and got[" 7 "] == 7 and got["-3"] == -3
    assert got["1e3"] == 1000 and got[".5"] == 0.5
    for blank in ("", "x", "X ", "-1"):
        assert math.isnan(got[blank]), blank
    notes = {cells[i]: v for i, v in out["note"].items()}
    assert notes["x"] == notes["X "] == "suppressed"
    assert notes["-1"] == "not collected (numeric-looking marker)"  # never read as the number -1
    assert notes["12.5"] is None and notes[""] is None
    assert "nan" not in got  # "NaN" spelt out is rejected with its reason, never stored as an empty value
    assert problems.rejected == {"non-finite value (NaN)": {"count": 1, "examples": ["i E06000009 (nan) 2024"]}}


def test_unknown_text_rejects_the_row_with_its_reason_and_keeps_a_source_note():
    problems = Problems()
    out = to_numbers(_frame(["5", "n/a?", "x"], note=[None, None, "provisional"]), MARKERS, problems)
    assert out["area_code"].tolist() == ["E06000000", "E06000002"]
    assert out["note"].tolist() == [None, "provisional; suppressed"]
    bucket = problems.rejected["non-numeric value"]
    assert bucket["count"] == 1 and bucket["examples"] == ["i E06000001 (n/a?) 2024"]


def test_a_column_of_mixed_python_objects_takes_the_careful_path():
    problems = Problems()
    out = to_numbers(_frame([3, "4.5", None, 2.25, "x"]), MARKERS, problems)
    assert out["value"].tolist()[:2] == [3.0, 4.5] and out["value"].tolist()[3] == 2.25
    assert math.isnan(out["value"].iloc[2]) and out["note"].iloc[4] == "suppressed"


def test_read_csv_strict_names_the_record_that_does_not_fit():
    text = "area_code,value\nE06000001,1\n\nE06000002\n"
    try:
        read_csv_strict(Payload("p.csv", text.encode()), ["area_code", "value"], "test")
    except Exception as exc:  # noqa: BLE001 - the message is what users see
        assert "p.csv looks truncated or malformed: record 3 has 1 fields, the header has 2" in str(exc)
    else:
        raise AssertionError("a short record was accepted")
    frame = read_csv_strict(Payload("p.csv", "a,b,a\n1,,3\n".encode()), ["a"], "test")
    assert list(frame.columns) == ["a", "b", "a.1"] and frame.iloc[0].tolist() == ["1", "", "3"]
    assert set(TIDY_COLUMNS) >= {"value", "note"}
