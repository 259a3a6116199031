"""Statistics behind every screen: confidence intervals (OHID methods), comparison with a benchmark (the
Fingertips method), quintiles, and the association statistics used for the department ranking.

All functions are vectorised: they accept scalars, numpy arrays or pandas Series and return the same shape
(a Series keeps its index). docs/methods.md explains each method in plain English.

The distributions come from scipy.special, the functions scipy.stats calls for these ones (ndtri for the normal,
gammaincinv for the chi-squared, stdtrit and stdtr for Student's t): the same numbers, and importing scipy.stats took
about 45 MB more of every process that computes the analysis (tests/test_analysis_stats.py checks they agree)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The words Fingertips uses, so users who know Fingertips read the tracker the same way.
BETTER, WORSE, SIMILAR = "Better", "Worse", "Similar"
HIGHER, LOWER = "Higher", "Lower"
NOT_COMPARED = "Not compared"
QUINTILES = ("Lowest", "Low", "Middle", "High", "Highest")
POLARITY_SIGN = {"higher_is_better": -1.0, "lower_is_better": 1.0, "no_judgement": np.nan}  # +1: higher is worse


def confidence_fraction(confidence: float) -> float:
    """0.95 or 95 -> 0.95 (PHEindicatormethods accepts both); anything outside 90-100% is an error."""
    c = float(confidence)
    if c > 1:
        c = c / 100
    if not 0.9 <= c < 1:
        raise ValueError(f"confidence must be between 0.9 and 1 (or 90 and 100), not {confidence!r}")
    return c


def z_value(confidence: float) -> float:
    """The 100(1 - alpha/2)th percentile of the standard normal distribution (1.959964 for 95%)."""
    from scipy import special  # imported when first needed: the dashboard's processes rarely need it

    return float(special.ndtri(1 - (1 - confidence_fraction(confidence)) / 2))


def _arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def _shape_like(result: np.ndarray, like):
    if isinstance(like, pd.Series):
        return pd.Series(result, index=like.index)
    if np.ndim(like) == 0:
        return float(result)
    return result


def wilson_ci(count, denom, confidence: float = 0.95, multiplier: float = 100):
    """Wilson score limits for a proportion count/denom, times multiplier (100 for a percentage).

    Returns (lower, upper). Invalid inputs (count < 0, denom <= 0, count > denom, missing) give NaN."""
    x, n = _arrays(count, denom)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = 1 - x / n
        root = z * np.sqrt(z**2 + 4 * x * q)
        lower = (2 * x + z**2 - root) / (2 * (n + z**2)) * multiplier
        upper = (2 * x + z**2 + root) / (2 * (n + z**2)) * multiplier
    bad = ~((x >= 0) & (n > 0) & (x <= n))
    lower, upper = np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)
    return _shape_like(lower, count), _shape_like(upper, count)


def byar_ci(count, confidence: float = 0.95):
    """Byar's approximation to the Poisson limits of an observed count of events. Returns (lower, upper)."""
    x, = _arrays(count)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(x == 0, 0.0, x * (1 - 1 / (9 * x) - z / (3 * np.sqrt(x))) ** 3)
        upper = (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * np.sqrt(x + 1))) ** 3
    bad = ~(x >= 0)
    return _shape_like(np.where(bad, np.nan, lower), count), _shape_like(np.where(bad, np.nan, upper), count)


def exact_poisson_ci(count, confidence: float = 0.95):
    """Exact Poisson limits of a count through the chi-squared distribution. Returns (lower, upper)."""
    x, = _arrays(count)
    alpha = 1 - confidence_fraction(confidence)
    from scipy import special

    # the chi-squared quantile with 2k degrees of freedom, halved, is gammaincinv(k, p)
    with np.errstate(invalid="ignore"):
        lower = np.where(x == 0, 0.0, special.gammaincinv(np.where(x > 0, x, np.nan), alpha / 2))
        upper = special.gammaincinv(np.where(x >= 0, x + 1, np.nan), 1 - alpha / 2)
    bad = ~(x >= 0)
    return _shape_like(np.where(bad, np.nan, lower), count), _shape_like(np.where(bad, np.nan, upper), count)


