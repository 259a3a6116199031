"""ONS Crime Severity Score (official statistics in development) for total recorded crime, year ending March 2023,
from Home Office police recorded crime by Community Safety Partnership (CSP), mapped to 2023 districts.

A district covered by several CSPs appears once per CSP. The rows do not name the CSP, so they cannot be weighted by
population: their simple mean is the district's value, with a note saying how many CSP values were combined. If any
of a district's CSP values is blank the district is left blank (a mean of the rest would describe part of it).
Blanks (Devon and Cornwall police force area, City of London) are NULL with the note "not published".

No live client yet: ONS publishes the scores only in an Excel data tool (datatool.xls) by Community Safety Partnership;
a live client would need that workbook's layout (no copy of it is at hand to test against) and a CSP-to-district
lookup the tracker does not hold."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.base import Payload, Source, empty_tidy, read_csv_strict, snapshot_payload, tidy
from pipelines.mhclg import numeric
from tracker.catalog import IndicatorSpec

SCORE_FILE = "crime/ons_crime_severity_score_total_recorded_crime_csp_to_lad23_ye_mar2023.csv"


class CrimeSeveritySource(Source):
    name = "ons_crime_severity"
    title = "ONS Crime Severity Score"
    producer = "Office for National Statistics"
    has_live = False
    no_live_reason = "ONS publishes it only in an Excel data tool by Community Safety Partnership"
    publisher_url = ("https://www.ons.gov.uk/peoplepopulationandcommunity/crimeandjustice/datasets/"
                     "crimeseverityscoreexperimentalstatistics")

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(SCORE_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        df = read_csv_strict(payload, ["LAD23CD", *dict.fromkeys(s.source_id for s in specs)], self.name)
        out = []
        for spec in specs:
            scores = numeric(df[spec.source_id], self.name, payload.location)
            rows = []
            for code, values in scores.groupby(df["LAD23CD"], sort=False):
                n, published = len(values), int(values.notna().sum())
                if published == 0:
                    value, note = None, "not published"
                elif published < n:
                    value, note = None, f"published for {published} of the {n} Community Safety Partnerships covering this authority; not combined"
                else:
                    value = float(values.mean())
                    note = f"simple mean of {n} Community Safety Partnership values (no CSP populations to weight by)" if n > 1 else None
                rows.append({"area_code": code, "value": value, "note": note})
            out.append(pd.DataFrame(rows).assign(indicator_id=spec.id))
        if not out:
            return empty_tidy()
        return tidy(pd.concat(out, ignore_index=True), period="2022/23", period_start=date(2022, 4, 1),
                    period_end=date(2023, 3, 31))
