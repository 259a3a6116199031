"""Confidence intervals and benchmark comparison (tracker.analysis.stats) against published worked examples and
the published Fingertips judgements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.fingertips import read_fingertips_csv
from tracker.analysis.stats import (
    bh_adjust, byar_ci, compare, exact_poisson_ci, mean_ci, position_words, quintile_labels, rate_ci, spearman,
    spearman_ci, weighted_rank_correlation, wilson_ci, worst_quintile, z_value,
)
from tracker.config import SNAPSHOT_DIR

# Worked example published in PHEindicatormethods' introductory vignette (v1.0.0, Georgina Anderson, 2018-04-25,
# inst/doc/PHEindicatormethodsIntroVignette.html, repository ukhsa-collaboration/PHEindicatormethods): the printed
# output of phe_proportion() and phe_rate() for these observed numbers and populations.
OBS = [87, 1, 44, 13, 83, 7, 43, 5]
POP = [131, 164, 134, 109, 131, 139, 137, 163]
WILSON_95 = ([0.579592491, 0.001077181, 0.254598570, 0.071039739, 0.548367919, 0.024605552, 0.242136529, 0.013172190],
             [0.73930053, 0.03372625, 0.41168471, 0.19341500, 0.71119617, 0.10029837, 0.39575419, 0.06978956])
WILSON_998 = ([0.5293576135, 0.0005322047, 0.2181147658, 0.0529712429, 0.4985908973, 0.0167360401, 0.2069168113,
               0.0084801369],
              [0.77658434, 0.06601672, 0.46143836, 0.24689949, 0.75043163, 0.14179381, 0.44507799, 0.10481797])
WILSON_95_PCT = ([57.9592491, 0.1077181, 25.4598570, 7.1039739, 54.8367919, 2.4605552, 24.2136529, 1.3172190],
                 [73.930053, 3.372625, 41.168471, 19.341500, 71.119617, 10.029837, 39.575419, 6.978956])
RATE_95_PER_100000 = ([53191.89721, 15.43769, 23856.24577, 6344.25775, 50463.30549, 2024.72162, 22712.53344, 996.00392],
                      [81920.133, 3397.344, 44081.622, 20396.080, 78543.665, 10376.025, 42278.943, 7158.486])
RATE_998_PER_100 = ([4.654873e+01, 6.100612e-04, 1.961417e+01, 4.192660e+00, 4.400613e+01, 1.093767e+00, 1.862510e+01,
                     4.536023e-01],
                    [91.51034, 5.63013, 51.21896, 26.14598, 87.94878, 14.11955, 49.19876, 10.09494])


def test_wilson_matches_phe_worked_example_to_1e6():
    lo, hi = wilson_ci(OBS, POP, confidence=0.95, multiplier=1)
    np.testing.assert_allclose(lo, WILSON_95[0], atol=1e-6)
    np.testing.assert_allclose(hi, WILSON_95[1], atol=1e-6)
    lo, hi = wilson_ci(OBS, POP, confidence=99.8, multiplier=1)  # PHEindicatormethods also accepts 99.8
    np.testing.assert_allclose(lo, WILSON_998[0], atol=1e-6)
    np.testing.assert_allclose(hi, WILSON_998[1], atol=1e-6)
    lo, hi = wilson_ci(OBS, POP)  # default: 95%, as a percentage
    np.testing.assert_allclose(lo, WILSON_95_PCT[0], atol=1e-6)
    np.testing.assert_allclose(hi, WILSON_95_PCT[1], atol=1e-6)


def test_rate_ci_uses_exact_below_10_and_byar_from_10_matching_phe_worked_example():
    # phe_rate: counts 1, 7 and 5 use the exact method, the others Byar's (the vignette prints "Exact"/"Byars")
    lo, hi = rate_ci(OBS, POP, multiplier=100_000, confidence=0.95)
    np.testing.assert_allclose(lo, RATE_95_PER_100000[0], rtol=1e-6)
    np.testing.assert_allclose(hi, RATE_95_PER_100000[1], rtol=1e-6)
    lo, hi = rate_ci(OBS, POP, multiplier=100, confidence=0.998)
    np.testing.assert_allclose(lo, RATE_998_PER_100[0], rtol=1e-6)
    np.testing.assert_allclose(hi, RATE_998_PER_100[1], rtol=1e-6)


def test_byar_and_exact_poisson_are_the_two_halves_of_rate_ci():
    x = np.array(OBS, float)
    b_lo, b_hi = byar_ci(x)
    e_lo, e_hi = exact_poisson_ci(x)
    big, small = x >= 10, x < 10
    np.testing.assert_allclose(b_lo[big] / np.array(POP)[big] * 1e5, np.array(RATE_95_PER_100000[0])[big], rtol=1e-6)
    np.testing.assert_allclose(e_hi[small] / np.array(POP)[small] * 1e5, np.array(RATE_95_PER_100000[1])[small], rtol=1e-6)
    # zero events: the lower limit is 0 and the exact upper limit is -ln(0.025) = 3.689 events
    assert exact_poisson_ci(0)[0] == 0.0
    assert exact_poisson_ci(0)[1] == pytest.approx(-np.log(0.025), abs=1e-9)


def test_cis_keep_series_index_and_give_nan_for_impossible_inputs():
    s = pd.Series([5, 12, -1], index=["a", "b", "c"])
    lo, hi = wilson_ci(s, pd.Series([10, 10, 10], index=s.index))
    assert list(lo.index) == ["a", "b", "c"]
    assert np.isnan(lo["b"]) and np.isnan(lo["c"])  # 12 of 10, and a negative count
    with pytest.raises(ValueError):
        wilson_ci(1, 2, confidence=0.5)


def _published(path: str) -> pd.DataFrame:
    raw = read_fingertips_csv(SNAPSHOT_DIR / "fingertips" / path)
    for c in ("Value", "Lower CI 95.0 limit", "Upper CI 95.0 limit", "Lower CI 99.8 limit", "Upper CI 99.8 limit"):
        raw[c] = pd.to_numeric(raw[c].replace("", np.nan))
    keys = ["Indicator ID", "Sex", "Age", "Time period"]
    england = raw[(raw["Area Code"] == "E92000001") & (raw["Category Type"] == "")].drop_duplicates(keys)
    return raw.merge(england[keys + ["Value"]].rename(columns={"Value": "benchmark"}), on=keys, how="left")


@pytest.mark.parametrize("path,polarity", [
    ("phof_93015_physically_inactive_adults_ctyua502_2015-16_to_2022-23.csv.gz", "lower_is_better"),
    ("phof_93982_five_a_day_ctyua502_2020-21_to_2023-24.csv.gz", "higher_is_better"),
])
def test_comparison_equals_fingertips_on_every_compared_row(path, polarity):
    """Every row Fingertips compared with England (areas, and England's own breakdowns by deprivation, ethnicity,
    education...) gets the same Better/Similar/Worse from the tracker. The data show these indicators were compared
    at 95%: at 99.8% hundreds of rows would differ."""
    raw = _published(path)
    published = raw["Compared to England value or percentiles"]
    compared = raw[published != "Not compared"]
    assert len(compared) > 900 and set(compared["Compared to England value or percentiles"]) == {"Better", "Similar", "Worse"}
    got = compare(compared["Value"], compared["Lower CI 95.0 limit"], compared["Upper CI 95.0 limit"],
                  compared["benchmark"], polarity, compared["Lower CI 99.8 limit"], compared["Upper CI 99.8 limit"])
    mismatches = compared[got["comparison"].to_numpy() != compared["Compared to England value or percentiles"].to_numpy()]
    assert mismatches.empty, mismatches[["Area Code", "Time period", "Category", "Value"]].head()
    at_998 = compare(compared["Value"], compared["Lower CI 99.8 limit"], compared["Upper CI 99.8 limit"],
                     compared["benchmark"], polarity)
    assert (at_998["comparison"].to_numpy() != compared["Compared to England value or percentiles"].to_numpy()).sum() > 100
    # the rows Fingertips did not compare are England's own headline rows: the benchmark itself
    not_compared = raw[published == "Not compared"]
    assert (not_compared["Area Code"] == "E92000001").all() and (not_compared["Category Type"] == "").all()


def test_comparison_words_and_levels():
    got = compare([10, 10, 10, 10, np.nan, 10], [8, 8, 10.5, 6, 1, np.nan], [9, 9, 12, 12, 2, 12], [12, 12, 9, 9, 9, 9],
                  ["lower_is_better", "no_judgement", "lower_is_better", "higher_is_better", "higher_is_better",
                   "higher_is_better"],
                  lci998=[7.5, 7.5, 10.1, 5, 1, np.nan], uci998=[11.9, 12.5, 13, 13, 2, 12])
    assert got["comparison"].tolist() == ["Better", "Lower", "Worse", "Similar", "Not compared", "Not compared"]
    # the benchmark 12 is also outside 7.5-11.9 and 9 outside 10.1-13 (99.8% CIs): the stronger grade; 12 is inside
    # 7.5-12.5, so the no-polarity row differs at 95% only
    assert got["label"].tolist() == ["Better (99.8%)", "Lower (95%)", "Worse (99.8%)", "Similar", "Not compared",
                                     "Not compared"]


def test_quintiles_by_group_and_worst_fifth_by_polarity():
    values = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan, 3, 3])
    groups = pd.Series(["a"] * 11 + ["b"] * 2)
    got = quintile_labels(values, [groups])
    assert got.tolist()[:11] == ["Lowest", "Lowest", "Low", "Low", "Middle", "Middle", "High", "High", "Highest",
                                 "Highest", "Not compared"]
    assert got.tolist()[11:] == ["Lowest", "Lowest"]  # ties share a quintile
    assert worst_quintile(pd.Series(["Highest", "Highest", "Lowest"]),
                          pd.Series(["lower_is_better", "higher_is_better", "higher_is_better"])).tolist() == [True, False, True]


def test_spearman_ci_is_fisher_z_with_bonett_wright_se():
    # rho 0.5 with n 28: z = atanh(0.5) = 0.549306, SE = sqrt(1.125 / 25) = 0.212132
    lo, hi = spearman_ci(0.5, 28)
    assert lo == pytest.approx(np.tanh(0.5493061443 - 1.959963985 * 0.2121320344), abs=1e-9)
    assert hi == pytest.approx(np.tanh(0.5493061443 + 1.959963985 * 0.2121320344), abs=1e-9)


def test_benjamini_hochberg_matches_the_step_up_rule():
    # Benjamini & Hochberg (1995) step-up: q_(i) = min over j >= i of p_(j) * m / j
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    q = bh_adjust(p)
    assert q[4] == pytest.approx(0.02) and q[0] == pytest.approx(0.02)
    assert q[2] == pytest.approx(0.04) and q[1] == pytest.approx(0.04)
    assert np.isnan(q[3])


def test_weighted_rank_correlation_equals_spearman_on_repeated_rows():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 6, 30).astype(float), rng.normal(size=30)  # ties in x
    w = rng.integers(0, 4, size=(3, 30)).astype(float)
    got = weighted_rank_correlation(x, y, w)
    for b in range(3):
        reps = w[b].astype(int)
        assert got[b] == pytest.approx(stats.spearmanr(np.repeat(x, reps), np.repeat(y, reps)).statistic, abs=1e-12)


def test_position_words_name_the_fifth_by_polarity():
    quintile = pd.Series(["Highest", "Lowest", "Middle", None, "High"])
    assert position_words(quintile, pd.Series(["lower_is_better"] * 5)).tolist() == [
        "Worst fifth", "Best fifth", "Middle fifth", None, "Second-worst fifth"]
    assert position_words(quintile, pd.Series(["higher_is_better"] * 5)).tolist() == [
        "Best fifth", "Worst fifth", "Middle fifth", None, "Second-best fifth"]
    assert position_words(quintile, pd.Series(["no_judgement"] * 5)).tolist() == [
        "Highest fifth", "Lowest fifth", "Middle fifth", None, "Second-highest fifth"]


def test_the_distributions_from_scipy_special_give_exactly_what_scipy_stats_gives():
    # the tracker calls the scipy.special functions scipy.stats calls (importing scipy.stats took 45 MB more of every
    # process computing the analysis): every limit and test must be the same number, to the last bit
    for confidence in (0.95, 0.998, 99.8):
        c = confidence / 100 if confidence > 1 else confidence
        assert z_value(confidence) == float(stats.norm.ppf(1 - (1 - c) / 2))
    counts = np.array([0, 1, 2, 3, 5, 9, 9.5, 10, 37, 1_000, 1e6, -1, np.nan])
    alpha = 1 - 0.95
    with np.errstate(invalid="ignore"):
        lower = np.where(counts == 0, 0.0, stats.chi2.ppf(alpha / 2, 2 * counts) / 2)
        upper = stats.chi2.ppf(1 - alpha / 2, 2 * counts + 2) / 2
    got = exact_poisson_ci(counts, 0.95)
    valid = counts >= 0
    assert np.array_equal(got[0][valid], lower[valid]) and np.array_equal(got[1][valid], upper[valid])
    assert np.isnan(got[0][~valid]).all() and np.isnan(got[1][~valid]).all()

    rng = np.random.default_rng(7)
    values = rng.normal(size=80)
    values[::9] = np.nan
    groups = rng.choice(["a", "b", "c", "d"], size=80).astype(object)
    groups[1] = "one value"  # no limits from a single value
    means = mean_ci(values, groups, 0.95)
    n = means["value_count"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.abs(stats.t.ppf((1 - 0.95) / 2, n - 1)) * means["stdev"].to_numpy() / np.sqrt(n)
    assert np.array_equal(means["upper"].to_numpy(), means["value"].to_numpy() + half, equal_nan=True)
    assert np.isnan(means.at["one value", "lower"])

    for i in range(200):  # with ties (rounded values) and without
        size = int(rng.integers(4, 400))
        x = rng.normal(size=size)
        y = x * rng.uniform(-1, 1) + rng.normal(size=size)
        if i % 2:
            x, y = np.round(x), np.round(y, 1)
        expected = stats.spearmanr(x, y)
        assert spearman(x, y) == (float(expected.statistic), float(expected.pvalue), size)


def test_computing_the_statistics_does_not_import_scipy_stats():
    # what keeps the refresh worker and the analysis' second process 45 MB smaller (see the test above)
    import subprocess
    import sys

    code = ("import sys; from tracker.analysis import stats as s; s.wilson_ci(3, 10); s.rate_ci([3, 30], 1000); "
            "s.mean_ci([1.0, 2.0, 4.0]); s.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]); "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
