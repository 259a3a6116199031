"""MHCLG sources: the English Indices of Deprivation (IoD2019, IoD2025) and statutory homelessness (H-CLIC).

Deprivation: IoD2025 File 7 (scores, ranks and deciles per LSOA 2021) as LSOA observations; the official local
authority summaries (File 10, lower tier) for IoD2025 (LAD 2024) and IoD2019 (LAD 2019) as district indicators.

Homelessness: households owed a prevention or relief duty (table A1) and households in temporary accommodation
(table TA1) per housing authority and quarter, with the rates recomputed from the counts and MHCLG's household
estimates (SOURCES.md section 13 advises this: some published rates do not match their counts)."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceError, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from pipelines.discovery import Attachment, govuk_attachments, govuk_page_released, pick
from pipelines.spreadsheet import as_text, cell_text, find_columns, find_row, open_workbook, sheet_rows
from tracker.catalog import IndicatorSpec
from tracker.config import GEOGRAPHY_DIR, setting

# ---------------------------------------------------------------------------------------------------------------
# Deprivation

IMD_LSOA_FILE = "imd/imd2025_lsoa21_scores_ranks_deciles.csv.gz"
IOD2025_LAD_FILE = "imd/iod2025_lad24_summaries.csv"
IOD2019_LAD_FILE = "imd/iod2019_lad19_summaries.csv"
IOD2019_LAD23_FILE = "imd/imd2019_lad23_summaries_humaniverse.csv"

DECILE_NOTE = "(where 1 is most deprived 10% of LSOAs)"

# domain key (used in source_id) -> how each file names it:
# (bundled LSOA prefix, File 7 prefix, File 10 2025 name, File 10 2019 name, humaniverse prefix)
IOD_DOMAINS: dict[str, tuple[str, str, str, str, str]] = {
    "imd": ("IMD", "Index of Multiple Deprivation (IMD)", "Index of Multiple Deprivation",
            "Index of Multiple Deprivation", ""),
    "income": ("Income", "Income", "Income Deprivation", "Income", "Income_"),
    "employment": ("Employment", "Employment", "Employment Deprivation", "Employment", "Employment_"),
    "education": ("Education", "Education, Skills and Training", "Education, Skills and Training Deprivation",
                  "Education, Skills and Training", "Education_"),
    "health": ("Health", "Health Deprivation and Disability", "Health Deprivation and Disability",
               "Health and Disability", "Health_"),
    "crime": ("Crime", "Crime", "Crime", "Crime", "Crime_"),
    "barriers": ("Housing_and_Services", "Barriers to Housing and Services", "Barriers to Housing and Services",
                 "Barriers to Housing and Services", "Housing_and_Access_"),
    "environment": ("Environment", "Living Environment", "Living Environment Deprivation", "Living Environment",
                    "Environment_"),
}
# Income and Employment scores are rates, so File 7 labels them "Score (rate)".
RATE_SCORES = {"income", "employment"}

# Period label -> (start, end): the year of publication (IoD2019: 26 Sep 2019; IoD2025: 30 Oct 2025). Most inputs
# are older (IoD2019 mostly 2015/16, IoD2025 mostly 2022/23): the catalog caveats say so.
IOD_PERIODS = {"IoD2019": (date(2019, 1, 1), date(2019, 12, 31)), "IoD2025": (date(2025, 1, 1), date(2025, 12, 31))}


# Live File 10: on the IoD2025 page, the attachment named "File_10 ... District_Summaries ... lower-tier" (the last
# listed wins if there are several, e.g. a reissued v2), one sheet per domain.
IOD2025_PAGE = "government/statistics/english-indices-of-deprivation-2025"
FILE10_RULE = re.compile(r"File[ _]10\b.*District[ _]Summaries.*lower[ _-]tier", re.IGNORECASE)
FILE10_RULE_TEXT = "'File_10_-_IoD2025_Local_Authority_District_Summaries__lower-tier_' (.xlsx)"
FILE10_SHEETS = {"imd": "IMD", "income": "Income", "employment": "Employment", "education": "Education",
                 "health": "Health", "crime": "Crime", "barriers": "Barriers", "environment": "Living"}
FILE10_COLUMNS = {  # header cells, lowercased (see pipelines.spreadsheet.cell_text)
    "area_code": r"local authority district code \(20\d\d\)",
    "average_rank": r"(.+ - )?average rank$",
    "average_score": r"(.+ - )?average score$",
    "proportion_bottom_decile": r"(.+ - )?proportion of lsoas in most deprived 10% nationally$",
}


def _split_source_id(spec: IndicatorSpec) -> tuple[str, str, str]:
    """'lsoa:imd:decile' -> ('lsoa', 'imd', 'decile'); 'lad:crime:average_score' -> ('lad', 'crime', ...)."""
    parts = spec.source_id.split(":")
    if len(parts) != 3 or parts[0] not in ("lsoa", "lad") or parts[1] not in IOD_DOMAINS:
        raise SourceError(f"mhclg_deprivation: catalog entry {spec.id} has source_id {spec.source_id!r}; "
                          f"expected lsoa|lad:<{'|'.join(IOD_DOMAINS)}>:<measure>")
    return parts[0], parts[1], parts[2]


def numeric(values: pd.Series, source: str, location: str) -> pd.Series:
    """Text column -> numbers; blank is missing. Counts are summed or averaged in the parser, so anything else
    (an unknown marker) stops the run with the column and value rather than being guessed at."""
    numbers = pd.to_numeric(values.replace("", None), errors="coerce")
    bad = numbers.isna() & values.fillna("").ne("")
    if bad.any():
        raise SourceFormatError(f"{source}: {location} has a non-numeric {values.name} value {values[bad].iloc[0]!r}")
    return numbers


@lru_cache(maxsize=None)
def _lad_history() -> pd.DataFrame:
    return pd.read_csv(GEOGRAPHY_DIR / "lad_code_history_2016_2024.csv", dtype=str)


def changed_since(year: int) -> tuple[set[str], set[str]]:
    """District codes of `year` (20YY) whose area is not the same in 2024, and the 2024 codes they went into."""
    hist = _lad_history()
    hist = hist[hist["ltla24_code"].str.startswith("E")]
    old = hist[f"ltla{year % 100}_code"]
    moved = old != hist["ltla24_code"]
    return set(old[moved]), set(hist.loc[moved, "ltla24_code"])


def successor_map() -> dict[str, str]:
    """Every English district code used 2016-2024 -> the 2024 district it lies in (districts only merge)."""
    hist = _lad_history()
    hist = hist[hist["ltla24_code"].str.startswith("E")]
    out: dict[str, str] = {}
    for yy in range(16, 25):
        out.update(zip(hist[f"ltla{yy}_code"], hist["ltla24_code"]))
    return out


def combine_merged_districts(frame: pd.DataFrame, sums: list[str], keys: list[str]) -> pd.DataFrame:
    """Rows of districts that later merged (e.g. Allerdale, Carlisle and Copeland -> Cumberland) summed into the
    current district for each period, so count-based series run back before the merger. A combined row is left
    blank when any former district's figure is blank (summing the others would undercount). Districts that did
    not merge keep their published code (recodes are harmonised centrally)."""
    frame = frame.copy()
    frame["_current"] = frame["area_code"].map(successor_map()).fillna(frame["area_code"])
    group = keys + ["_current"]
    size = frame.groupby(group)["area_code"].transform("size")
    single = frame[size == 1].drop(columns="_current")
    multi = frame[size > 1].sort_values("area_code")
    if multi.empty:
        return single
    grouped = multi.groupby(group, sort=False)
    agg = grouped[sums].sum()
    complete = grouped[sums].count().eq(grouped.size(), axis=0).all(axis=1)
    agg.loc[~complete, sums] = float("nan")
    codes = grouped["area_code"].agg(", ".join)
    blank = multi[multi[sums].isna().any(axis=1)].groupby(group, sort=False)["area_code"].agg(", ".join)
    blank = blank.reindex(agg.index)
    agg["note"] = [
        f"sum of former districts {c}" + (f"; not published for {b}, so left blank" if isinstance(b, str) else "")
        for c, b in zip(codes, blank)
    ]
    agg = agg.reset_index().rename(columns={"_current": "area_code"})
    return pd.concat([single, agg], ignore_index=True)


class DeprivationSource(Source):
    """English Indices of Deprivation (MHCLG).

    Live mode downloads IoD2025 File 7, which MHCLG publishes as a CSV (all ranks, scores, deciles and population
    denominators per LSOA 2021; official long column names), from TRACKER_MHCLG_DEPRIVATION_URL. The local
    authority summaries (File 10, an xlsx workbook; MHCLG reissued it as "..._v2.xlsx") are found on the IoD2025
    page through the GOV.UK Content API (FILE10_RULE), one sheet per domain (IMD, Income, ... Living), header row
    with "Local Authority District code (2024)" and "<domain> - Average score" etc. (FILE10_COLUMNS). The IoD2019
    summaries are not republished: a live run loads them from the bundled copies, as offline.

    IoD2019 summaries: the official File 10 on 2019 districts. Districts merged since 2019 (Buckinghamshire,
    Northamptonshire, Cumbria, North Yorkshire, Somerset) have no official summary on today's boundaries; for those
    seven current areas the humaniverse/IMD recomputation from the official LSOA data (File 7) is used instead of
    the retired districts' rows, and the note says so."""

    name = "mhclg_deprivation"
    title = "MHCLG English Indices of Deprivation"
    producer = "Ministry of Housing, Communities and Local Government"
    def url(self) -> str:
        return setting("TRACKER_MHCLG_DEPRIVATION_URL")

    def fetch(self, http, specs: list[IndicatorSpec]):
        levels = {_split_source_id(s)[0] for s in specs}
        if "lsoa" in levels:
            yield http.get(self.name, self.url(), kind="lsoa")
        if "lad" in levels:
            page, attachments = govuk_attachments(http, self.name, IOD2025_PAGE)
            att, _ = pick(attachments, FILE10_RULE, self.name, page.location, FILE10_RULE_TEXT)[-1]
            yield http.get(self.name, att.url, kind="file10", filename=att.filename, title=att.title,
                           released=govuk_page_released(page))
            yield snapshot_payload(IOD2019_LAD_FILE)
            yield snapshot_payload(IOD2019_LAD23_FILE)

    def read_offline(self, specs: list[IndicatorSpec]):
        levels = {_split_source_id(s)[0] for s in specs}
        if "lsoa" in levels:
            yield snapshot_payload(IMD_LSOA_FILE)
        if "lad" in levels:
            yield snapshot_payload(IOD2025_LAD_FILE)
            yield snapshot_payload(IOD2019_LAD_FILE)
            yield snapshot_payload(IOD2019_LAD23_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("kind") == "file10":
            return self._parse_file10(self._read_file10(payload, specs), specs, "IoD2025", "area_code", 2)
        header = payload.text().lstrip("\ufeff").split("\n", 1)[0]
        # a live payload is always File 7, so a page that is not CSV fails there with the reason
        if payload.meta.get("kind") == "lsoa" or "lsoa21_code" in header or "LSOA code (2021)" in header:
            return self._parse_lsoa(payload, specs, official="LSOA code (2021)" in header)
        if "lad19cd" in header:
            return self._parse_file10(payload, specs, "IoD2019", "lad19cd", 3)
        if "ltla23_code" in header:
            return self._parse_lad23(payload, specs)
        if "index_domain" in header:
            return self._parse_file10(payload, specs, "IoD2025", "area_code", 2)
        raise SourceFormatError(
            f"{self.name}: {payload.location} is not an IoD file the tracker reads (expected the LSOA file with "
            f"lsoa21_code or 'LSOA code (2021)', or a File 10 summary); found header {header[:200]!r}"
        )

    def _frame(self, rows: list[pd.DataFrame], period: str) -> pd.DataFrame:
        if not rows:
            return empty_tidy()
        start, end = IOD_PERIODS[period]
        return tidy(pd.concat(rows, ignore_index=True), period=period, period_start=start, period_end=end)

    def _parse_lsoa(self, payload: Payload, specs: list[IndicatorSpec], official: bool) -> pd.DataFrame:
        """The bundled file (humaniverse short names) or MHCLG's own File 7 (long names)."""
        wanted = [(s, *_split_source_id(s)[1:]) for s in specs if _split_source_id(s)[0] == "lsoa"]
        columns = {}
        for spec, domain, measure in wanted:
            short, long, *_ = IOD_DOMAINS[domain]
            if measure not in ("decile", "score", "rank"):
                raise SourceError(f"{self.name}: {spec.id}: unknown LSOA measure {measure!r} (decile, score or rank)")
            if not official:
                columns[spec.id] = f"{short}_{measure}"
            elif measure == "score":
                columns[spec.id] = f"{long} Score (rate)" if domain in RATE_SCORES else f"{long} Score"
            elif measure == "rank":
                columns[spec.id] = f"{long} Rank (where 1 is most deprived)"
            else:
                columns[spec.id] = f"{long} Decile {DECILE_NOTE}"
        code = "LSOA code (2021)" if official else "lsoa21_code"
        df = read_csv_strict(payload, [code, *dict.fromkeys(columns.values())], self.name)
        rows = [pd.DataFrame({"indicator_id": ind, "area_code": df[code], "value": df[col]}) for ind, col in columns.items()]
        return self._frame(rows, "IoD2025")

    def _read_file10(self, payload: Payload, specs) -> pd.DataFrame:
        """The workbook's domain sheets -> the bundled long CSV's columns (area_code, index_domain, measures)."""
        book = open_workbook(payload, self.name)
        domains = sorted({_split_source_id(s)[1] for s in specs if _split_source_id(s)[0] == "lad"})
        parts = []
        for domain in domains:
            sheet = FILE10_SHEETS[domain]
            rows = sheet_rows(book, payload, sheet, self.name)
            at = find_row(rows, lambda r: any(re.match(FILE10_COLUMNS["area_code"], cell_text(v)) for v in r),
                          payload, sheet, self.name, "a header row with 'Local Authority District code (2024)'")
            cols = find_columns([rows[at]], FILE10_COLUMNS, payload, sheet, self.name)
            data = [r for r in rows[at + 1:] if GSS_CODE.match(str(r[cols["area_code"]]).strip())]
            part = pd.DataFrame({key: [as_text(r[j]) for r in data] for key, j in cols.items()})
            parts.append(part.assign(index_domain=IOD_DOMAINS[domain][2]))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*FILE10_COLUMNS, "index_domain"])

    def _parse_file10(self, payload: Payload | pd.DataFrame, specs, period: str, code: str, name_col: int) -> pd.DataFrame:
        measures = {"average_score", "proportion_bottom_decile", "average_rank"}
        wanted = [(s, *_split_source_id(s)[1:]) for s in specs if _split_source_id(s)[0] == "lad"]
        for spec, _, measure in wanted:
            if measure not in measures:
                raise SourceError(f"{self.name}: {spec.id}: unknown summary measure {measure!r} ({', '.join(sorted(measures))})")
        if isinstance(payload, pd.DataFrame):  # read from the workbook
            df = payload
        else:
            df = read_csv_strict(payload, [code, "index_domain", *sorted(measures)], self.name)
        dropped: set[str] = set()
        if period == "IoD2019":
            # retired districts: their successors come from the LAD 2023 recomputation (see class docstring)
            dropped, _ = changed_since(2019)
        df = df[~df[code].isin(dropped)]
        rows = []
        for spec, domain, measure in wanted:
            part = df[df["index_domain"] == IOD_DOMAINS[domain][name_col]]
            if part.empty:
                raise SourceFormatError(f"{self.name}: {payload.location} has no rows for index_domain "
                                        f"{IOD_DOMAINS[domain][name_col]!r}; found {', '.join(df['index_domain'].unique())}")
            rows.append(pd.DataFrame({"indicator_id": spec.id, "area_code": part[code], "value": part[measure]}))
        return self._frame(rows, period)

    def _parse_lad23(self, payload: Payload, specs) -> pd.DataFrame:
        names = {"average_score": "Score", "proportion_bottom_decile": "Proportion"}
        wanted = [(s, *_split_source_id(s)[1:]) for s in specs if _split_source_id(s)[0] == "lad"]
        wanted = [(s, d, m) for s, d, m in wanted if m in names]
        columns = {s.id: f"{IOD_DOMAINS[d][4]}{names[m]}" for s, d, m in wanted}
        df = read_csv_strict(payload, ["ltla23_code", *columns.values()], self.name)
        _, merged = changed_since(2019)
        df = df[df["ltla23_code"].isin(merged)]
        note = ("IoD2019 recomputed for this authority's 2023 boundary by humaniverse/IMD from MHCLG's LSOA data "
                "(File 7); MHCLG published no summary for it")
        rows = [pd.DataFrame({"indicator_id": ind, "area_code": df["ltla23_code"], "value": df[col], "note": note})
                for ind, col in columns.items()]
        return self._frame(rows, "IoD2019")


