"""Recent trends (tracker.analysis.trends): constructed series for each rule (labelled SYNTHETIC: made up to
exercise one rule each) and a real published series checked against an independent calculation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.fingertips import read_fingertips_csv
from tracker.analysis.trends import CHI2_998, recent_trends
from tracker.config import SNAPSHOT_DIR


def _series(name, values, years=None, lci=None, uci=None, count=None, denom=None, value_type="rate",
            polarity="lower_is_better", multiplier=100.0, span_years=1):
    years = years or list(range(2016, 2016 + len(values)))
    rows = []
    for i, (y, v) in enumerate(zip(years, values)):
        rows.append({
            "series": name, "period": str(y), "period_start": f"{y}-01-01", "period_end": f"{y + span_years - 1}-12-31",
            "value": v, "lci95": np.nan if lci is None else lci[i], "uci95": np.nan if uci is None else uci[i],
            "count": np.nan if count is None else count[i], "denominator": np.nan if denom is None else denom[i],
            "value_type": value_type, "polarity": polarity, "multiplier": multiplier,
        })
    return rows


def _run(*series) -> pd.DataFrame:
    frame = pd.DataFrame([r for s in series for r in s])
    return recent_trends(frame, ["series"]).set_index("series")


def test_synthetic_proportion_counts_use_chi_squared_for_trend():
    # SYNTHETIC: 100, 120, 140, 160, 180 events in 1,000 each year, lower is better
    count, denom = [100, 120, 140, 160, 180], [1000] * 5
    got = _run(_series("p", [c / 10 for c in count], count=count, denom=denom, value_type="proportion"))
    assert got.at["p", "trend"] == "Increasing and getting worse"
    assert got.at["p", "trend_method"] == "chi-squared test for trend (counts)"
    # independent check: the chi-squared test for trend is N r^2, r the correlation of each person's 0/1 outcome
    # with the year, over all 5,000 people
    outcome = np.concatenate([np.r_[np.ones(c), np.zeros(n - c)] for c, n in zip(count, denom)])
    year = np.repeat(np.arange(5), denom)
    r = stats.pearsonr(outcome, year).statistic
    assert got.at["p", "trend_statistic"] == pytest.approx(len(outcome) * r**2, rel=1e-9)


def test_synthetic_small_change_in_counts_is_not_significant_at_99_8():
    count = [100, 104, 108, 112, 116]  # chi-squared about 1.9 < 9.55
    got = _run(_series("p", [c / 10 for c in count], count=count, denom=[1000] * 5, value_type="proportion"))
    assert got.at["p", "trend"] == "No significant change"
    assert got.at["p", "trend_statistic"] < CHI2_998


def test_synthetic_one_outlying_point_does_not_make_a_trend():
    # SYNTHETIC: flat at 10 then one jump to 20, very narrow CIs: the slope is significant, but leaving out the last
    # point removes it, so (as in Fingertips) there is no trend
    flat = _series("jump", [10, 10, 10, 10, 20], lci=[9.9] * 4 + [19.9], uci=[10.1] * 4 + [20.1])
    steady = _series("steady", [10, 11, 12, 13, 14], lci=[v - 0.1 for v in (10, 11, 12, 13, 14)],
                     uci=[v + 0.1 for v in (10, 11, 12, 13, 14)], polarity="higher_is_better")
    got = _run(flat, steady)
    assert got.at["jump", "trend_statistic"] > CHI2_998
    assert got.at["jump", "trend"] == "No significant change"
    assert got.at["steady", "trend"] == "Increasing and getting better"
    assert got.at["steady", "trend_method"] == "weighted regression on the CIs"


def test_synthetic_rates_with_counts_but_no_ci_get_byar_cis():
    count = [400, 350, 300, 250, 200]
    got = _run(_series("r", [c / 1e5 * 1e5 for c in count], count=count, denom=[100_000] * 5, multiplier=100_000))
    assert got.at["r", "trend"] == "Decreasing and getting better"
    assert got.at["r", "trend_method"] == "weighted regression on the CIs"


def test_synthetic_values_without_counts_or_cis_use_mann_kendall():
    got = _run(_series("down", [5.0, 4.5, 4.1, 3.9, 3.0]), _series("wobble", [5.0, 4.5, 4.6, 3.9, 3.0]),
               _series("nopol", [1.0, 2.0, 3.0, 4.0, 5.0], polarity="no_judgement"))
    assert got.at["down", "trend"] == "Decreasing and getting better"
    assert got.at["down", "trend_statistic"] == pytest.approx(2 / 120)  # exact p of a strictly monotone five
    assert got.at["down", "trend_method"] == "Mann-Kendall, no CIs (95%)"
    assert got.at["wobble", "trend"] == "No significant change"  # one step against the run: p = 10/120
    assert got.at["nopol", "trend"] == "Increasing"


def test_synthetic_series_that_cannot_be_tested():
    few = _series("few", [1, 2, 3, 4])
    rolling = _series("rolling", [1, 2, 3, 4, 5], span_years=3)  # "2016 - 18", "2017 - 19": shared years
    gappy = _series("ok_with_gap", [1, 2, 3, 4, 5], years=[2010, 2012, 2013, 2015, 2016])
    got = _run(few, rolling, gappy)
    assert got.at["few", "trend"] == "Cannot be calculated"
    assert got.at["few", "trend_method"] == "fewer than 5 points"
    assert got.at["rolling", "trend"] == "Cannot be calculated"
    assert got.at["ok_with_gap", "trend"] == "Increasing and getting worse"


def test_real_series_physically_inactive_adults_england():
    """Real: Fingertips 93015, England, persons 19+, the five latest years (2019/20 to 2023/24) with their published
    95% CIs. Fingertips itself marks this series "Cannot be calculated" because it gives no counts for this survey
    proportion; the tracker tests it on its CIs (docs/methods.md). Checked against numpy's weighted least squares."""
    raw = read_fingertips_csv(SNAPSHOT_DIR / "fingertips" / "phof_93015_physically_inactive_adults_ctyua502_2015-16_to_2022-23.csv.gz")
    eng = raw[(raw["Area Code"] == "E92000001") & (raw["Category Type"] == "") & (raw["Sex"] == "Persons")
              & (raw["Age"] == "19+ yrs")].drop_duplicates("Time period")
    assert eng["Recent Trend"].iloc[-1] == "Cannot be calculated"
    v, lo, hi = (eng[c].astype(float).to_numpy() for c in ("Value", "Lower CI 95.0 limit", "Upper CI 95.0 limit"))
    years = [int(p[:4]) for p in eng["Time period"]]
    frame = pd.DataFrame(_series("eng", list(v), years=years, lci=list(lo), uci=list(hi), value_type="proportion"))
    frame["period"] = eng["Time period"].to_list()
    got = recent_trends(frame, ["series"]).iloc[0]
    assert (got["trend_from"], got["trend_to"]) == ("2019/20", "2023/24")
    t, y, se = np.arange(5.0), v[-5:], (hi[-5:] - lo[-5:]) / 3.92
    (slope, _), cov = np.polyfit(t, y, 1, w=1 / se, cov="unscaled")
    assert got["trend_statistic"] == pytest.approx(slope**2 / cov[0, 0], rel=1e-6)
    expected = "No significant change" if slope**2 / cov[0, 0] <= CHI2_998 else "Decreasing and getting better"
    assert got["trend"] == expected


def test_the_chi_squared_threshold_is_fingertips_99_8_percent_point():
    from scipy import stats

    assert CHI2_998 == pytest.approx(stats.chi2.ppf(0.998, 1), rel=1e-12)
