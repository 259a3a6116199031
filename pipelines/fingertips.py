"""OHID Fingertips: the health outcomes and many wider determinants, by English area.

Live: `all_data/csv/by_indicator_id` (at most 100 ids a call, one call per Fingertips area type named in the
indicator's catalog area_types, England as parent so every call also carries the England rows) and
`indicator_metadata/csv/by_indicator_id` (definitions and `Data source`, archived with the run; an indicator
Fingertips no longer describes, or whose definition changed, is logged as a warning). The calls overlap
(unitaries are both lower and upper tier, England comes with every call), so each call contributes only its own
areas and England comes from the indicator's first call.

Rows for areas the tracker does not hold (PHE centres, combined authorities, ONS area groups) are left out and
counted in the run report (problems/skipped); old local authority codes are kept for the shared harmonisation.

Offline: the bundled snapshot holds two formats, both real Fingertips data:
  * raw Fingertips CSV exports (27 columns, or the older 26-column layout), named per indicator in the
    catalog's `options.snapshot`;
  * tidy extracts that Trafford Data Lab made from the Fingertips API (area_code, period, value and the sex in
    `inequality`, `unit` or `group`), also named in `options.snapshot`.

Catalog `options` understood here:
  snapshot: [paths under the snapshot folder]   offline files for this indicator
  live_only: true                                no bundled data; offline mode expects none
  age: "19+ yrs"                                 the headline age band; rows for other bands become
                                                 category_type "Age band" so blank category stays headline
  year_start_month: 9                            month a split year ("2012/13") starts; default 4 (April)
  icb_area_type_id: 221                          also fetch ICBs with this Fingertips area type id. Off by
                                                 default: the ICB area type id is unverified (221 is
                                                 described both as ICB and as sub-ICB)
"""

from __future__ import annotations

import calendar
import csv
import html
import io
import logging
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceError, SourceFormatError, empty_tidy, snapshot_payload, tidy, with_skipped,
)
from tracker.catalog import IndicatorSpec
from tracker.config import setting

log = logging.getLogger("tracker.fingertips")

# The data CSV header (SOURCES-API 1.2). Column 23 (index 22) is named after the parent area type, so it is
# matched by pattern; "Time period range" (index 26) was added about 2022 and is absent from older exports.
HEADER = (
    "Indicator ID", "Indicator Name", "Parent Code", "Parent Name", "Area Code", "Area Name", "Area Type", "Sex",
    "Age", "Category Type", "Category", "Time period", "Value", "Lower CI 95.0 limit", "Upper CI 95.0 limit",
    "Lower CI 99.8 limit", "Upper CI 99.8 limit", "Count", "Denominator", "Value note", "Recent Trend",
    "Compared to England value or percentiles", "Compared to <parent> value or percentiles", "Time period Sortable",
    "New data", "Compared to goal", "Time period range",
)
PARENT_COLUMN = re.compile(r"^(Compared to (?!England|goal).*|Column not used)$")
TIDY_FROM_RAW = {
    "Value": "value", "Lower CI 95.0 limit": "lci95", "Upper CI 95.0 limit": "uci95",
    "Lower CI 99.8 limit": "lci998", "Upper CI 99.8 limit": "uci998", "Count": "count", "Denominator": "denominator",
}
# England, regions, local authorities (current and former codes) and ICBs: the areas the tracker holds.
# Aggregates it does not hold (PHE centres E45, combined authorities E47, ONS area groups) are left out, counted.
TRACKER_AREA = re.compile(r"^E(92|12|06|07|08|09|10|54)\d{6}$")
OTHER_AREAS = "areas the tracker does not hold (PHE centres, combined authorities, ONS area groups)"
SEXES = {"Male", "Female", "Persons"}
LIVE_AREA_TYPES = {"ltla": 501, "utla": 502, "region": 6}
ENGLAND_AREA_TYPE = 15
ENGLAND = "E92000001"
# The code families each live call contributes. Calls overlap (unitaries are both 501 and 502, England comes
# with every call), so each fact is taken from one call only; an ICB call (any other type id) gives E54.
CALL_AREAS = {6: ("E12",), 501: ("E06", "E07", "E08", "E09"), 502: ("E10", "E06", "E08", "E09")}
MAX_IDS = 100
# Fingertips' own comparison with England, kept as published where it is a judgement (a percentile band or
# "Not compared" is not: the tracker then compares by the CIs itself, or not at all)
JUDGEMENTS = ("Better", "Similar", "Worse", "Higher", "Lower")


