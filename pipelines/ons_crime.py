"""ONS Crime Severity Score (official statistics in development) for total recorded crime, by Community Safety
Partnership (CSP), from Home Office police recorded crime, mapped to districts.

Live: the dataset page's `/data` JSON gives the newest edition, whose `/data` lists the data tool (`datatool.xls`;
earlier editions `cssdatatool.xls`), read with python-calamine. Sheet "Data - csp": a title row, then the header row
(`Offence group`, `Code` = the CSP code, the CSP's name, then two blocks of year columns headed like
"Apr '22 to Mar '23"). The score is the SECOND column headed with the newest year, as humaniverse/healthyr reads the
2023 tool (`Apr '22 to \\nMar '23...25`): the values it took (Hartlepool 24.5, Middlesbrough 35.1) are on the
score's scale, while total recorded crime per 1,000 people was about 110 in England and Wales that year; ONS titles
the workbook "crime severity and crime rate tool", so the other block is presumably the crime rate. A script for an
earlier tool read its first block as the score, so where the title row labels the blocks, the one labelled
"severity" wins. Rows with
`Offence group` "Total recorded crime" are read; ":" is ONS's "not published".

CSP -> district: the bundled lookup tracker/data/geography/lad23_csp_lookup.csv (ONS's LAD to CSP to PFA lookup,
December 2019, carried to 2023 district codes; see the folder's ATTRIBUTION.md). A CSP code not in it (a CSP created
since, or a Welsh CSP) is counted as skipped in the run report, never guessed. The bundled snapshot is the same
extract already mapped (healthyr's join with ONS's LAD23_CSP23_PFA23 lookup), one row per district and CSP.

A district covered by several CSPs gets the simple mean of their scores, with a note saying how many were combined:
the score is a rate per population, so a population-weighted mean would be right, but neither the workbook nor the
lookup gives CSP populations (a CSP can also cover parts of two districts, e.g. Dorset CSP in BCP and Dorset). If any
of a district's CSP values is not published the district is left blank with a note (a mean of the rest would
describe part of it). Districts with no value (Devon and Cornwall police force area, City of London) are NULL with
the note "not published"."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy, with_skipped,
)
from pipelines.discovery import ons_newest_workbook
from pipelines.mhclg import numeric
from pipelines.spreadsheet import as_text, cell_text, find_columns, find_row, open_workbook, sheet_rows
from tracker.catalog import IndicatorSpec
from tracker.config import GEOGRAPHY_DIR

SCORE_FILE = "crime/ons_crime_severity_score_total_recorded_crime_csp_to_lad23_ye_mar2023.csv"
LOOKUP_FILE = GEOGRAPHY_DIR / "lad23_csp_lookup.csv"

PAGE = "peoplepopulationandcommunity/crimeandjustice/datasets/crimeseverityscoreexperimentalstatistics"
FILE_RULE = re.compile(r"^(css)?datatool\.(xls|xlsx|ods)$", re.IGNORECASE)
SHEET = "Data - csp"
HEADERS = {"group": r"offence group$", "code": r"code$"}
YEAR = re.compile(r"^apr '?(\d{2}) to mar '?(\d{2})$")
TOTAL = "total recorded crime"
NOT_PUBLISHED = ":"


@lru_cache(maxsize=1)
def csp_lookup() -> pd.DataFrame:
    """CSP code -> English district (2023 code), one row per pair (a CSP may span two districts and a district
    several CSPs)."""
    return pd.read_csv(LOOKUP_FILE, dtype=str, usecols=["LAD23CD", "CSP19CD"])


class CrimeSeveritySource(Source):
    name = "ons_crime_severity"
    title = "ONS Crime Severity Score"
    producer = "Office for National Statistics"
    publisher_url = "https://www.ons.gov.uk/" + PAGE

    def fetch(self, http, specs: list[IndicatorSpec]):
        yield ons_newest_workbook(http, self.name, PAGE, FILE_RULE, "'datatool.xls'")

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(SCORE_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if not specs:
            return empty_tidy()
        if payload.meta.get("kind") == "workbook":
            by_district, (start, end), skipped = self._read_workbook(payload)
        else:
            df = read_csv_strict(payload, ["LAD23CD", *dict.fromkeys(s.source_id for s in specs)], self.name)
            by_district, (start, end), skipped = df[["LAD23CD", specs[0].source_id]], (2022, 2023), {}
            by_district.columns = ["LAD23CD", "score"]
        out = []
        for spec in specs:
            scores = numeric(by_district["score"].rename(spec.source_id), self.name, payload.location)
            out.append(combine(by_district["LAD23CD"], scores).assign(indicator_id=spec.id))
        frame = tidy(pd.concat(out, ignore_index=True), period=f"{start}/{end % 100:02d}",
                     period_start=date(start, 4, 1), period_end=date(end, 3, 31))
        return with_skipped(frame, skipped)

    def _read_workbook(self, payload: Payload) -> tuple[pd.DataFrame, tuple[int, int], dict[str, int]]:
        """(LAD23CD, score text) per district and CSP, the financial year read, and rows skipped by rule."""
        book = open_workbook(payload, self.name)
        rows = sheet_rows(book, payload, SHEET, self.name)
        at = find_row(rows, lambda r: any(YEAR.match(cell_text(v)) for v in r), payload, SHEET, self.name,
                      "a header row with year columns headed like \"Apr '22 to Mar '23\"")
        cols = find_columns([rows[at]], HEADERS, payload, SHEET, self.name)
        years: dict[tuple[int, int], list[int]] = {}
        for j, v in enumerate(rows[at]):
            m = YEAR.match(cell_text(v))
            if m:
                years.setdefault((2000 + int(m[1]), 2000 + int(m[2])), []).append(j)
        if not years or len(years[max(years)]) != 2:
            found = f"{len(years[max(years)])} column(s) for {max(years)}" if years else "no year column"
            raise SourceFormatError(
                f"{self.name}: {payload.meta.get('filename') or payload.location}, sheet {SHEET!r}: expected two "
                f"blocks of year columns headed like \"Apr '22 to Mar '23\" (the crime severity score is one "
                f"of the two); found {found}. The publisher changed the layout: the parser needs updating")
        newest = max(years)
        score_col = _score_column(rows[at - 1] if at else [], years[newest])
        data = [r for r in rows[at + 1:] if cell_text(r[cols["group"]]) == TOTAL]
        if not data:
            raise SourceFormatError(f"{self.name}: {payload.meta.get('filename') or payload.location}, sheet "
                                    f"{SHEET!r}: no row with Offence group 'Total recorded crime'")
        csp = pd.DataFrame({"CSP19CD": [as_text(r[cols["code"]]) for r in data],
                            "score": [as_text(r[score_col]).replace(NOT_PUBLISHED, "") for r in data]})
        lookup = csp_lookup()
        known = csp["CSP19CD"].isin(lookup["CSP19CD"])
        welsh = csp["CSP19CD"].str.startswith("W")
        skipped = {"Welsh Community Safety Partnership (England only)": int((~known & welsh).sum()),
                   "CSP code not in the bundled CSP-to-district lookup": int((~known & ~welsh).sum())}
        joined = csp[known].merge(lookup, on="CSP19CD", how="inner", sort=False)
        return joined[["LAD23CD", "score"]], newest, skipped


def _score_column(title_row: list, candidates: list[int]) -> int:
    """Of the newest year's two columns, the one under a title-row label mentioning "severity" if exactly one is;
    else the second (the 2023 layout)."""
    def label(j: int) -> str:  # the nearest title cell at or left of the column (a label spans its block)
        return next((cell_text(title_row[k]) for k in range(min(j, len(title_row) - 1), -1, -1)
                     if cell_text(title_row[k])), "")
    labelled = [j for j in candidates if "severity" in label(j)]
    return labelled[0] if len(labelled) == 1 else candidates[1]


def combine(districts: pd.Series, scores: pd.Series) -> pd.DataFrame:
    """One value per district from its CSP values (the rules in the module docstring)."""
    rows = []
    for code, values in scores.groupby(districts.to_numpy(), sort=False):
        n, published = len(values), int(values.notna().sum())
        if published == 0:
            value, note = None, "not published"
        elif published < n:
            value, note = None, f"published for {published} of the {n} Community Safety Partnerships covering this authority; not combined"
        else:
            value = float(values.mean())
            note = f"simple mean of {n} Community Safety Partnership values (no CSP populations to weight by)" if n > 1 else None
        rows.append({"area_code": code, "value": value, "note": note})
    return pd.DataFrame(rows)
