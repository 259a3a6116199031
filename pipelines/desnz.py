"""DESNZ sub-regional fuel poverty in England, 2023 edition (2021 data), Low Income Low Energy Efficiency (LILEE).

DESNZ publishes the tables as a workbook (sub-regional-fuel-poverty-2023-tables.xlsx; Table 2 by local authority,
Table 3 by LSOA 2021), read live with python-calamine (see FuelPovertySource). The bundled CSVs are those two
tables (households, fuel-poor households and the percentage); both are loaded into one indicator, with counts and
households kept so rates can be re-aggregated (e.g. LSOAs to ICBs) and given confidence intervals."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceError, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from pipelines.discovery import govuk_attachments, govuk_collection_documents, govuk_page_released, pick
from pipelines.spreadsheet import as_text, cell_text, find_columns, find_row, open_workbook, sheet_rows
from tracker.catalog import IndicatorSpec

LA_FILE = "fuel_poverty/desnz_sub_regional_fuel_poverty_2021_la.csv"
LSOA_FILE = "fuel_poverty/desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz"
VALUES = ("households", "fuel_poor_households", "fuel_poor_pct")


# Live: DESNZ publishes one statistics page a year ("Sub-regional fuel poverty data 2023", with 2021 data) in the
# collection below. The newest page is the document whose title has the highest year; its tables are the spreadsheet
# attachment whose file name or title says fuel poverty ... tables (sub-regional-fuel-poverty-2023-tables.xlsx).
COLLECTION = "government/collections/fuel-poverty-sub-regional-statistics"
DOCUMENT_RULE = re.compile(r"sub-regional fuel poverty(?: data)?,? (20\d\d)", re.IGNORECASE)
TABLES_RULE = re.compile(r"fuel[-_ ]poverty.*tables", re.IGNORECASE)
SHEETS = {  # sheet -> (code column header, column name in the bundled CSV)
    "Table 2": (r"area codes", "area_code"),
    "Table 3": (r"lsoa code", "LSOA21CD"),
}
VALUE_HEADERS = {
    "households": r"number of households$",
    "fuel_poor_households": r"number of households in fuel poverty",
    "fuel_poor_pct": r"proportion of households fuel poor",
}
GSS_CODE = re.compile(r"^E\d{8}$")


class FuelPovertySource(Source):
    """DESNZ sub-regional fuel poverty, LILEE, by local authority (Table 2) and LSOA 2021 (Table 3).

    Offline: the bundled CSVs (the 2023 tables, 2021 data). Live: the newest yearly page of the DESNZ collection
    (GOV.UK Content API), its tables workbook (xlsx or ods), sheets "Table 2" and "Table 3" read by their header
    text; the data year is read from each table's title ("..., 2021"). Years the newest workbook does not hold are
    kept from the bundled snapshot (DESNZ warns against comparing years: methods change)."""

    name = "desnz_fuel_poverty"
    title = "DESNZ sub-regional fuel poverty"
    producer = "Department for Energy Security and Net Zero"
    publisher_url = "https://www.gov.uk/" + COLLECTION

    def fetch(self, http, specs: list[IndicatorSpec]):
        docs = [(int(m.group(1)), path) for title, path in
                govuk_collection_documents(http, self.name, COLLECTION) if (m := DOCUMENT_RULE.search(title))]
        if not docs:
            raise SourceError(f"{self.name}: no document titled 'Sub-regional fuel poverty data YYYY' in the GOV.UK "
                              f"collection {COLLECTION}")
        _, path = max(docs)
        page, attachments = govuk_attachments(http, self.name, path)
        att, _ = pick(attachments, TABLES_RULE, self.name, page.location, "'...fuel-poverty...tables' (.xlsx/.ods)")[0]
        workbook = http.get(self.name, att.url, kind="workbook", filename=att.filename, title=att.title,
                            released=govuk_page_released(page))
        yield workbook
        years = sorted({self._workbook_year(workbook)})
        for payload in self.read_offline(specs):
            payload.meta = {"kind": "history", "replaced_periods": [str(y) for y in years]}
            yield payload

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(LA_FILE)
        if any("lsoa" in s.area_types for s in specs):
            yield snapshot_payload(LSOA_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("kind") == "workbook":
            frames = [self._frame(df, specs, year, payload.location) for df, year in self._read_workbook(payload, specs)]
            return pd.concat(frames, ignore_index=True) if frames else empty_tidy()
        if "2021" in (payload.meta.get("replaced_periods") or []):
            return empty_tidy()  # the live workbook holds this year
        header = payload.text().lstrip("\ufeff").split("\n", 1)[0].split(",")
        code = "LSOA21CD" if "LSOA21CD" in header else "area_code"
        df = read_csv_strict(payload, [code, *VALUES], self.name)
        return self._frame(df.rename(columns={code: "code"}), specs, 2021, payload.location, lsoa=code == "LSOA21CD")

    def _frame(self, df: pd.DataFrame, specs, year: int, location: str, lsoa: bool | None = None) -> pd.DataFrame:
        if lsoa is None:
            lsoa = df.attrs.get("lsoa", False)
        if lsoa:
            specs = [s for s in specs if "lsoa" in s.area_types]
        rows = []
        for spec in specs:
            if spec.source_id != "fuel_poor_pct":
                raise SourceError(f"{self.name}: catalog entry {spec.id} has source_id {spec.source_id!r}; expected fuel_poor_pct")
            rows.append(pd.DataFrame({
                "indicator_id": spec.id, "area_code": df["code"], "value": df["fuel_poor_pct"],
                "count": df["fuel_poor_households"], "denominator": df["households"],
            }))
        if not rows:
            return empty_tidy()
        if df.empty:
            raise SourceFormatError(f"{self.name}: {location} has a header but no rows")
        return tidy(pd.concat(rows, ignore_index=True), period=str(year), period_start=date(year, 1, 1),
                    period_end=date(year, 12, 31))

    def _workbook_year(self, payload: Payload) -> int:
        book = open_workbook(payload, self.name)
        return _title_year(sheet_rows(book, payload, "Table 2", self.name), payload, "Table 2", self.name)

    def _read_workbook(self, payload: Payload, specs):
        book = open_workbook(payload, self.name)
        want_lsoa = any("lsoa" in s.area_types for s in specs)
        for sheet, (code_header, _) in SHEETS.items():
            if sheet == "Table 3" and not want_lsoa:
                continue
            rows = sheet_rows(book, payload, sheet, self.name)
            year = _title_year(rows, payload, sheet, self.name)
            at = find_row(rows, lambda r: any(re.match(code_header, cell_text(v)) for v in r), payload, sheet,
                          self.name, f"a header row with a column headed {code_header!r}")
            cols = find_columns([rows[at]], {"code": code_header, **VALUE_HEADERS}, payload, sheet, self.name)
            data = [r for r in rows[at + 1:] if GSS_CODE.match(str(r[cols["code"]]).strip())]
            df = pd.DataFrame({key: [as_text(r[j]) for r in data] for key, j in cols.items()})
            df.attrs["lsoa"] = sheet == "Table 3"
            yield df, year


def _title_year(rows: list[list], payload: Payload, sheet: str, source: str) -> int:
    title = str(rows[0][0]).strip() if rows and rows[0] else ""
    m = re.search(r",\s*(20\d\d)$", title)
    if not m:
        raise SourceFormatError(f"{source}: {payload.meta.get('filename', payload.location)}, sheet {sheet!r}: expected "
                                f"a title ending with the data year in cell A1 (', 2021'); found {title[:120]!r}")
    return int(m.group(1))
