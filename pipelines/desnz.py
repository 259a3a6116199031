"""DESNZ sub-regional fuel poverty in England, 2023 edition (2021 data), Low Income Low Energy Efficiency (LILEE).

No live client: DESNZ publishes the tables only as an xlsx workbook (sub-regional-fuel-poverty-tables-2023-2021-data.xlsx;
Table 2 by local authority, Table 3 by LSOA 2021), which the tracker does not read. The bundled CSVs are those two
tables (households, fuel-poor households and the percentage); both are loaded into one indicator, with counts and
households kept so rates can be re-aggregated (e.g. LSOAs to ICBs) and given confidence intervals."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceError, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from tracker.catalog import IndicatorSpec

LA_FILE = "fuel_poverty/desnz_sub_regional_fuel_poverty_2021_la.csv"
LSOA_FILE = "fuel_poverty/desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz"
VALUES = ("households", "fuel_poor_households", "fuel_poor_pct")


class FuelPovertySource(Source):
    name = "desnz_fuel_poverty"
    title = "DESNZ sub-regional fuel poverty"
    producer = "Department for Energy Security and Net Zero"
    has_live = False
    no_live_reason = "DESNZ publishes the tables only as an xlsx workbook"
    publisher_url = ("https://assets.publishing.service.gov.uk/government/uploads/system/uploads/attachment_data/file/"
                     "1153252/sub-regional-fuel-poverty-tables-2023-2021-data.xlsx")

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(LA_FILE)
        if any("lsoa" in s.area_types for s in specs):
            yield snapshot_payload(LSOA_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        header = payload.text().lstrip("\ufeff").split("\n", 1)[0].split(",")
        code = "LSOA21CD" if "LSOA21CD" in header else "area_code"
        df = read_csv_strict(payload, [code, *VALUES], self.name)
        if code == "LSOA21CD":
            specs = [s for s in specs if "lsoa" in s.area_types]
        rows = []
        for spec in specs:
            if spec.source_id != "fuel_poor_pct":
                raise SourceError(f"{self.name}: catalog entry {spec.id} has source_id {spec.source_id!r}; expected fuel_poor_pct")
            rows.append(pd.DataFrame({
                "indicator_id": spec.id, "area_code": df[code], "value": df["fuel_poor_pct"],
                "count": df["fuel_poor_households"], "denominator": df["households"],
            }))
        if not rows:
            return empty_tidy()
        if df.empty:
            raise SourceFormatError(f"{self.name}: {payload.location} has a header but no rows")
        return tidy(pd.concat(rows, ignore_index=True), period="2021", period_start=date(2021, 1, 1),
                    period_end=date(2021, 12, 31))
