"""ONS Health Index for England: the underlying indicators (raw values in each indicator's own unit) by local
authority district (2021 codes), Health Index years 2015-2021.

No live client: ONS publishes the underlying data only as an xlsx workbook
(healthindexunderlyingdataenglandcanscreenfix.xlsx, sheet "Table_2_Underlying_data"), which the tracker does not
read. The bundled CSV is that table in long form (LAD21CD, year, indicator, value).

Catalog `source_id` is the indicator name exactly as ONS writes it (e.g. "Rough sleeping"). The period is the
Health Index year as published; ONS carries a value forward where its source was not updated, so the year is not
necessarily the year of the data (the catalog caveats say so)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from tracker.catalog import IndicatorSpec

UNDERLYING_FILE = "health_index/ons_health_index_underlying_indicators_lad21_2015_2021.csv.gz"
COLUMNS = ("LAD21CD", "year", "indicator", "value")


class HealthIndexSource(Source):
    name = "ons_health_index"
    title = "ONS Health Index underlying indicators"
    producer = "Office for National Statistics"
    has_live = False
    no_live_reason = "ONS publishes the underlying data only as an xlsx workbook"
    publisher_url = ("https://www.ons.gov.uk/peoplepopulationandcommunity/healthandsocialcare/healthandwellbeing/"
                     "datasets/healthindexunderlyingdataengland")

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(UNDERLYING_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        df = read_csv_strict(payload, COLUMNS, self.name)
        by_name = {s.source_id: s.id for s in specs}
        missing = sorted(set(by_name) - set(df["indicator"]))
        if missing:
            raise SourceFormatError(
                f"{self.name}: {payload.location} has no rows for indicator(s) {', '.join(missing)} "
                f"named in the catalog; it has {df['indicator'].nunique()} indicators"
            )
        df = df[df["indicator"].isin(by_name)]
        if df.empty:
            return empty_tidy()
        years = pd.to_numeric(df["year"], errors="coerce")
        if years.isna().any():
            raise SourceFormatError(f"{self.name}: {payload.location} has a non-numeric year: {df.loc[years.isna(), 'year'].iloc[0]!r}")
        years = years.astype(int)
        out = pd.DataFrame({
            "indicator_id": df["indicator"].map(by_name),
            "area_code": df["LAD21CD"],
            "period": years.astype(str),
            "period_start": [date(y, 1, 1) for y in years],
            "period_end": [date(y, 12, 31) for y in years],
            "value": df["value"],
        })
        return tidy(out)
