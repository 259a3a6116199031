"""Directly standardised rates are never given a crude rate's interval: ICB figures of a DSR say they are an
approximate average (no age-specific counts), and CIs are not filled in from a DSR's crude count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from db.engine import make_engine
from tracker.analysis import icb_figures
from tracker.analysis.data import fill_cis
from tracker.analysis.icb import WEIGHTED_DSR

NENC = "E54000050"  # NHS North East and North Cumbria ICB


@pytest.fixture(scope="module")
def engine(snapshot_db_file):
    e = make_engine(f"sqlite:///{snapshot_db_file}")
    yield e
    e.dispose()


@pytest.mark.parametrize("indicator", ["preventable-mortality-u75", "preventable-cvd-mortality-u75"])
def test_an_icb_figure_of_a_dsr_says_it_is_an_approximate_average_without_a_ci(engine, indicator):
    got = icb_figures(engine, indicator, NENC).iloc[0]
    assert got["method"] == WEIGHTED_DSR and got["approximate"]
    assert "age band" in got["note"] and "no confidence interval" in got["note"]
    assert np.isnan(got["lci95"]) and np.isnan(got["uci95"]) and np.isnan(got["count"])
    # no CI: never tested against England; its position among the 42 ICBs instead
    assert got["comparison_label"] == "Not compared" and got["position"].endswith("fifth")


def test_cis_are_filled_from_counts_for_a_crude_rate_but_never_for_a_dsr():
    """CONSTRUCTED: the same count, population and value (40 events in 20,000 = 200 per 100,000) as a crude rate
    and as a DSR that happens to equal its crude rate."""
    indicators = pd.DataFrame({"value_type": ["rate", "rate"], "multiplier": [100_000.0, 100_000.0],
                               "ci_method": ["byar", "published"]},
                              index=["dfe-first-time-entrants-youth-justice", "preventable-mortality-u75"])
    obs = pd.DataFrame({"indicator_id": indicators.index, "value": [200.0, 200.0], "count": [40.0, 40.0],
                        "denominator": [20_000.0, 20_000.0], "lci95": np.nan, "uci95": np.nan, "lci998": np.nan,
                        "uci998": np.nan})
    got = fill_cis(obs, indicators).set_index("indicator_id")
    assert got.at["dfe-first-time-entrants-youth-justice", "ci_source"] == "computed from counts (Byar / exact Poisson)"
    assert got.at["dfe-first-time-entrants-youth-justice", "lci95"] < 200 < got.at["dfe-first-time-entrants-youth-justice", "uci95"]
    assert got.at["preventable-mortality-u75", "ci_source"] is None
    assert np.isnan(got.at["preventable-mortality-u75", "lci95"])
