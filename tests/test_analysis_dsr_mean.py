"""Directly standardised rates with Dobson limits and means with Student's t limits (tracker.analysis.stats) against
PHEindicatormethods' own worked examples (tests/fixtures/phe_indicator_methods/README.md says where they come from)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tracker.analysis.stats import ESP2013, dsr, mean_ci

FIXTURES = Path(__file__).parent / "fixtures" / "phe_indicator_methods"


def _expected(multiplier: int) -> pd.DataFrame:
    res = pd.read_csv(FIXTURES / "dsr_testresults.csv")
    return res[res["statistic"].isin([f"dsr per {multiplier}", "dsr NA for total count < 10"])
               & (res.index >= (0 if multiplier == 10000 else 4))].head(4).set_index("area")


@pytest.mark.parametrize("multiplier", [10000, 100000])
def test_dsr_and_dobson_limits_match_calculate_dsr_to_1e6(multiplier):
    data = pd.read_csv(FIXTURES / "dsr_testdata_multiarea.csv")
    std = np.tile(ESP2013, data["area"].nunique())
    expected = _expected(multiplier)
    got95 = dsr(data["count"], data["pop"], std, groups=data["area"], multiplier=multiplier)
    got998 = dsr(data["count"], data["pop"], std, groups=data["area"], multiplier=multiplier, confidence=0.998)
    for area in ("testdata_big", "testdata_small"):
        row = expected.loc[area]
        assert got95.at[area, "total_count"] == row["total_count"]
        assert got95.at[area, "total_pop"] == row["total_pop"]
        for got, col in ((got95.at[area, "value"], "value"), (got95.at[area, "lower"], "lower95_0cl"),
                         (got95.at[area, "upper"], "upper95_0cl"), (got998.at[area, "lower"], "lower99_8cl"),
                         (got998.at[area, "upper"], "upper99_8cl")):
            assert got == pytest.approx(row[col], abs=1e-6), (area, col)
    # 9 events: OHID publishes no DSR
    assert expected.loc["testdata_tiny", "statistic"] == "dsr NA for total count < 10"
    assert got95.loc["testdata_tiny", ["value", "lower", "upper"]].isna().all()
    assert got95.at["testdata_tiny", "total_count"] == 9


def test_dsr_with_a_user_given_standard_population_matches_calculate_dsr():
    data = pd.read_csv(FIXTURES / "dsr_testdata_1976.csv")
    row = _expected(100000).loc["testdata_1976"]
    got = dsr(data["count"], data["pop"], data["esp1976"]).iloc[0]
    assert (got["total_count"], got["total_pop"]) == (row["total_count"], row["total_pop"])
    for col, exp in (("value", "value"), ("lower", "lower95_0cl"), ("upper", "upper95_0cl")):
        assert got[col] == pytest.approx(row[exp], abs=1e-6)


def test_dsr_refuses_a_zero_population():
    with pytest.raises(ValueError, match="population greater than zero"):
        dsr([1, 2], [10, 0], [5000, 5500])


def test_means_and_t_limits_match_phe_mean_to_1e6():
    data = pd.read_csv(FIXTURES / "mean_testdata.csv")
    expected = pd.read_csv(FIXTURES / "mean_testresults.csv").set_index("area")
    grouped = [mean_ci(data["values"], groups=data["area"], confidence=c) for c in (0.95, 0.998)]
    overall = [mean_ci(data["values"], confidence=c).rename(index={"all": "No grouping"}) for c in (0.95, 99.8)]
    for got95, got998 in ((grouped[0], grouped[1]), (overall[0], overall[1])):
        for area in got95.index:
            row = expected.loc[area]
            assert got95.at[area, "value_count"] == row["value_count"]
            for got, col in ((got95.at[area, "value_sum"], "value_sum"), (got95.at[area, "stdev"], "stdev"),
                             (got95.at[area, "value"], "value"), (got95.at[area, "lower"], "lower95_0cl"),
                             (got95.at[area, "upper"], "upper95_0cl"), (got998.at[area, "lower"], "lower99_8cl"),
                             (got998.at[area, "upper"], "upper99_8cl")):
                assert got == pytest.approx(row[col], abs=1e-6), (area, col)
    assert set(grouped[0].index) == {"Area1", "Area2"}


def test_a_mean_of_one_value_has_no_interval():
    got = mean_ci([4.0, np.nan]).iloc[0]
    assert got["value"] == 4.0 and np.isnan(got["lower"]) and np.isnan(got["upper"])
