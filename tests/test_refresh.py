"""The refresh orchestration (tracker.refresh.run_source) with a small test source that reads the real
DESNZ fuel-poverty LA file from the bundled snapshot; faults are injected into copies of it (labelled)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert, select

from db.models import Indicator, Observation, Run
from pipelines.base import Payload, Source, read_csv_strict, tidy
from tracker.catalog import IndicatorSpec
from tracker.config import SNAPSHOT_DIR
from tracker.geography import AreaMapper
from tracker.refresh import run_source

REAL_FILE = SNAPSHOT_DIR / "fuel_poverty" / "desnz_sub_regional_fuel_poverty_2021_la.csv"
SPEC = IndicatorSpec(
    id="test-fuel-poverty", title="Fuel poverty (test copy)", domain="housing", unit="%", value_type="proportion",
    polarity="lower_is_better", department="department-for-energy-security-and-net-zero", producer="DESNZ",
    rationale="test", definition="test", licence="OGL", source="test_fuel", source_id="fuel_poor_pct", multiplier=100,
)


class FuelTestSource(Source):
    name = "test_fuel"
    title = "Fuel poverty test source"
    producer = "DESNZ"
    markers = {"c": "suppressed"}

    def __init__(self, text: str):
        self.text = text

    def read_offline(self, specs):
        yield Payload(location="snapshot/fuel_poverty/test.csv", content=self.text.encode())

    def parse(self, payload, specs):
        raw = read_csv_strict(payload, ["area_code", "area_name", "households", "fuel_poor_households", "fuel_poor_pct"], self.name)
        frame = pd.DataFrame({
            "indicator_id": SPEC.id, "area_code": raw["area_code"], "period": "2021",
            "period_start": "2021-01-01", "period_end": "2021-12-31", "value": raw["fuel_poor_pct"],
            "count": raw["fuel_poor_households"], "denominator": raw["households"],
        })
        return tidy(frame)


@pytest.fixture
def engine(initialised_engine):
    with initialised_engine.begin() as conn:
        conn.execute(insert(Indicator).values(
            id=SPEC.id, title=SPEC.title, domain=SPEC.domain, unit=SPEC.unit, value_type=SPEC.value_type,
            polarity=SPEC.polarity, department_slug=SPEC.department, secondary_departments=[], producer="DESNZ",
            rationale="test", definition="test", licence="OGL", source="test_fuel", source_id="x", area_types=["ltla"],
            headline_outcome=False, multiplier=100, default_sex="Persons"))
    return initialised_engine


def _run(engine, text):
    return run_source(engine, FuelTestSource(text), [SPEC], offline=True, mapper=AreaMapper.from_engine(engine))


def _stored(engine):
    with engine.connect() as conn:
        return pd.read_sql(select(Observation).order_by(Observation.area_code), conn).drop(columns=["run_id"])


def test_run_loads_real_rows_with_provenance(engine, isolated_data_dir):
    text = REAL_FILE.read_text()
    summary = _run(engine, text)
    assert summary.status == "succeeded", summary.error
    stored = _stored(engine).set_index("area_code")
    england = stored.loc["E92000001"]
    assert (round(england["value"], 1), england["count"], england["denominator"]) == (13.1, 3162752, 24070861)
    assert stored.index.str.startswith(("E06", "E07", "E08", "E09")).sum() == 296
    with engine.connect() as conn:
        run = conn.execute(select(Run).where(Run.id == summary.run_id)).one()
    assert run.status == "succeeded" and run.mode == "offline" and run.period_max == "2021"
    assert run.locations == ["snapshot/fuel_poverty/test.csv"]
    checksum = run.checksums["snapshot/fuel_poverty/test.csv"]
    assert (isolated_data_dir / "raw" / checksum[:2] / f"{checksum}.gz").exists()  # archived for replay
    # counties, metropolitan counties and Inner/Outer London have no place in the tracker's geography:
    # they are counted and reported, never dropped silently
    assert run.rows_unmapped == summary.rows_read - run.rows_loaded - run.rows_rejected > 0
    reasons = run.problems["unmapped"]
    assert all(b["count"] > 0 and b["examples"] for b in reasons.values())
    assert any(reason.startswith("E11000001 ") for reason in reasons)  # e.g. a metropolitan county


def test_second_identical_run_changes_nothing(engine):
    text = REAL_FILE.read_text()
    _run(engine, text)
    before = _stored(engine)
    again = _run(engine, text)
    assert again.status == "succeeded" and again.rows_changed == 0
    pd.testing.assert_frame_equal(_stored(engine), before)


def test_bad_rows_are_rejected_with_reasons_and_markers_become_null(engine):
    lines = REAL_FILE.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    cols = header.split(",")
    pct = cols.index("fuel_poor_pct")

    def with_value(row, value):
        fields = row.split(",")
        fields[pct] = value
        return ",".join(fields)

    by_code = {r.split(",")[0]: i for i, r in enumerate(rows)}
    rows[by_code["E06000001"]] = with_value(rows[by_code["E06000001"]], "c")  # a suppression marker
    rows[by_code["E06000002"]] = with_value(rows[by_code["E06000002"]], "n/a?")  # not a number, not a marker
    rows[by_code["E06000003"]] = with_value(rows[by_code["E06000003"]], "130.0")  # a percentage over 100
    rows[by_code["E06000004"]] = with_value(rows[by_code["E06000004"]], "-2")  # negative
    rows.append(with_value(rows[by_code["E06000005"]], "99.0"))  # same key, different value
    before = _stored(engine).set_index("area_code")
    summary = _run(engine, "\n".join([header, *rows]) + "\n")
    assert summary.status == "succeeded"
    stored = _stored(engine).set_index("area_code")
    assert pd.isna(stored.loc["E06000001", "value"]) and stored.loc["E06000001", "note"] == "suppressed"
    for code in ("E06000002", "E06000003", "E06000004", "E06000005"):
        if code in before.index:  # a rejected row never replaces nor deletes the stored value of its key
            assert stored.loc[code, "value"] == before.loc[code, "value"]
        else:
            assert code not in stored.index
    with engine.connect() as conn:
        problems = conn.execute(select(Run.problems).where(Run.id == summary.run_id)).scalar_one()["rejected"]
    assert set(problems) >= {"non-numeric value", "proportion above its plausible limit 100 (%)",
                             "proportion below its plausible limit 0 (%)", "duplicated key with different values"}
    assert problems["duplicated key with different values"]["count"] == 2


def test_failed_run_keeps_previous_data_and_records_the_error(engine):
    _run(engine, REAL_FILE.read_text())
    before = _stored(engine)
    renamed = REAL_FILE.read_text().replace("fuel_poor_pct", "fuel_poverty_rate", 1)
    summary = _run(engine, renamed)
    assert summary.status == "failed"
    assert summary.error.startswith("test_fuel: snapshot/fuel_poverty/test.csv is missing column(s) fuel_poor_pct; expected ")
    assert "found area_code, area_name, level, households, fuel_poor_households, fuel_poverty_rate" in summary.error
    pd.testing.assert_frame_equal(_stored(engine), before)
    with engine.connect() as conn:
        run = conn.execute(select(Run).where(Run.id == summary.run_id)).one()
    assert run.status == "failed" and run.error == summary.error and run.finished_at is not None


def test_truncated_file_is_refused(engine):
    text = REAL_FILE.read_text()
    summary = _run(engine, text[: len(text) // 2].rsplit(",", 1)[0])
    assert summary.status == "failed" and "truncated" in summary.error


def test_a_run_can_be_replayed_from_its_archived_payload(engine, isolated_data_dir, monkeypatch, capsys):
    from pipelines import registry
    from tracker.cli import main

    first = _run(engine, REAL_FILE.read_text())
    with engine.begin() as conn:  # damage one stored value
        conn.execute(Observation.__table__.update().where(Observation.area_code == "E06000001").values(value=99.0))
    monkeypatch.setattr(registry, "all_sources", lambda: {"test_fuel": FuelTestSource("not used: replay reads the archive")})
    monkeypatch.setattr("tracker.refresh.load_catalog", lambda: [SPEC])
    monkeypatch.setenv("TRACKER_DATABASE_URL", str(engine.url))
    with pytest.raises(SystemExit) as done:
        main(["replay", str(first.run_id)])
    assert done.value.code == 0
    stored = _stored(engine).set_index("area_code")
    assert round(stored.loc["E06000001", "value"], 2) == 14.31  # Hartlepool's published value is back
    with engine.connect() as conn:
        latest = conn.execute(select(Run).order_by(Run.id.desc())).first()
    assert (latest.mode, latest.replay_of, latest.status, latest.rows_changed) == ("replay", first.run_id, "succeeded", 1)
    # new data: the analysis of it was precomputed and saved for the dashboard's next first view
    from tracker.analysis.data import CODE_DIGEST, data_version
    from tracker.analysis.saved import saved_versions

    assert saved_versions(engine)[0] == (data_version(engine), CODE_DIGEST)
    assert "analysis: saving" in capsys.readouterr().err
    with pytest.raises(SystemExit) as missing:
        main(["replay", "9999"])
    assert missing.value.code == 2 and "there is no run 9999" in capsys.readouterr().err