# ---------------------------------------------------------------------------------------------------------------
# Homelessness

HCLIC_FILE = "housing/mhclg_hclic_homelessness_and_ta_la_2018q2_to_2025q4.csv.gz"
HCLIC_COLUMNS = (
    "quarter_end", "area_code", "owed_prevention_or_relief_duty", "prevention_duty_owed", "relief_duty_owed",
    "a1_households_in_area_000s", "households_in_ta", "households_in_ta_with_children", "children_in_ta",
    "ta1_households_in_area_000s",
)
# Counts from table A1 (initial assessments over the quarter); the rest are TA1 (a snapshot on the last day).
A1_COUNTS = {"owed_prevention_or_relief_duty", "prevention_duty_owed", "relief_duty_owed"}
TA1_HOUSEHOLDS = "households from table TA1 (A1 gives none this quarter)"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Live: MHCLG's "Statutory homelessness: detailed local authority-level tables", one workbook per quarter, attached
# to the live tables page. The file name carries the quarter's last month and changes every release
# (DetailedLA_201806.xlsx, DetailedLA_202009_REVISED.ods, Detailed_LA_202409.xlsx,
# Statutory_Homelessness_Detailed_Local_Authority_Data_202512.ods): the rule is "detailed", then "LA" or "local
# authority", then _YYYYMM with a quarter-end month, in the file name or the title.
HCLIC_PAGE = "government/statistical-data-sets/live-tables-on-homelessness"
HCLIC_RULE = re.compile(r"detailed[ _-]?(?:la|local[ _-]authority)\w*?[ _-](20\d\d)(0[369]|12)", re.IGNORECASE)
HCLIC_RULE_TEXT = "'Detailed_LA_YYYYMM' or '..._Detailed_Local_Authority_Data_YYYYMM' (.ods/.xlsx)"
# Header cells (matched from the start, lowercased, spaces collapsed) of the columns read from tables A1 and TA1.
HCLIC_A1 = {
    "owed_prevention_or_relief_duty": r"total owed a prevention or relief duty",
    "prevention_duty_owed": r"threatened with homelessness within 56 days - prevention duty owed",
    "relief_duty_owed": r"homeless - relief duty owed",
    "a1_households_in_area_000s": r"number of households in area\d* \(000s\)",
}
HCLIC_TA1 = {
    "households_in_ta": r"total number of households in ta[\d,]*$",
    "households_in_ta_with_children": r"total number of households in ta with children",
    "children_in_ta": r"total number of children in ta",
    "ta1_households_in_area_000s": r"number of households in area\d* \(000s\)",
}
HCLIC_MARKERS = {"..", "[x]", "[c]", "[z]", "[low]"}  # suppressed or not applicable: blank, as in the bundled file
GSS_CODE = re.compile(r"^E\d{8}$")
TITLE_QUARTER = re.compile(r"(January|February|March|April|May|June|July|August|September|October|November|December)"
                           r"\s+(20\d\d)\s*$", re.IGNORECASE)


