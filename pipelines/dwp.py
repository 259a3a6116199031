"""DWP children in low income families: local area statistics, relative low income, counts of children under 16
by local authority district (2021 codes), financial years ending 2015 to 2022 (2021/22 provisional).

Counts only: the bundled Stat-Xplore export has no denominator, and DWP's own percentages come through the ONS
Explore Local Statistics source (children in relative poverty). The count is kept because it sizes the problem in a
place and shows its trend there; it is not for comparing places (it grows with the number of children), so the
catalog gives it polarity no_judgement.

No live client: the statistics are served by DWP Stat-Xplore, whose API needs a personal key and a query per table;
the tracker reads the bundled export. Districts merged in 2023 (Cumbria, North Yorkshire, Somerset) are summed
into today's authorities."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from pipelines.mhclg import combine_merged_districts, numeric
from tracker.catalog import IndicatorSpec

COUNTS_FILE = "children/dwp_children_in_relative_low_income_families_counts_lad21_fye2015_to_fye2022.csv"
COLUMNS = ("LAD21CD", "financial_year", "provisional")


class ChildrenLowIncomeSource(Source):
    name = "dwp_children_low_income"
    title = "DWP children in low income families (counts)"
    producer = "Department for Work and Pensions"
    has_live = False
    no_live_reason = "the figures come from DWP Stat-Xplore, which needs a personal API key"
    publisher_url = "https://www.gov.uk/government/collections/children-in-low-income-families-local-area-statistics"

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(COUNTS_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        df = read_csv_strict(payload, [*COLUMNS, *dict.fromkeys(s.source_id for s in specs)], self.name)
        years = df["financial_year"].str.extract(r"^(\d{4})/(\d{2})$")
        if years.isna().any().any():
            bad = df.loc[years.isna().any(axis=1), "financial_year"].iloc[0]
            raise SourceFormatError(f"{self.name}: {payload.location} has financial_year {bad!r}; expected e.g. 2019/20")
        df["start"] = years[0].astype(int)
        provisional = df["provisional"].str.lower().map({"true": True, "false": False})
        if provisional.isna().any():
            raise SourceFormatError(f"{self.name}: {payload.location} has provisional values other than True/False")
        df["provisional"] = provisional
        out = []
        for spec in specs:
            part = pd.DataFrame({
                "financial_year": df["financial_year"], "start": df["start"], "provisional": df["provisional"],
                "area_code": df["LAD21CD"].replace("", None), "count": numeric(df[spec.source_id], self.name, payload.location),
            })
            part = part[part["area_code"].notna()]  # Northern Ireland rows carry no GSS code
            part = combine_merged_districts(part, ["count"], ["financial_year", "start", "provisional"])
            part["indicator_id"] = spec.id
            part["value"] = part["count"]
            merged = part["note"] if "note" in part else pd.Series(None, index=part.index, dtype=object)
            part["note"] = [
                "; ".join(n for n in (note, "provisional" if prov else None) if isinstance(n, str)) or None
                for note, prov in zip(merged, part["provisional"])
            ]
            out.append(part)
        if not out:
            return empty_tidy()
        frame = pd.concat(out, ignore_index=True)
        frame["period"] = frame["financial_year"]
        frame["period_start"] = [date(y, 4, 1) for y in frame["start"]]
        frame["period_end"] = [date(y + 1, 3, 31) for y in frame["start"]]
        return tidy(frame)
