"""Column helpers shared by the loader and the layers above it."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd


def per_distinct(values, convert: Callable[[pd.Index], Sequence], missing=None) -> np.ndarray:
    """`convert` applied to the distinct values of `values` (one result each, in order), spread back over every
    row as an object array; a missing value gives `missing`. For columns whose values repeat (codes, labels,
    dates, periods): each is worked out once instead of once per row."""
    positions, distinct = pd.factorize(values)  # position -1 is missing: the `missing` appended
    results = np.empty(len(distinct) + 1, dtype=object)
    results[:-1] = list(convert(distinct))
    results[-1] = missing
    return results.take(positions)


def text_column(values, index) -> pd.Series:
    """Text as an object column: one Python object per distinct value, None where missing. Assigned as an array of
    texts, pandas makes a column of its Arrow-backed str, a copy of the text in every row: for the analysis' labels
    (a comparison, a trend, how it was tested) that was a third of every area's rows' memory."""
    return pd.Series(per_distinct(values, lambda distinct: distinct.tolist()), index=index, dtype=object)