def _judgement(words: pd.Series) -> pd.Series:
    words = words.str.strip()
    return words.where(words.isin(JUDGEMENTS), None)


class FingertipsSource(Source):
    name = "fingertips"
    title = "OHID Fingertips"
    producer = "Office for Health Improvement and Disparities"
    markers: dict[str, str] = {}  # Fingertips leaves a missing value blank and gives the reason in "Value note"

    # ---- live ---------------------------------------------------------------------------------------------
    def fetch(self, http, specs: list[IndicatorSpec]) -> Iterable[Payload]:
        base = setting("TRACKER_FINGERTIPS_BASE_URL").rstrip("/") + "/"
        by_area_type: dict[int, set[str]] = {}
        for spec in specs:
            for type_id in live_area_type_ids(spec):
                by_area_type.setdefault(type_id, set()).add(spec.source_id)
        for type_id, ids in sorted(by_area_type.items()):
            for chunk in _chunks(sorted(ids, key=int), MAX_IDS):
                params = {
                    "indicator_ids": ",".join(chunk),
                    "child_area_type_id": type_id,
                    "parent_area_type_id": ENGLAND_AREA_TYPE,
                }
                yield http.get(self.name, base + "all_data/csv/by_indicator_id", params, kind="data", child_area_type_id=type_id)
        all_ids = sorted({s.source_id for s in specs}, key=int)
        for chunk in _chunks(all_ids, MAX_IDS):
            yield http.get(
                self.name, base + "indicator_metadata/csv/by_indicator_id", {"indicator_ids": ",".join(chunk)},
                kind="metadata", indicator_ids=chunk,
            )

    # ---- offline ------------------------------------------------------------------------------------------
    def read_offline(self, specs: list[IndicatorSpec]) -> Iterable[Payload]:
        seen: set[str] = set()
        for spec in specs:
            files = spec.options.get("snapshot") or []
            if not files and not spec.options.get("live_only"):
                raise SourceError(
                    f"{self.title}: catalog indicator {spec.id} names no bundled file (options.snapshot) "
                    "and is not marked live_only"
                )
            for relative in files:
                if relative not in seen:
                    seen.add(relative)
                    yield snapshot_payload(relative, source_id=spec.source_id)

    # ---- parse --------------------------------------------------------------------------------------------
    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        text = _checked_text(payload.content, payload.location, self.name)
        if payload.meta.get("kind") == "metadata":
            asked = set(payload.meta.get("indicator_ids") or [])
            for note in metadata_findings(read_fingertips_metadata(text, payload.location), [s for s in specs if s.source_id in asked]):
                log.warning("%s: %s", self.name, note)
            return empty_tidy()
        if text.startswith("area_code,"):  # a bundled tidy extract of one indicator
            targets = [s for s in specs if s.source_id == str(payload.meta.get("source_id"))]
            if not targets:
                return empty_tidy()
            return _parse_trafford(_read_trafford(text, payload.location, self.name), targets)
        return _parse_raw(_read_raw(text, payload.location, self.name), specs, payload.meta.get("child_area_type_id"))


def live_area_type_ids(spec: IndicatorSpec) -> list[int]:
    """Fingertips area types to ask for: one per catalog area type (England rows come with each call)."""
    ids = [LIVE_AREA_TYPES[a] for a in spec.area_types if a in LIVE_AREA_TYPES]
    if spec.options.get("icb_area_type_id"):
        ids.append(int(spec.options["icb_area_type_id"]))
    return ids


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---- reading the raw CSV --------------------------------------------------------------------------------------

