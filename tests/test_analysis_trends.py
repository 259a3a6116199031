"""Recent trends (tracker.analysis.trends) against Fingertips' published "Recent Trend" markers on real series, OHID's
own calculator tests, and constructed series (labelled CONSTRUCTED) only where no real series exercises a rule.
tests/fixtures/fingertips_trends/README.md says where each real series comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.fingertips import read_fingertips_csv
from tracker.analysis.trends import CANNOT, CHI2_998, NO_CHANGE, REGRESSION, SPC, recent_trends
from tracker.catalog import CatalogError, _parse_entry, catalog_fields, default_trend_method
from tracker.config import SNAPSHOT_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "fingertips_trends"


def _from_fingertips_csv(raw: pd.DataFrame, value_type: str, polarity: str) -> pd.DataFrame:
    """A raw Fingertips export -> the frame recent_trends reads (financial or calendar years)."""
    raw = raw.drop_duplicates(["Area Code", "Sex", "Age", "Category Type", "Category", "Time period"])
    year = raw["Time period"].str[:4].astype(int)
    financial = raw["Time period"].str.contains("/")
    start = pd.to_datetime(year.astype(str) + np.where(financial, "-04-01", "-01-01"))

    def num(col):
        return pd.to_numeric(raw[col].replace("", np.nan))

    return pd.DataFrame({
        "area": raw["Area Code"], "sex": raw["Sex"], "age": raw["Age"], "category": raw["Category"],
        "period": raw["Time period"], "period_start": start,
        "period_end": start + pd.DateOffset(years=1) - pd.Timedelta(days=1),
        "value": num("Value"), "lci95": num("Lower CI 95.0 limit"), "uci95": num("Upper CI 95.0 limit"),
        "count": num("Count"), "denominator": num("Denominator"), "value_type": value_type, "polarity": polarity,
        "published": raw["Recent Trend"]})


def _series(name, values, lci=None, uci=None, count=None, denom=None, years=None, value_type="rate",
            polarity="lower_is_better", span_years=1, trend_method=None):
    years = years or list(range(2016, 2016 + len(values)))
    n = len(values)
    return pd.DataFrame({
        "series": name, "period": [str(y) for y in years], "period_start": [f"{y}-01-01" for y in years],
        "period_end": [f"{y + span_years - 1}-12-31" for y in years], "value": values,
        "lci95": lci if lci is not None else [np.nan] * n, "uci95": uci if uci is not None else [np.nan] * n,
        "count": count if count is not None else [100] * n, "denominator": denom if denom is not None else [1000] * n,
        "value_type": value_type, "polarity": polarity, "trend_method": trend_method})


def _run(*series) -> pd.DataFrame:
    return recent_trends(pd.concat(series, ignore_index=True), ["series"]).set_index("series")


def test_every_published_marker_of_a_real_fingertips_crude_rate_is_reproduced():
    """Real: Fingertips 90284 (crude rate, weighted regression), England, 9 regions and 153 counties and UAs, three
    sexes: the tracker's marker equals Fingertips' published Recent Trend on every series that has one."""
    raw = read_fingertips_csv(FIXTURES / "all_data_csv_by_indicator_id_90284_ati502_pati6_no_categories.csv.gz")
    frame = _from_fingertips_csv(raw, "rate", "lower_is_better")
    keys = ["area", "sex"]
    got = recent_trends(frame, keys)
    published = frame[frame["published"] != ""].sort_values("period").drop_duplicates(keys, keep="last")
    # a series with no value at all (City of London, Isles of Scilly) has no row: no trend to show
    both = published.merge(got, on=keys, how="left").fillna({"trend": CANNOT})
    assert len(both) == len(published) >= 480
    assert set(both["published"]) == {"Decreasing and getting better", "Increasing and getting worse", NO_CHANGE, CANNOT}
    mismatches = both[both["published"] != both["trend"]]
    assert mismatches.empty, mismatches[keys + ["published", "trend", "trend_statistic"]].head().to_string()
    tested = both[both["trend"] != CANNOT]
    assert len(tested) > 450
    assert (tested["trend_method"] == REGRESSION).all()
    assert (tested["trend_to"] == "2023/24").all()


def test_real_published_series_of_each_value_type_fingertips_marks():
    """Real (FingertipsNext's tests, read from the Fingertips website): a proportion increasing, a proportion with no
    CIs ("No significant change": nothing to regress on), a vaccination proportion decreasing and getting worse, a
    crude rate, an indirectly standardised proportion ("Cannot be calculated": not a value type Fingertips trends)
    and a directly standardised rate. Each indicator's default trend method (from its value type)."""
    data = pd.read_csv(FIXTURES / "fingertipsnext_published_trend_series.csv")
    end = pd.to_datetime(data["period_end"])
    frame = data.assign(period=end.dt.year.astype(str), period_end=end,
                        period_start=end - pd.DateOffset(years=1) + pd.Timedelta(days=1),
                        value_type=data["tracker_value_type"])
    got = recent_trends(frame, ["series"]).set_index("series")
    published = data.drop_duplicates("series").set_index("series")["published_trend"]
    assert got["trend"].to_dict() == published.to_dict()
    assert got.at["gp-population-65plus-93468-england", "trend"] == NO_CHANGE
    assert np.isnan(got.at["gp-population-65plus-93468-england", "trend_statistic"])
    assert "no point has a 95% CI" in got.at["gp-population-65plus-93468-england", "trend_method"]
    assert got.at["readmissions-41101-england", "trend_method"] == "not calculated for this value type"
    assert got.at["u75-cancer-mortality-40501-england", "trend_method"] == REGRESSION


def test_a_real_survey_proportion_without_counts_cannot_be_calculated_as_fingertips_says():
    """Real: Fingertips 93015 (physically inactive adults), England, persons 19+: 95% CIs and denominators but no
    counts; Fingertips publishes "Cannot be calculated" (its calculator needs a count for every point)."""
    raw = read_fingertips_csv(SNAPSHOT_DIR / "fingertips" / "phof_93015_physically_inactive_adults_ctyua502_2015-16_to_2022-23.csv.gz")
    frame = _from_fingertips_csv(raw, "proportion", "lower_is_better")
    eng = frame[(frame["area"] == "E92000001") & (frame["category"] == "") & (frame["sex"] == "Persons")
                & (frame["age"] == "19+ yrs")]
    assert eng["lci95"].notna().all() and eng["count"].isna().all()
    got = recent_trends(eng, ["area"]).iloc[0]
    assert got["trend"] == eng["published"].iloc[-1] == CANNOT
    assert got["trend_method"] == "fewer than 5 points with a value, count and denominator"


def test_ohid_calculator_tests_expected_chi_squared_for_both_methods():
    """OHID's own unit tests of its calculator: the weighted regression gives chi-squared 46.77 (significant) and a
    non-significant set; "SPC for proportions" gives 47.9 (significant), and a count equal to its denominator
    cannot be calculated."""
    data = pd.read_csv(FIXTURES / "fingertips_open_calculator_test_data.csv")
    frame = data.assign(series=data["set"], period=data["year"].astype(str),
                        period_start=pd.to_datetime(data["year"].astype(str) + "-01-01"),
                        period_end=pd.to_datetime(data["year"].astype(str) + "-12-31"), value_type="proportion",
                        polarity="no_judgement",
                        trend_method=np.where(data["comparator_method"] == "spc_for_proportions", "spc_proportions",
                                              None))
    got = recent_trends(frame, ["series"]).set_index("series")
    expected = data.drop_duplicates("set").set_index("set")
    for name, row in expected.iterrows():
        if isinstance(row["expected_marker"], str):
            assert got.at[name, "trend"] == row["expected_marker"]
            assert got.at[name, "trend_method"] == "a count equals its denominator"
            continue
        assert (got.at[name, "trend"] != NO_CHANGE) == row["expected_significant"]
        if not np.isnan(row["expected_chi2_2dp"]):
            assert round(got.at[name, "trend_statistic"], 2) == row["expected_chi2_2dp"]
    assert got.at["proportion_set1", "trend_method"] == SPC
    assert got.at["trend_data_set1", "trend_method"] == REGRESSION
    assert got.at["proportion_set1", "trend"] == got.at["trend_data_set1", "trend"] == "Increasing"


def test_chi_squared_on_counts_only_where_the_catalog_says_spc_for_proportions():
    """Real (FingertipsNext, MMR coverage in Yorkshire and the Humber): the same proportion series is tested by the
    weighted regression by default and by the chi-squared test for trend on counts only with trend_method
    spc_proportions; the statistics differ (418.5 and 405.0) and each is the one its method gives."""
    data = pd.read_csv(FIXTURES / "fingertipsnext_published_trend_series.csv")
    mmr = data[data["series"] == "mmr-one-dose-2y-30309-yorkshire"]
    years = pd.to_datetime(mmr["period_end"]).dt.year.tolist()
    base = dict(lci=mmr["lci95"].tolist(), uci=mmr["uci95"].tolist(), count=mmr["count"].tolist(),
                denom=mmr["denominator"].tolist(), years=years, value_type="proportion", polarity="higher_is_better")
    got = _run(_series("default", mmr["value"].tolist(), **base),
               _series("spc", mmr["value"].tolist(), trend_method="spc_proportions", **base))
    assert got.at["default", "trend_method"] == REGRESSION and got.at["spc", "trend_method"] == SPC
    # independent check of the regression: numpy's weighted least squares on 1..5 with weights 1/SE
    se = (mmr["uci95"] - mmr["lci95"]).to_numpy() / 3.92
    (slope, _), cov = np.polyfit(np.arange(1.0, 6.0), mmr["value"].to_numpy(), 1, w=1 / se, cov="unscaled")
    assert got.at["default", "trend_statistic"] == pytest.approx(slope**2 / cov[0, 0], rel=1e-9)
    # independent check of the chi-squared test for trend: N r^2 over every child's 0/1 outcome and its year
    c, n = mmr["count"].to_numpy(int), mmr["denominator"].to_numpy(int)
    outcome = np.concatenate([np.r_[np.ones(ci), np.zeros(ni - ci)] for ci, ni in zip(c, n)])
    r = stats.pearsonr(outcome, np.repeat(np.arange(5), n)).statistic
    assert got.at["spc", "trend_statistic"] == pytest.approx(n.sum() * r**2, rel=1e-6)
    assert got.at["default", "trend"] == got.at["spc", "trend"] == "Decreasing and getting worse"


def test_constructed_a_leave_one_out_slope_of_exactly_zero_counts_as_positive():
    """CONSTRUCTED (no real published series has a leave-one-out slope of exactly zero): SE 1 for every point, so
    the arithmetic is exact. 10, 10, 10, 10, 20: slope 2, chi-squared 40; leaving out the last point gives a slope
    of exactly 0, which Fingertips counts as positive, so all six agree: "Increasing". The mirror image
    20, 10, 10, 10, 10 has the zero slope against a negative trend, so it is not marked."""
    ci = dict(lci=[v - 1.96 for v in (10, 10, 10, 10, 20)], uci=[v + 1.96 for v in (10, 10, 10, 10, 20)])
    up = _series("up", [10.0, 10, 10, 10, 20], **ci)
    down = _series("down", [20.0, 10, 10, 10, 10], lci=ci["lci"][::-1], uci=ci["uci"][::-1])
    got = _run(up, down)
    assert got.at["up", "trend_statistic"] == pytest.approx(40.0)
    assert got.at["up", "trend"] == "Increasing and getting worse"
    assert got.at["down", "trend_statistic"] == pytest.approx(40.0)
    assert got.at["down", "trend"] == NO_CHANGE
    # the slope without the last point really is exactly zero
    assert np.polyfit(np.arange(1.0, 5.0), [10.0, 10, 10, 10], 1)[0] == pytest.approx(0.0, abs=1e-12)


def test_constructed_one_outlying_point_against_the_trend_does_not_make_a_trend():
    """CONSTRUCTED: a steady rise then one point back down: chi-squared is large but leaving out points flips the
    direction, so no trend (Fingertips' check against one outlying point)."""
    v = [10.0, 11, 12, 13, 5]
    got = _run(_series("s", v, lci=[x - 0.1 for x in v], uci=[x + 0.1 for x in v]))
    assert got.at["s", "trend_statistic"] > CHI2_998
    assert got.at["s", "trend"] == NO_CHANGE


def test_constructed_series_that_cannot_be_calculated():
    """CONSTRUCTED: fewer than five points with counts, three-year periods, a value type Fingertips does not trend,
    and the catalog's trend_method none."""
    ci = dict(lci=[9.0] * 5, uci=[11.0] * 5)
    got = _run(_series("few", [1.0, 2, 3, 4, 5], count=[1, 2, 3, 4, np.nan], **ci),
               _series("rolling", [1.0, 2, 3, 4, 5], span_years=3, **ci),
               _series("mean", [1.0, 2, 3, 4, 5], value_type="mean", **ci),
               _series("off", [1.0, 2, 3, 4, 5], trend_method="none", **ci))
    assert (got["trend"] == CANNOT).all()
    assert got.at["few", "trend_method"] == "fewer than 5 points with a value, count and denominator"
    assert got.at["rolling", "trend_method"] == "periods longer than a year"
    assert got.at["mean", "trend_method"] == got.at["off", "trend_method"] == "not calculated for this value type"


def test_constructed_points_are_numbered_one_to_five_whatever_the_gaps():
    """CONSTRUCTED: Fingertips regresses on the point's position (1..5), not its year, and uses the most recent
    five points that have CIs."""
    v = [10.0, 11, 12, 13, 14]
    ci = dict(lci=[x - 0.2 for x in v], uci=[x + 0.2 for x in v])
    gappy = _series("gappy", v, years=[2010, 2012, 2013, 2017, 2018], **ci)
    regular = _series("regular", v, **ci)
    older_without_ci = _series("six", [50.0] + v, years=list(range(2015, 2021)), lci=[np.nan] + ci["lci"],
                               uci=[np.nan] + ci["uci"])
    got = _run(gappy, regular, older_without_ci)
    assert got.at["gappy", "trend_statistic"] == pytest.approx(got.at["regular", "trend_statistic"], rel=1e-12)
    assert got.at["six", "trend_statistic"] == pytest.approx(got.at["regular", "trend_statistic"], rel=1e-12)
    assert (got.at["six", "trend_from"], got.at["six", "trend_to"]) == ("2016", "2020")
    assert (got["trend"] == "Increasing and getting worse").all()


def test_the_chi_squared_threshold_is_fingertips_99_8_percent_point():
    assert CHI2_998 == pytest.approx(stats.chi2.ppf(0.998, 1), rel=1e-12)


def _entry(**extra):
    base = {"id": "x", "title": "X", "domain": "housing", "unit": "%", "value_type": "proportion",
            "polarity": "lower_is_better", "department": "department-of-health-and-social-care", "producer": "P",
            "rationale": "R", "definition": "D", "licence": "OGL", "source": "s", "source_id": "1"}
    return {**base, **extra}


def test_catalog_trend_method_defaults_from_the_value_type_and_is_validated():
    assert default_trend_method("proportion") == default_trend_method("rate") == "ci_regression"
    assert default_trend_method("mean") == default_trend_method("years") == "none"
    assert _parse_entry(Path("t.yaml"), _entry(), 0).trend_method == "ci_regression"
    assert _parse_entry(Path("t.yaml"), _entry(trend_method="spc_proportions"), 0).trend_method == "spc_proportions"
    with pytest.raises(CatalogError, match="unknown trend_method"):
        _parse_entry(Path("t.yaml"), _entry(trend_method="mann-kendall"), 0)
    with pytest.raises(CatalogError, match="needs value_type proportion"):
        _parse_entry(Path("t.yaml"), _entry(value_type="rate", trend_method="spc_proportions"), 0)
    fields = catalog_fields()
    assert fields.at["life-expectancy", "trend_method"] == "none"  # years: Fingertips calculates no trend
    assert fields.at["preventable-mortality-u75", "trend_method"] == "ci_regression"


def test_catalog_knows_which_rates_are_directly_standardised():
    fields = catalog_fields()
    assert sorted(fields.index[fields["standardised"]]) == [
        "preventable-cvd-mortality-u75", "preventable-mortality-u75", "violent-crime-admissions-fingertips"]
    assert _parse_entry(Path("t.yaml"), _entry(value_type="rate", unit="per 100,000 (age-standardised)"), 0).standardised
    with pytest.raises(CatalogError, match="standardised: true needs value_type rate"):
        _parse_entry(Path("t.yaml"), _entry(standardised=True), 0)


def test_methods_doc_lists_every_indicator_under_its_trend_method():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "methods.md").read_text(encoding="utf-8")
    lines = {m: next(line for line in doc.splitlines() if line.startswith(f"* **{m}** (")) for m in
             ("ci_regression", "spc_proportions", "none")}
    for ind, method in catalog_fields()["trend_method"].items():
        assert f"`{ind}`" in lines[method], f"docs/methods.md does not list {ind} under {method}"
