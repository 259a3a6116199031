"""Recent trend over the last five points, exactly as Fingertips marks it, vectorised over many series.

Followed: OHID's trend-marker calculator, `TrendMarkerCalculator` and `TrendRequest` in
ukhsa-collaboration/fingertips-open (PholioVisualisationWS/Analysis/TrendMarkers/, commit 6780897) and its 2025 port
in dhsc-govuk/FingertipsNext (trend-analysis/TrendAnalysisApp/Calculator/Legacy/, commit d1600f4); docs/methods.md,
"Recent trend", says where the two differ and which the tracker takes. Per series:
* the indicator's trend method (catalog `trend_method`, defaulting from the value type as Fingertips does) "none":
  "Cannot be calculated" (Fingertips calculates trends for proportions, crude rates and DSRs only);
* periods longer than a year (e.g. "2021 - 23"): "Cannot be calculated" (Fingertips needs a year range of 1);
* the valid points are those with a value, a count and a denominator > 0 (Fingertips needs all three, whatever the
  method); fewer than five, or any with count = denominator: "Cannot be calculated";
* the five most recent valid points that have 95% CIs are tested (fewer if fewer have CIs: with none, nothing can
  be significant, so "No significant change", as Fingertips says), numbered 1 to 5 whatever the gaps:
  - "spc_proportions": the chi-squared test for trend on the counts, with leave-one-out on the logit slope;
  - otherwise a weighted regression of value on 1..5, weights 1/SE^2 with SE = (upper - lower) / 3.92, chi-squared
    = (slope / SE(slope))^2, and the same slope recomputed leaving out each point in turn;
  significant when chi-squared > 9.5495 (99.8%) and all six slopes agree in sign, a slope of exactly zero counting
  as positive (Fingertips' `slope < 0 ? -1 : 1`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from db.columns import text_column
from tracker.catalog import TREND_VALUE_TYPES

POINTS = 5
CHI2_998 = 9.54953570608324  # Fingertips' ChiSquareConfidence: the 99.8% point of chi-squared on 1 df
CANNOT = "Cannot be calculated"
NO_CHANGE = "No significant change"
REGRESSION = "weighted regression on the 95% CIs"
SPC = "chi-squared test for trend on counts (SPC for proportions)"
# Leave-one-out sums of t and n * sum(t^2) over 1..5 without the point left out (Fingertips' constants)
_SUM_T = np.array([15.0, 14, 13, 12, 11, 10])
_N_SUM_T2 = np.array([275.0, 216, 204, 184, 156, 120])


def trend_label(direction, significant, polarity) -> np.ndarray:
    """Fingertips' words: "Increasing and getting worse", "Decreasing and getting better", "Increasing" ..."""
    direction = np.asarray(direction, float)
    out = np.full(direction.shape, NO_CHANGE, dtype=object)
    pol = np.broadcast_to(np.asarray(polarity, dtype=object), direction.shape)
    for i in np.flatnonzero(np.asarray(significant, bool) & (direction != 0)):
        word = "Increasing" if direction[i] > 0 else "Decreasing"
        if pol[i] == "higher_is_better":
            word += " and getting better" if direction[i] > 0 else " and getting worse"
        elif pol[i] == "lower_is_better":
            word += " and getting worse" if direction[i] > 0 else " and getting better"
        out[i] = word
    return out


def _agree(slopes: list[np.ndarray]) -> np.ndarray:
    """All slopes in the same direction, zero (and NaN, as in Fingertips' comparison) counting as positive."""
    return np.abs(sum(np.where(s < 0, -1, 1) for s in slopes)) == len(slopes)


def _regression(v, lo, hi, used):
    """Fingertips' weighted regression, term by term in its order of operations: (slope, chi-squared, robust)."""
    t = np.cumsum(used, axis=1).astype(float)  # 1..k over the points used
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        divisor = ((hi - lo) / 3.92) ** 2
        terms = [1 / divisor, (v * t) / divisor, t / divisor, v / divisor, t**2 / divisor]
        terms = [np.where(used, x, 0.0) for x in terms]

        def slope(drop=None):
            keep = used if drop is None else used & (t != drop)
            s1, s2, s3, s4, s5 = (np.where(keep, x, 0.0).sum(1) for x in terms)
            return ((s1 * s2) - (s3 * s4)) / ((s1 * s5) - s3**2), s1, s3, s5

        b, s1, s3, s5 = slope()
        beta = np.sqrt(s1 / ((s1 * s5) - s3**2))
        chi2 = (b / beta) ** 2
        robust = _agree([b] + [slope(k)[0] for k in range(1, POINTS + 1)])
    return b, chi2, robust