def rate_ci(count, denom, multiplier: float = 100_000, confidence: float = 0.95):
    """Limits of a crude rate count/denom * multiplier: exact Poisson below 10 events, Byar's method from 10
    (OHID technical guidance). Returns (lower, upper)."""
    x, n = _arrays(count, denom)
    b_lo, b_hi = byar_ci(x, confidence)
    e_lo, e_hi = exact_poisson_ci(x, confidence)
    small = x < 10
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(small, e_lo, b_lo) / n * multiplier
        upper = np.where(small, e_hi, b_hi) / n * multiplier
    bad = ~((x >= 0) & (n > 0))
    return _shape_like(np.where(bad, np.nan, lower), count), _shape_like(np.where(bad, np.nan, upper), count)


# The 2013 European Standard Population, 19 five-year bands 0-4 ... 85-89 then 90+ (Eurostat; OHID's standard for
# directly standardised rates since 2013, PHEindicatormethods' `esp2013`).
ESP2013 = (5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000, 7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500,
           1000)
DSR_MIN_COUNT = 10  # OHID does not publish a DSR (value or CI) on fewer than 10 events


def dsr(count, population, standard_population, groups=None, multiplier: float = 100_000,
        confidence: float = 0.95) -> pd.DataFrame:
    """Directly standardised rates with Dobson's confidence limits, OHID's method (PHEindicatormethods'
    `calculate_dsr`, independent events).

    One row per age band: count (events; missing counts as 0), population (> 0) and standard_population, and
    optionally `groups` (one label per row, e.g. area codes) to standardise several areas at once.
    DSR = sum(count x std / pop) / sum(std) x multiplier; var = sum(count x (std / pop)^2) / sum(std)^2; the limits
    are DSR + sqrt(var / O) x (Byar's limit of O - O) x multiplier with O the total count (Dobson et al. 1991).
    Value and limits are NaN below 10 events. Returns a DataFrame indexed by group with columns total_count,
    total_pop, value, lower, upper."""
    frame = pd.DataFrame({"x": np.asarray(count, float), "n": np.asarray(population, float),
                          "std": np.asarray(standard_population, float)})
    if (frame["n"] <= 0).any() or frame["n"].isna().any():
        raise ValueError("every age band needs a population greater than zero")
    if (frame["x"] < 0).any() or (frame["std"] < 0).any() or frame["std"].isna().any():
        raise ValueError("counts and standard populations must not be negative (standard population not missing)")
    frame["x"] = frame["x"].fillna(0.0)
    frame["g"] = "all" if groups is None else np.asarray(groups, dtype=object)
    frame["wt"] = frame["x"] * frame["std"] / frame["n"]
    frame["sq"] = frame["x"] * (frame["std"] / frame["n"]) ** 2
    g = frame.groupby("g", sort=False).agg(total_count=("x", "sum"), total_pop=("n", "sum"), wt=("wt", "sum"),
                                           sq=("sq", "sum"), std=("std", "sum"))
    total = g["total_count"].to_numpy()
    value = g["wt"].to_numpy() / g["std"].to_numpy()
    var = g["sq"].to_numpy() / g["std"].to_numpy() ** 2
    byar_lo, byar_hi = byar_ci(total, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(var / total)
        lower, upper = value + scale * (byar_lo - total), value + scale * (byar_hi - total)
    small = total < DSR_MIN_COUNT
    out = pd.DataFrame({"total_count": total, "total_pop": g["total_pop"].to_numpy()}, index=g.index.rename(None))
    for name, arr in (("value", value), ("lower", lower), ("upper", upper)):
        out[name] = np.where(small, np.nan, arr * multiplier)
    return out


def mean_ci(values, groups=None, confidence: float = 0.95) -> pd.DataFrame:
    """Means with Student's t confidence limits (PHEindicatormethods' `phe_mean`): mean -/+ t(n - 1) x sd / sqrt(n),
    sd the sample standard deviation. Missing values are left out. Returns a DataFrame indexed by group with columns
    value_sum, value_count, stdev, value, lower, upper (limits NaN with fewer than two values)."""
    from scipy import special

    frame = pd.DataFrame({"v": np.asarray(values, float)})
    frame["g"] = "all" if groups is None else np.asarray(groups, dtype=object)
    g = frame.dropna(subset=["v"]).groupby("g", sort=False)["v"].agg(["sum", "count", "std", "mean"])
    n = g["count"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = special.stdtrit(np.where(n > 1, n - 1, np.nan), (1 - confidence_fraction(confidence)) / 2)
        half = np.abs(t) * g["std"].to_numpy() / np.sqrt(n)
    return pd.DataFrame({"value_sum": g["sum"].to_numpy(), "value_count": g["count"].to_numpy(),
                         "stdev": g["std"].to_numpy(), "value": g["mean"].to_numpy(),
                         "lower": g["mean"].to_numpy() - half, "upper": g["mean"].to_numpy() + half},
                        index=g.index.rename(None))


def compare(value, lci95, uci95, benchmark, polarity, lci998=None, uci998=None) -> pd.DataFrame:
    """Compare each value with its benchmark the Fingertips way.

    The benchmark inside the 95% CI (limits included) is "Similar"; outside it the value is "Better" or "Worse"
    by polarity ("Higher"/"Lower" when polarity is no_judgement); a value or CI limit or benchmark missing is
    "Not compared". `level` is "95%" for a difference at 95% only and "99.8%" when the benchmark is also outside
    the 99.8% CI (the stronger grade). `label` joins them, e.g. "Worse (99.8%)".
    polarity may be one string or one per value. Returns a DataFrame with columns comparison, level, label."""
    v, lo, hi, b = _arrays(value, lci95, uci95, benchmark)
    n = v.shape[0] if v.ndim else 1
    v, lo, hi, b = (np.broadcast_to(a, (n,)).astype(float) for a in (v, lo, hi, b))
    pol = pd.Series(np.broadcast_to(np.asarray(polarity, dtype=object), (n,)))
    sign = pol.map(POLARITY_SIGN).to_numpy(dtype=float)
    usable = ~(np.isnan(v) | np.isnan(lo) | np.isnan(hi) | np.isnan(b))
    above = usable & (lo > b)  # the area is significantly higher than the benchmark
    below = usable & (hi < b)
    no_pol = np.isnan(sign)
    worse = (above & (sign > 0)) | (below & (sign < 0))
    better = (above & (sign < 0)) | (below & (sign > 0))
    comparison = np.select(
        [~usable, above & no_pol, below & no_pol, worse, better],
        [NOT_COMPARED, HIGHER, LOWER, WORSE, BETTER],
        default=SIMILAR,
    ).astype(object)
    level = np.full(n, None, dtype=object)
    differs = above | below
    level[differs] = "95%"
    if lci998 is not None and uci998 is not None:
        lo9, hi9 = (np.broadcast_to(a, (n,)).astype(float) for a in _arrays(lci998, uci998))
        strong = differs & (((lo9 > b) & above) | ((hi9 < b) & below))
        level[strong] = "99.8%"
    graded = level != None  # noqa: E711 (elementwise on an object array)
    label = comparison.copy()
    label[graded] = comparison[graded] + " (" + level[graded] + ")"
    index = value.index if isinstance(value, pd.Series) else None
    return pd.DataFrame({"comparison": comparison, "level": level, "label": label}, index=index)


def quintile_labels(values: pd.Series, groups: list | None = None) -> pd.Series:
    """"Lowest" ... "Highest" by each value's position among the values of its group (areas of the same type,
    period and sex): Fingertips' quintiles, used where an indicator has no confidence intervals. Tied values share
    a quintile; a missing value is "Not compared". groups: Series (or list of Series) aligned with values."""
    grouped = values.groupby(groups if groups is not None else np.zeros(len(values)), sort=False, dropna=False)
    rank = grouped.rank(method="min")
    n = grouped.transform("count")
    q = np.floor(5 * (rank - 1) / n)
    labels = np.array(QUINTILES + (NOT_COMPARED,), dtype=object)
    return pd.Series(labels[q.fillna(5).astype(int).to_numpy()], index=values.index, dtype=object)


# A quintile in words that say which end is good: position among areas, never a significance judgement.
BEST_FIFTH, WORST_FIFTH = "Best fifth", "Worst fifth"
_FIFTHS_GOOD_HIGH = (WORST_FIFTH, "Second-worst fifth", "Middle fifth", "Second-best fifth", BEST_FIFTH)
POSITION_WORDS = {
    "higher_is_better": dict(zip(QUINTILES, _FIFTHS_GOOD_HIGH)),
    "lower_is_better": dict(zip(QUINTILES, _FIFTHS_GOOD_HIGH[::-1])),
    "no_judgement": dict(zip(QUINTILES, ("Lowest fifth", "Second-lowest fifth", "Middle fifth", "Second-highest fifth",
                                         "Highest fifth"))),
}


def position_words(quintile: pd.Series, polarity: pd.Series) -> pd.Series:
    """Quintile ("Lowest" .. "Highest") -> position among areas in polarity words ("Worst fifth" .. "Best fifth";
    "Lowest fifth" .. "Highest fifth" for an indicator without polarity). None where there is no quintile."""
    out = pd.Series([None] * len(quintile), index=quintile.index, dtype=object)
    for pol, words in POSITION_WORDS.items():
        mine = (polarity == pol) & quintile.notna()
        out[mine] = quintile[mine].map(words)
    return out


def worst_quintile(label: pd.Series, polarity: pd.Series) -> pd.Series:
    """True where the quintile is the worst fifth by polarity ("Highest" when lower is better)."""
    return ((label == "Highest") & (polarity == "lower_is_better")) | ((label == "Lowest") & (polarity == "higher_is_better"))


# ---------------------------------------------------------------------------------------------------------------
# Association


def spearman_ci(rho, n, confidence: float = 0.95):
    """CI for Spearman's rho: Fisher's z with the Bonett-Wright standard error sqrt((1 + rho^2/2) / (n - 3)).
    Returns (lower, upper); NaN where n < 4."""
    r, m = _arrays(rho, n)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt((1 + r**2 / 2) / (m - 3))
        centre = np.arctanh(np.clip(r, -0.999999, 0.999999))
        lower, upper = np.tanh(centre - z * se), np.tanh(centre + z * se)
    bad = ~(m >= 4) | np.isnan(r)
    return _shape_like(np.where(bad, np.nan, lower), rho), _shape_like(np.where(bad, np.nan, upper), rho)


def bh_adjust(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN and is not counted as a test."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="mergesort")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    values = np.empty(m)
    values[order] = adjusted
    out[ok] = values
    return out


def spearman(x, y) -> tuple[float, float, int]:
    """Spearman's rho, its two-sided p-value and n over the pairs where both are present."""
    x, y = _arrays(x, y)
    ok = ~(np.isnan(x) | np.isnan(y))
    n = int(ok.sum())
    if n < 4 or np.unique(x[ok]).size < 2 or np.unique(y[ok]).size < 2:
        return np.nan, np.nan, n
    from scipy import special

    # as scipy.stats.spearmanr computes it: Pearson's r of the average ranks, tested by Student's t on n - 2
    ranks = np.column_stack([pd.Series(x[ok]).rank().to_numpy(), pd.Series(y[ok]).rank().to_numpy()])
    rho = np.corrcoef(ranks, rowvar=False)[1, 0]
    with np.errstate(divide="ignore"):
        t = rho * np.sqrt(max((n - 2) / ((rho + 1.0) * (1.0 - rho)), 0))
    return float(rho), float(2 * special.stdtr(n - 2, -abs(t))), n


def weighted_rank_correlation(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's rho for each row of `weights` (B x n frequency weights, e.g. bootstrap counts) on fixed x, y.

    Equivalent to repeating each pair weight times and taking Spearman's rho (mid-ranks for ties), so a
    bootstrap needs one sort instead of B."""
    w = np.asarray(weights, dtype=float)

    def ranks(v):
        order = np.argsort(v, kind="mergesort")
        sorted_v = v[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]  # first position of each distinct value
        per_value = np.add.reduceat(w[:, order], starts, axis=1)  # B x distinct values: weight of each value
        mid = np.cumsum(per_value, axis=1) - per_value + (per_value + 1) / 2
        out = np.empty_like(w)
        out[:, order] = mid[:, np.repeat(np.arange(starts.size), np.diff(np.r_[starts, v.size]))]
        return out

    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    total = w.sum(axis=1, keepdims=True)
    mx, my = (w * rx).sum(1, keepdims=True) / total, (w * ry).sum(1, keepdims=True) / total
    cov = (w * (rx - mx) * (ry - my)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.sqrt((w * (rx - mx) ** 2).sum(1) * (w * (ry - my) ** 2).sum(1))