def _checked_text(content: bytes, location: str, source: str) -> str:
    """Decoded text, refusing an HTML page, an empty body or a file cut short (Fingertips ends every
    file with a line break)."""
    text = Payload(location, content).text()
    head = text.lstrip()[:300].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head:
        raise SourceFormatError(
            f"{source}: {location} returned an HTML page instead of CSV (the service may be down or the "
            f"address may have changed): {text.strip()[:80]!r}"
        )
    if not text.strip():
        raise SourceFormatError(f"{source}: {location} is empty")
    if not text.endswith(("\n", "\r")):
        raise SourceFormatError(f"{source}: {location} looks truncated: it does not end with a line break")
    return text


def _read_raw(text: str, location: str, source: str) -> pd.DataFrame:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip() for h in rows[0]]
    legacy = len(header) == 26
    expected = list(HEADER[:26] if legacy else HEADER)
    problems = [
        want for i, want in enumerate(expected)
        if i >= len(header) or not (PARENT_COLUMN.match(header[i]) if i == 22 else header[i] == want)
    ]
    if problems or len(header) not in (26, 27):
        raise SourceFormatError(
            f"{source}: {location} is not in the Fingertips CSV layout: missing or renamed column(s) "
            f"{', '.join(problems) or '(extra columns)'}; expected {', '.join(HEADER)}; found {', '.join(header)}"
        )
    body = [r for r in rows[1:] if r]
    width = len(header)
    for i, r in enumerate(body):
        if len(r) == width:
            continue
        if legacy and len(r) == width - 1:  # older exports leave out the last field ("Compared to goal")
            r.append("")
            continue
        raise SourceFormatError(
            f"{source}: {location} looks truncated or malformed: record {i + 2} has {len(r)} fields, "
            f"the header has {width}"
        )
    return pd.DataFrame(body, columns=header, dtype=object)


def read_fingertips_csv(path_or_bytes: str | Path | bytes) -> pd.DataFrame:
    """A Fingertips data CSV (27 columns, or the older 26) as text columns named as published: gzip, BOM,
    quoted commas and newlines handled; the format is checked as in a refresh."""
    content = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    location = "bytes" if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return _read_raw(_checked_text(content, location, "fingertips"), location, "fingertips")


def _from_this_call(codes: pd.Series, spec: IndicatorSpec, call: int | None) -> pd.Series:
    """Rows this live call is the one to provide (all rows of a bundled file)."""
    if call is None:
        return pd.Series(True, index=codes.index)
    calls = sorted(live_area_type_ids(spec))
    families = CALL_AREAS.get(call, ("E54",))
    if call == 502 and 501 in calls:
        families = ("E10",)
    return codes.str.startswith(families) | ((codes == ENGLAND) & (call == calls[0]))


def _parse_raw(frame: pd.DataFrame, specs: list[IndicatorSpec], call: int | None = None) -> pd.DataFrame:
    out = []
    skipped = 0
    codes = frame["Area Code"].str.strip()
    held = codes.str.match(TRACKER_AREA)
    for spec in specs:
        mine = frame["Indicator ID"].str.strip() == spec.source_id
        skipped += int((mine & ~held).sum())
        rows = frame[mine & held & _from_this_call(codes, spec, call)]
        if rows.empty:
            continue
        t = pd.DataFrame({"indicator_id": spec.id, "area_code": rows["Area Code"].str.strip(), "period": rows["Time period"].str.strip()})
        for raw_col, col in TIDY_FROM_RAW.items():
            values = rows[raw_col].str.strip()
            # the export writes Fingertips' internal "-1 = no value" for some CIs and counts of blank values
            t[col] = values if col == "value" else values.where(values != "-1", "")
        t["note"] = rows["Value note"].str.strip().replace("", None)
        # England against itself is no judgement (the export also says "Similar" on its England-parent copy)
        t["published_comparison"] = _judgement(rows["Compared to England value or percentiles"]).where(
            t["area_code"] != ENGLAND, None)
        t["sex"] = rows["Sex"].str.strip().replace("Not applicable", "Persons")  # e.g. household measures
        t["age"] = rows["Age"].str.strip()
        t["category_type"] = rows["Category Type"].str.strip()
        t["category"] = rows["Category"].str.strip()
        t = _age_bands_as_categories(t, spec)
        ranges = rows["Time period range"] if "Time period range" in rows else pd.Series("", index=rows.index)
        _add_dates(t, spec, rows["Time period Sortable"], ranges)
        out.append(tidy(t))
    if not out:
        return with_skipped(empty_tidy(), {OTHER_AREAS: skipped})
    # England comes twice when England is the parent (blank parent, and parent E92000001): same facts
    return with_skipped(pd.concat(out, ignore_index=True).drop_duplicates(ignore_index=True), {OTHER_AREAS: skipped})


