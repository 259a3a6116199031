"""Recent trend over the last five points, the way Fingertips marks it, vectorised over many series.

Methods (docs/methods.md, "Recent trend"):
* a proportion with counts and denominators: the chi-squared test for trend on the counts;
* any value with 95% confidence intervals (or with counts, from which the CI is computed): a weighted linear
  regression of the value on time, each point weighted by 1/SE^2 with SE = (upper - lower) / 3.92;
  both significant when chi-squared > 9.5495 (99.8%), and only when leaving out each point in turn never flips
  the direction (Fingertips' check against one outlying point);
* values with neither counts nor CIs: Mann-Kendall's exact test on the five values at 95% (at 99.8% five points
  can never be significant), which amounts to four changes in a row in the same direction.
A series needs five annual (or longer), non-overlapping periods: rolling periods such as "2021 - 23" after
"2020 - 22" share years and are not tested, as in Fingertips."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pandas as pd

from tracker.analysis.stats import rate_ci, wilson_ci

POINTS = 5
CHI2_998 = 9.549535706083237  # scipy.stats.chi2.ppf(0.998, 1): Fingertips' threshold (a test checks it)
MK_ALPHA = 0.05
CANNOT = "Cannot be calculated"
NO_CHANGE = "No significant change"
_PAIRS = [(i, j) for i in range(POINTS) for j in range(i + 1, POINTS)]
_S_NULL = np.array([sum(np.sign(p[j] - p[i]) for i, j in _PAIRS) for p in permutations(range(POINTS))])


def trend_label(direction, significant, polarity) -> np.ndarray:
    """Fingertips' words: "Increasing and getting worse", "Decreasing and getting better", "Increasing" ..."""
    direction = np.asarray(direction, float)
    out = np.full(direction.shape, NO_CHANGE, dtype=object)
    pol = np.broadcast_to(np.asarray(polarity, dtype=object), direction.shape)
    for i in np.flatnonzero(np.asarray(significant, bool)):
        word = "Increasing" if direction[i] > 0 else "Decreasing"
        if pol[i] == "higher_is_better":
            word += " and getting better" if direction[i] > 0 else " and getting worse"
        elif pol[i] == "lower_is_better":
            word += " and getting worse" if direction[i] > 0 else " and getting better"
        out[i] = word
    return out


def _wls(v, se, t):
    """Weighted least squares slope of v on t (rows are series), its chi-squared and leave-one-out agreement."""
    w = 1 / se**2
    c1, c2, c3, c4, c5 = w, w * v * t, w * t, w * v, w * t * t

    def slope(drop=None):
        parts = [c.sum(1) - (0 if drop is None else c[:, drop]) for c in (c1, c2, c3, c4, c5)]
        s1, s2, s3, s4, s5 = parts
        det = s1 * s5 - s3**2
        return (s1 * s2 - s3 * s4) / det, s1 / det

    b, var = slope()
    signs = np.column_stack([np.sign(b)] + [np.sign(slope(k)[0]) for k in range(POINTS)])
    return b, b**2 / var, np.abs(signs.sum(1)) == POINTS + 1


def _chi2_proportion(r, n, t):
    """Chi-squared test for trend in proportions r/n over t, and leave-one-out agreement of the logit slope."""
    big_n, big_r = n.sum(1), r.sum(1)
    trend = big_n * (r * t).sum(1) - big_r * (n * t).sum(1)
    chi2 = big_n * trend**2 / (big_r * (big_n - big_r) * (big_n * (n * t * t).sum(1) - (n * t).sum(1) ** 2))
    logit = np.log(r / (n - r))

    def ols(keep):
        tt, yy = t[:, keep], logit[:, keep]
        tc = tt - tt.mean(1, keepdims=True)
        return (tc * (yy - yy.mean(1, keepdims=True))).sum(1) / (tc**2).sum(1)

    all_cols = np.arange(POINTS)
    signs = np.column_stack([np.sign(ols(all_cols))] + [np.sign(ols(all_cols[all_cols != k])) for k in range(POINTS)])
    return trend, chi2, np.abs(signs.sum(1)) == POINTS + 1


def _mann_kendall(v):
    """Mann-Kendall S and its exact two-sided p-value from the 120 equally likely orderings of five distinct
    values (ties only lower |S|, so they make the test conservative)."""
    s = sum(np.sign(v[:, j] - v[:, i]) for i, j in _PAIRS)
    p = (np.abs(_S_NULL)[None, :] >= np.abs(s)[:, None] - 1e-9).mean(1)
    return s, p