def _spc_proportions(c, d, used):
    """Fingertips' chi-squared test for trend in proportions count/denominator and its leave-one-out check on the
    logit slope: (direction, chi-squared, robust)."""
    t = np.cumsum(used, axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c0, d0 = np.where(used, c, 0.0), np.where(used, d, 0.0)
        big_n, big_c = d0.sum(1), c0.sum(1)
        cy, dy, dy2 = (c0 * t).sum(1), (d0 * t).sum(1), (d0 * t**2).sum(1)
        chi2 = big_n * ((big_n * cy) - (big_c * dy)) ** 2 / (big_c * (big_n - big_c) * ((big_n * dy2) - dy**2))
        logit = np.log(c / (d - c))

        def slope(k):
            keep = used if k == 0 else used & (t != k)
            value_sum = np.where(keep, logit, 0.0).sum(1)
            multiplied = np.where(keep, logit * t, 0.0).sum(1) * (POINTS if k == 0 else POINTS - 1)
            return (multiplied - value_sum * _SUM_T[k]) / (_N_SUM_T2[k] - _SUM_T[k] ** 2)

        slopes = [slope(k) for k in range(POINTS + 1)]
    # The 2020 open code takes the direction from a field this path never sets; the all-points logit slope is the
    # direction of the trend the test found.
    return slopes[0], chi2, _agree(slopes)


def recent_trends(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The recent trend of every series in `frame`.

    frame: one row per series x period with the `keys` columns plus period, period_start, period_end, value,
    lci95, uci95, count, denominator, value_type and polarity, and optionally trend_method (catalog values; missing
    means the default for the value type); the last three constant per series.
    Returns one row per series: the keys, trend (Fingertips' words), trend_method (the test, or why none could be
    made), trend_statistic (chi-squared), trend_from and trend_to (the first and last period tested)."""
    cols = keys + ["trend", "trend_method", "trend_statistic", "trend_from", "trend_to"]
    data = frame[frame["value"].notna()].copy()
    if data.empty:
        return pd.DataFrame(columns=cols)
    if "trend_method" not in data:
        data["trend_method"] = np.nan
    default = np.where(data["value_type"].isin(TREND_VALUE_TYPES), "ci_regression", "none")
    data["how"] = data["trend_method"].where(data["trend_method"].notna(), default)
    data["period_start"] = pd.to_datetime(data["period_start"])
    data["period_end"] = pd.to_datetime(data["period_end"])
    data = data.sort_values(keys + ["period_end", "period_start"], kind="mergesort")
    # series numbered 0, 1, ... in sorted order, so per-series sums are bincounts
    data["gid"] = gid = data.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    last = data.drop_duplicates("gid", keep="last")
    n = len(last)

    def per_series(flag) -> np.ndarray:
        return np.bincount(gid, weights=np.asarray(flag, float), minlength=n)

    valid = (data["count"].notna() & (data["count"] >= 0) & (data["denominator"] > 0)).to_numpy()
    span_days = (data["period_end"] - data["period_start"]).dt.days.to_numpy()
    reason = np.select(
        [last["how"].to_numpy() == "none", per_series(valid & (span_days > 366)) > 0, per_series(valid) < POINTS,
         per_series(valid & (data["count"] == data["denominator"]).to_numpy()) > 0],
        ["not calculated for this value type", "periods longer than a year",
         "fewer than 5 points with a value, count and denominator", "a count equals its denominator"], "")
    out = {"trend": np.full(n, CANNOT, dtype=object), "trend_method": reason.astype(object),
           "trend_statistic": np.full(n, np.nan), "trend_from": np.full(n, None, dtype=object),
           "trend_to": np.full(n, None, dtype=object)}
    tested = data[valid & (reason[gid] == "")]
    if not tested.empty:
        _test(tested, out)
    result = last[keys].reset_index(drop=True)
    for name, values in out.items():
        result[name] = text_column(values, result.index) if values.dtype == object else values
    return result[cols]


def _test(rows: pd.DataFrame, out: dict) -> None:
    """Fill `out` (arrays by series number, rows' gid) for series with at least five valid points: the most
    recent five with CIs are tested (none with CIs: nothing to test, "No significant change")."""
    has_ci = (rows["lci95"].notna() & rows["uci95"].notna()).to_numpy()
    with_ci = rows[has_ci].groupby("gid", sort=False).tail(POINTS)
    without = rows[~rows["gid"].isin(with_ci["gid"])].groupby("gid", sort=False).tail(POINTS)
    chosen = pd.concat([with_ci.assign(_used=True), without.assign(_used=False)]).sort_values(
        ["gid", "period_end", "period_start"], kind="mergesort")
    position = chosen.groupby("gid", sort=False).cumcount().to_numpy()
    series = chosen["gid"].drop_duplicates().to_numpy()  # ascending
    r = np.searchsorted(series, chosen["gid"].to_numpy())
    m = len(series)

    def mat(col):
        a = np.full((m, POINTS), np.nan)
        a[r, position] = chosen[col].to_numpy(dtype=float)
        return a

    used = np.zeros((m, POINTS), bool)
    used[r, position] = chosen["_used"].to_numpy()
    v, lo, hi, c, d = mat("value"), mat("lci95"), mat("uci95"), mat("count"), mat("denominator")
    first = chosen.drop_duplicates("gid", keep="first")
    last = chosen.drop_duplicates("gid", keep="last")
    spc = first["how"].to_numpy(dtype=object) == "spc_proportions"
    direction, chi2, robust = np.zeros(m), np.full(m, np.nan), np.zeros(m, bool)
    if (~spc).any():
        direction[~spc], chi2[~spc], robust[~spc] = _regression(v[~spc], lo[~spc], hi[~spc], used[~spc])
    if spc.any():
        direction[spc], chi2[spc], robust[spc] = _spc_proportions(c[spc], d[spc], used[spc])
    significant = robust & (chi2 > CHI2_998)
    no_ci = ~used.any(1)
    method = np.where(spc, SPC, REGRESSION).astype(object)
    method[no_ci] = method[no_ci] + ": no point has a 95% CI, so no change can be shown"
    out["trend"][series] = trend_label(direction, significant, first["polarity"].to_numpy(dtype=object))
    out["trend_method"][series] = method
    out["trend_statistic"][series] = np.where(no_ci, np.nan, chi2)
    out["trend_from"][series] = first["period"].to_numpy(dtype=object)
    out["trend_to"][series] = last["period"].to_numpy(dtype=object)
