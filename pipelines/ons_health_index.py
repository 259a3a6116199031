"""ONS Health Index for England: the underlying indicators (raw values in each indicator's own unit) by local
authority district (2021 codes), Health Index years 2015-2021.

ONS publishes the underlying data as an xlsx workbook (healthindexunderlyingdataenglandcanscreenfix.xlsx, sheet
"Table_2_Underlying_data", long form, header in row 4: Area code, Area name, Year, Indicator name, Value, Numerator,
Denominator). Live: the dataset page's /data JSON gives the newest edition, whose /data lists the workbook
(the download whose name starts "healthindexunderlyingdata"), read with python-calamine; columns are found by
their header text. The bundled CSV is that table in long form (LAD21CD, year, indicator, value).

Catalog `source_id` is the indicator name exactly as ONS writes it (e.g. "Rough sleeping"). The period is the
Health Index year as published; ONS carries a value forward where its source was not updated, so the year is not
necessarily the year of the data (the catalog caveats say so)."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from pipelines.discovery import ons_newest_workbook
from pipelines.spreadsheet import as_text, cell_text, find_columns, find_row, open_workbook, sheet_rows
from tracker.catalog import IndicatorSpec

UNDERLYING_FILE = "health_index/ons_health_index_underlying_indicators_lad21_2015_2021.csv.gz"
COLUMNS = ("LAD21CD", "year", "indicator", "value")


PAGE = "peoplepopulationandcommunity/healthandsocialcare/healthandwellbeing/datasets/healthindexunderlyingdataengland"
FILE_RULE = re.compile(r"^healthindexunderlyingdata.*\.(xlsx|ods|xls)$", re.IGNORECASE)
SHEET = "Table_2_Underlying_data"
HEADERS = {"LAD21CD": r"area code$", "year": r"year$", "indicator": r"indicator name$", "value": r"value$"}


class HealthIndexSource(Source):
    name = "ons_health_index"
    title = "ONS Health Index underlying indicators"
    producer = "Office for National Statistics"
    publisher_url = "https://www.ons.gov.uk/" + PAGE

    def fetch(self, http, specs: list[IndicatorSpec]):
        yield ons_newest_workbook(http, self.name, PAGE, FILE_RULE, "'healthindexunderlyingdata....xlsx'")

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(UNDERLYING_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("kind") == "workbook":
            df = self._read_workbook(payload)
        else:
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

    def _read_workbook(self, payload: Payload) -> pd.DataFrame:
        book = open_workbook(payload, self.name)
        rows = sheet_rows(book, payload, SHEET, self.name)
        at = find_row(rows, lambda r: any(re.match(HEADERS["indicator"], cell_text(v)) for v in r), payload, SHEET,
                      self.name, "a header row with 'Indicator name'")
        cols = find_columns([rows[at]], HEADERS, payload, SHEET, self.name)
        data = [r for r in rows[at + 1:] if str(r[cols["LAD21CD"]]).strip().startswith("E")]
        return pd.DataFrame({key: [as_text(r[j]) for r in data] for key, j in cols.items()})