def recent_trends(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The recent trend of every series in `frame`.

    frame: one row per series x period with the `keys` columns plus period, period_start, period_end, value,
    lci95, uci95, count, denominator, value_type, polarity and multiplier (the last three constant per series).
    Returns one row per series: the keys, trend (Fingertips' words), trend_method, trend_statistic (chi-squared,
    or Mann-Kendall's p), trend_from and trend_to (the first and last period used)."""
    cols = keys + ["trend", "trend_method", "trend_statistic", "trend_from", "trend_to"]
    data = frame[frame["value"].notna()].copy()
    if data.empty:
        return pd.DataFrame(columns=cols)
    data["period_start"] = pd.to_datetime(data["period_start"])
    data["period_end"] = pd.to_datetime(data["period_end"])
    data = data.sort_values(keys + ["period_end", "period_start"], kind="mergesort")
    last = data.groupby(keys, sort=False).tail(POINTS)
    size = last.groupby(keys, sort=False)["value"].transform("size")
    short = last[size < POINTS].drop_duplicates(keys)
    last = last[size == POINTS]
    parts = [_result(short, keys, CANNOT, "fewer than 5 points")]
    if not last.empty:
        parts.append(_tested(last, keys))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def _result(rows: pd.DataFrame, keys, trend, method, statistic=np.nan) -> pd.DataFrame:
    out = rows[keys].copy()
    out["trend"], out["trend_method"], out["trend_statistic"] = trend, method, statistic
    out["trend_from"] = out["trend_to"] = None
    return out


def _tested(last: pd.DataFrame, keys) -> pd.DataFrame:
    m = len(last) // POINTS

    def mat(col, dtype=float):
        return last[col].to_numpy(dtype=dtype).reshape(m, POINTS)

    first = last.iloc[::POINTS]
    starts = last["period_start"].to_numpy().reshape(m, POINTS)
    ends = last["period_end"].to_numpy().reshape(m, POINTS)
    gap_days = (starts[:, 1:] - starts[:, :-1]) / np.timedelta64(1, "D")
    regular = ((gap_days >= 360) & (ends[:, :-1] < starts[:, 1:])).all(1)
    start_dt = pd.DatetimeIndex(starts.ravel())
    months = (start_dt.year * 12 + start_dt.month).to_numpy().reshape(m, POINTS)
    t = (months - months[:, :1]) / 12.0  # years since the first point: whole numbers for annual data
    v, lo, hi, c, d = mat("value"), mat("lci95"), mat("uci95"), mat("count"), mat("denominator")
    value_type = first["value_type"].to_numpy(dtype=object)
    polarity = first["polarity"].to_numpy(dtype=object)
    mult = first["multiplier"].to_numpy(dtype=float)

    has_counts = (np.isfinite(c) & np.isfinite(d) & (d > 0) & (c >= 0)).all(1)
    is_prop = value_type == "proportion"
    use_chi = regular & is_prop & has_counts & ((c > 0) & (c < d)).all(1)
    # counts but no CI: compute the CI the OHID way (Wilson for proportions, Byar/exact for rates)
    need_ci = ~(np.isfinite(lo) & np.isfinite(hi) & (hi > lo)).all(1) & has_counts
    mult_col = np.where(np.isfinite(mult), mult, 100.0)[:, None]
    w_lo, w_hi = wilson_ci(c, d, multiplier=1)
    r_lo, r_hi = rate_ci(c, d, multiplier=1)
    lo = np.where(need_ci[:, None], np.where(is_prop[:, None], w_lo, r_lo) * mult_col, lo)
    hi = np.where(need_ci[:, None], np.where(is_prop[:, None], w_hi, r_hi) * mult_col, hi)
    has_ci = (np.isfinite(lo) & np.isfinite(hi) & (hi > lo)).all(1)
    use_wls = regular & ~use_chi & has_ci
    use_mk = regular & ~use_chi & ~use_wls

    direction = np.zeros(m)
    statistic = np.full(m, np.nan)
    significant = np.zeros(m, bool)
    method = np.where(regular, "", "periods overlap or are shorter than a year").astype(object)
    if use_chi.any():
        trend, chi2, robust = _chi2_proportion(c[use_chi], d[use_chi], t[use_chi])
        direction[use_chi], statistic[use_chi] = trend, chi2
        significant[use_chi] = (chi2 > CHI2_998) & robust
        method[use_chi] = "chi-squared test for trend (counts)"
    if use_wls.any():
        b, chi2, robust = _wls(v[use_wls], (hi[use_wls] - lo[use_wls]) / 3.92, t[use_wls])
        direction[use_wls], statistic[use_wls] = b, chi2
        significant[use_wls] = (chi2 > CHI2_998) & robust
        method[use_wls] = "weighted regression on the CIs"
    if use_mk.any():
        s, p = _mann_kendall(v[use_mk])
        direction[use_mk], statistic[use_mk] = s, p
        significant[use_mk] = p < MK_ALPHA
        method[use_mk] = "Mann-Kendall, no CIs (95%)"
    trend = trend_label(direction, significant, polarity)
    trend[~regular] = CANNOT
    out = first[keys].copy()
    out["trend"], out["trend_method"], out["trend_statistic"] = trend, method, statistic
    out["trend_from"] = last["period"].to_numpy().reshape(m, POINTS)[:, 0]
    out["trend_to"] = last["period"].to_numpy().reshape(m, POINTS)[:, -1]
    return out