def _age_bands_as_categories(t: pd.DataFrame, spec: IndicatorSpec) -> pd.DataFrame:
    headline_age = spec.options.get("age")
    if not headline_age:
        return t
    band = (t["age"] != headline_age) & (t["category_type"] == "")
    t.loc[band, "category_type"] = "Age band"
    t.loc[band, "category"] = t.loc[band, "age"]
    return t


# ---- the tidy (Trafford Data Lab) extracts --------------------------------------------------------------------

def _read_trafford(text: str, location: str, source: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    sex_columns = {"inequality", "unit", "group"} & set(frame.columns)
    missing = [c for c in ("area_code", "period", "value") if c not in frame.columns]
    if missing or not sex_columns:
        raise SourceFormatError(
            f"{source}: {location} is missing column(s) {', '.join(missing + ([] if sex_columns else ['inequality/unit/group']))}; "
            f"expected area_code, period, value and the sex in inequality, unit or group; found {', '.join(frame.columns)}"
        )
    return frame


def _parse_trafford(frame: pd.DataFrame, specs: list[IndicatorSpec]) -> pd.DataFrame:
    held = frame["area_code"].str.strip().str.match(TRACKER_AREA)
    rows = frame[held]
    sex = pd.Series("Persons", index=rows.index)
    for col in ("unit", "group", "inequality"):  # LE: inequality; 93721: unit; old dashboard files: group
        if col in rows:
            sex = rows[col].str.strip().where(rows[col].str.strip().isin(SEXES), sex)
    value = rows["value"].str.strip()
    base = pd.DataFrame(
        {
            "area_code": rows["area_code"].str.strip(),
            # "2009-11" in the older files; Fingertips writes "2009 - 11"
            "period": rows["period"].str.strip().str.replace(r"^(\d{4})\s*-\s*(\d{2})$", r"\1 - \2", regex=True),
            "value": value.where(value != "NA", ""),
            "sex": sex,
        }
    )
    # the extract's comparison with England: "compared_to_England" (newer files) or "significance" (older ones)
    judged = next((c for c in ("compared_to_England", "significance") if c in rows), None)
    if judged:
        base["published_comparison"] = _judgement(rows[judged])
    out = []
    for spec in specs:
        t = base.assign(indicator_id=spec.id)
        _add_dates(t, spec)
        out.append(tidy(t))
    return with_skipped(pd.concat(out, ignore_index=True), {OTHER_AREAS: int((~held).sum()) * len(specs)})


# ---- periods ------------------------------------------------------------------------------------------------

def _add_dates(t: pd.DataFrame, spec: IndicatorSpec, sortable: pd.Series | None = None, ranges: pd.Series | None = None) -> None:
    start_month = int(spec.options.get("year_start_month", 4))
    keys = pd.DataFrame({"p": t["period"]})
    keys["s"] = sortable.str.strip() if sortable is not None else ""
    keys["r"] = ranges.str.strip() if ranges is not None else ""
    unique = {k: period_dates(*k, split_year_start_month=start_month) for k in set(map(tuple, keys.to_numpy()))}
    pairs = [unique[tuple(k)] for k in keys.to_numpy()]
    t["period_start"] = [p[0] for p in pairs]
    t["period_end"] = [p[1] for p in pairs]


def _year(two_digits: str, after: int) -> int:
    """The four-digit year a two-digit end year means, given the start year ("2099 - 01" is 2101)."""
    year = after - after % 100 + int(two_digits)
    return year + 100 if year < after else year


def _split_year(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year + 1, month, 1) - timedelta(days=1)


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + d.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


def period_dates(label: str, sortable: str = "", span: str = "", split_year_start_month: int = 4) -> tuple[date, date]:
    """First and last day of a Fingertips time period label: "2022", "2021 - 23", "2023/24",
    "2020/21 - 22/23", "2023 Q4", "2023/24 Q1", "Jan 2023". Split years ("2023/24") start in April unless the
    indicator says otherwise (academic years in September, Active Lives in November). Other labels fall back
    to "Time period Sortable" (YYYY....) and "Time period range" (e.g. 3y)."""
    m = split_year_start_month
    text = re.sub(r"\s+", " ", label.strip())
    if found := re.fullmatch(r"(\d{4})", text):
        y = int(found[1])
        return date(y, 1, 1), date(y, 12, 31)
    if found := re.fullmatch(r"(\d{4}) ?- ?(\d{2}|\d{4})", text):
        y = int(found[1])
        end = int(found[2]) if len(found[2]) == 4 else _year(found[2], y)
        return date(y, 1, 1), date(end, 12, 31)
    if found := re.fullmatch(r"(\d{4})/(\d{2})", text):
        return _split_year(int(found[1]), m)
    if found := re.fullmatch(r"(\d{4})/(\d{2}) ?- ?(\d{2})/(\d{2})", text):
        y = int(found[1])
        return _split_year(y, m)[0], _split_year(_year(found[3], y), m)[1]
    if found := re.fullmatch(r"(\d{4}) Q([1-4])", text):
        start = date(int(found[1]), 3 * int(found[2]) - 2, 1)
        return start, _add_months(start, 3) - timedelta(days=1)
    if found := re.fullmatch(r"(\d{4})/(\d{2}) Q([1-4])", text):
        start = _add_months(date(int(found[1]), m, 1), 3 * (int(found[3]) - 1))
        return start, _add_months(start, 3) - timedelta(days=1)
    if found := re.fullmatch(r"([A-Za-z]{3})[a-z]* (\d{4})|(\d{4}) ([A-Za-z]{3})[a-z]*", text):
        name, year = (found[1], found[2]) if found[1] else (found[4], found[3])
        if name.lower() in MONTHS:
            start = date(int(year), MONTHS[name.lower()], 1)
            return start, _add_months(start, 1) - timedelta(days=1)
    if (s := re.fullmatch(r"(\d{4})\d{4}", sortable or "")) and (n := re.fullmatch(r"(\d+)y", span or "")):
        y = int(s[1])
        return date(y, 1, 1), date(y + int(n[1]) - 1, 12, 31)
    raise SourceFormatError(f"fingertips: time period {label!r} is not a format the tracker knows (sortable {sortable!r}, range {span!r})")


# ---- metadata -----------------------------------------------------------------------------------------------

def _clean_html(text: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text or ""))).strip()