class HomelessnessSource(Source):
    """MHCLG statutory homelessness (H-CLIC) detailed local authority tables A1 and TA1, 2018 Q2 onwards.

    Offline: the bundled CSV holds the key columns extracted from every quarterly workbook 2018 Q2 - 2025 Q4.
    Live: the live tables page is read through the GOV.UK Content API and every detailed local authority workbook
    (ods or xlsx, picked by HCLIC_RULE) for a quarter after the bundled history is downloaded, and always the
    newest; tables A1 and TA1 are read from it (columns found by their header text, HCLIC_A1/HCLIC_TA1). MHCLG
    publishes one workbook per quarter and the page keeps only recent ones, so the earlier quarters come from the
    bundled history (a quarter a workbook provides replaces the bundled one). A workbook whose layout changed
    (sheet renamed, header moved or renamed) fails the run with the file, sheet and header expected.
    The single-quarter file housing/dluhc_homelessness_and_temporary_accommodation_rates_lad23_2023q4.csv is not
    read: it is the published 2023 Q4 rates of the same two tables, which this file holds with their counts.

    Catalog `source_id` is the count column; a rate indicator sets options.per_1000_households: true and gets
    value = count / households x 1,000 with count and denominator (households) kept for confidence intervals.
    Districts that merged (2019-2023) are summed into today's authority for the quarters before the merger."""

    name = "mhclg_homelessness"
    title = "MHCLG statutory homelessness (H-CLIC)"
    producer = "Ministry of Housing, Communities and Local Government"
    publisher_url = "https://www.gov.uk/" + HCLIC_PAGE

    def fetch(self, http, specs: list[IndicatorSpec]):
        page, attachments = govuk_attachments(http, self.name, HCLIC_PAGE)
        by_quarter: dict[str, Attachment] = {}
        for att, m in pick(attachments, HCLIC_RULE, self.name, page.location, HCLIC_RULE_TEXT):
            quarter = f"{m.group(1)}-{m.group(2)}"
            # two files for one quarter: a corrected one (REVISED, fix) wins, else the first listed
            if quarter not in by_quarter or re.search(r"revised|fix|correct", att.filename, re.IGNORECASE):
                by_quarter[quarter] = att
        history = snapshot_payload(HCLIC_FILE)
        bundled_to = max(read_csv_strict(history, ["quarter_end"], self.name)["quarter_end"])
        newest = max(by_quarter)
        wanted = sorted(q for q in by_quarter if q > bundled_to or q == newest)
        for quarter in wanted:
            att = by_quarter[quarter]
            released = govuk_page_released(page) if quarter == newest else None  # the page's update: the newest file
            yield http.get(self.name, att.url, kind="workbook", quarter_end=quarter, filename=att.filename,
                           title=att.title, released=released)
        history.meta = {"kind": "history", "replaced_quarters": wanted}
        yield history

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(HCLIC_FILE)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("kind") == "workbook":
            df = self._read_workbook(payload)
        else:
            df = read_csv_strict(payload, HCLIC_COLUMNS, self.name)
            replaced = payload.meta.get("replaced_quarters") or []
            df = df[~df["quarter_end"].isin(replaced)]
        numbers = [c for c in HCLIC_COLUMNS if c not in ("quarter_end", "area_code")]
        for col in numbers:
            df[col] = numeric(df[col], self.name, payload.location)
        # A1 gives no household estimate in 2018 Q2 - 2019 Q1; TA1 of the same workbook does, and the two are the
        # same figure in every later quarter.
        df["a1_denominator_note"] = df["a1_households_in_area_000s"].isna() & df["ta1_households_in_area_000s"].notna()
        df["a1_households_in_area_000s"] = df["a1_households_in_area_000s"].fillna(df["ta1_households_in_area_000s"])
        out = []
        for spec in specs:
            if spec.source_id not in numbers or spec.source_id.endswith("_000s"):
                raise SourceError(f"{self.name}: catalog entry {spec.id} has source_id {spec.source_id!r}; expected a "
                                  f"count column of {HCLIC_FILE}")
            a1 = spec.source_id in A1_COUNTS
            households = "a1_households_in_area_000s" if a1 else "ta1_households_in_area_000s"
            part = pd.DataFrame({
                "quarter_end": df["quarter_end"], "area_code": df["area_code"], "count": df[spec.source_id],
                "denominator": df[households] * 1000, "denominator_note": df["a1_denominator_note"] & a1,
            })
            part = combine_merged_districts(part, ["count", "denominator"], ["quarter_end", "denominator_note"])
            part["indicator_id"] = spec.id
            if spec.options.get("per_1000_households"):
                part["value"] = part["count"] / part["denominator"] * 1000
                merged = part["note"] if "note" in part else pd.Series(None, index=part.index, dtype=object)
                part["note"] = [
                    "; ".join(n for n in (note, TA1_HOUSEHOLDS if flag else None) if isinstance(n, str)) or None
                    for note, flag in zip(merged, part["denominator_note"])
                ]
            else:
                part["value"] = part["count"]
                part["denominator"] = None
            part = part.assign(**_quarter_periods(part["quarter_end"], snapshot=not a1))
            out.append(part)
        if not out:
            return empty_tidy()
        frame = pd.concat(out, ignore_index=True)
        return tidy(frame.drop(columns=["quarter_end", "denominator_note"]))

    def _read_workbook(self, payload: Payload) -> pd.DataFrame:
        """Tables A1 and TA1 of one detailed LA workbook -> the bundled CSV's columns for its quarter (England,
        regions and authorities; the 'Rest of England' row has no code and is left out)."""
        book = open_workbook(payload, self.name)
        tables = {}
        quarter = None
        for sheet, wanted in (("A1", HCLIC_A1), ("TA1", HCLIC_TA1)):
            rows = sheet_rows(book, payload, sheet, self.name)
            first = find_row(rows, lambda r: r and str(r[0]).strip() == "E92000001", payload, sheet, self.name,
                             "the England row (E92000001 in column A)")
            cols = find_columns(rows[:first], wanted, payload, sheet, self.name)
            m = TITLE_QUARTER.search(str(rows[0][0]).strip() if rows and rows[0] else "")
            if not m:
                raise SourceFormatError(f"{self.name}: {payload.meta.get('filename', payload.location)}, sheet "
                                        f"{sheet!r}: expected a title ending with the quarter's month and year in "
                                        f"cell A1; found {str(rows[0][0])[:120] if rows and rows[0] else ''!r}")
            month = MONTHS.index(m.group(1)[:3].title()) + 1
            if month % 3:
                raise SourceFormatError(f"{self.name}: {payload.location}, sheet {sheet!r}: {m.group(0)!r} is not a quarter end")
            this = f"{m.group(2)}-{month:02d}"
            if quarter and this != quarter:
                raise SourceFormatError(f"{self.name}: {payload.location}: table A1 is for {quarter}, TA1 for {this}")
            quarter = this
            data = [r for r in rows[first:] if r and GSS_CODE.match(str(r[0]).strip())]
            table = pd.DataFrame({
                "area_code": [str(r[0]).strip() for r in data],
                **{key: ["" if as_text(r[j]) in HCLIC_MARKERS else as_text(r[j]) for r in data]
                   for key, j in cols.items()},
            }).drop_duplicates()  # London is listed twice (beside England and among the regions)
            twice = table["area_code"][table["area_code"].duplicated()]
            if len(twice):
                raise SourceFormatError(f"{self.name}: {payload.meta.get('filename', payload.location)}, sheet "
                                        f"{sheet!r}: area {twice.iloc[0]} has two different rows")
            tables[sheet] = table
        expected = payload.meta.get("quarter_end")
        if expected and quarter != expected:
            raise SourceFormatError(f"{self.name}: {payload.meta.get('filename', payload.location)} is named for "
                                    f"{expected} but its tables are for {quarter}")
        df = tables["A1"].merge(tables["TA1"], on="area_code", how="outer").fillna("")
        df.insert(0, "quarter_end", quarter)
        return df


def _quarter_periods(quarter_end: pd.Series, snapshot: bool) -> dict[str, pd.Series]:
    """'2023-12' -> '2023 Q4' (October to December 2023) for flows over the quarter; TA is a count on the last day
    of the quarter, so its period is that day ('31 Dec 2023')."""
    periods = {}
    for text in quarter_end.unique():
        try:
            year, month = (int(x) for x in str(text).split("-"))
            if month not in (3, 6, 9, 12):
                raise ValueError
        except ValueError as exc:
            raise SourceFormatError(f"mhclg_homelessness: quarter_end {text!r} is not a quarter end (YYYY-MM)") from exc
        end = (pd.Timestamp(year, month, 1) + pd.offsets.MonthEnd(0)).date()
        if snapshot:
            periods[text] = (f"{end.day} {MONTHS[month - 1]} {year}", end, end)
        else:
            periods[text] = (f"{year} Q{month // 3}", date(year, month - 2, 1), end)
    return {name: quarter_end.map({k: v[i] for k, v in periods.items()})
            for i, name in enumerate(("period", "period_start", "period_end"))}