def read_fingertips_metadata(text: str, location: str = "metadata") -> pd.DataFrame:
    """indicator_metadata/csv: one row per indicator with indicator_id, name, definition and data_source
    (HTML entities and tags removed). Parsed by header name; other columns are ignored."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    if "Indicator ID" not in frame.columns:
        raise SourceFormatError(
            f"fingertips: {location} is not Fingertips indicator metadata: no 'Indicator ID' column; found {', '.join(frame.columns[:10])}"
        )
    pick = {"indicator_id": "Indicator ID", "name": "Indicator", "definition": "Definition", "data_source": "Data source"}
    return pd.DataFrame(
        {k: frame[v].map(_clean_html) if v in frame.columns else "" for k, v in pick.items()}
    )


def metadata_findings(metadata: pd.DataFrame, specs: list[IndicatorSpec]) -> list[str]:
    """Where the catalog and Fingertips' own metadata disagree: an indicator Fingertips no longer describes,
    or a definition that no longer starts as the catalog's does."""
    found = {r.indicator_id: r for r in metadata.itertuples(index=False)}
    notes = []
    for spec in specs:
        row = found.get(spec.source_id)
        if row is None:
            notes.append(f"{spec.id}: Fingertips returned no metadata for indicator {spec.source_id} (retired or renamed?)")
            continue
        mine, theirs = _words(spec.definition), _words(row.definition)
        if theirs and mine[:8] != theirs[:8]:
            notes.append(f"{spec.id}: Fingertips' definition of {spec.source_id} differs from the catalog's: {row.definition[:160]!r}")
    return notes


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _clean_html(text).lower())
