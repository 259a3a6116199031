"""Department for Education: the LAIT extract and the NCCIS NEET/participation files (offline), and the
Explore Education Statistics (EES) public API (live).

Catalog options used here:
  source_id        LAIT measure code (e.g. AVG_Attain8_Score), or for an indicator only EES publishes, its EES column.
  lait_breakdowns  {LAIT measure code: [category_type, category]}: breakdowns kept as categories.
  ees_column       the indicator's column in DfE's EES files (the NCCIS files and the EES API data sets).
  ees_column_aliases  other names the same column has had in the data set (DfE renamed KS4 and children's social
                   care columns in 2025: avg_att8 -> attainment8_average, Re_referrals_percent -> rereferral_percent);
                   the API query takes the first of ees_column and these that the data set's meta lists.
  ees_breakdowns   {EES column: [category_type, category]}.
  ees_filters      {EES filter column: option label} pinning a filter of the data set; every other filter is pinned
                   to its "Total" option, except one with a single option and those in ees_any_filters.
  ees_any_filters  filters left unpinned because they describe each row rather than split it (KS4's version:
                   each year is in one version); the parser fails if a place and period still has two rows.
  ees_dataset      EES API data set id: only entries with one are fetched live.
  ees_csv          true: fetch GET data-sets/{id}/csv instead of meta + paged POST query.
  period           "nccis_neet" (average of Dec-Feb) or "nccis_march" (end of March) for NCCIS timing.
  age              age band when the source gives one (NCCIS: 16-17).
An indicator with both a LAIT measure and an ees_column (and no ees_dataset) takes each year from the NCCIS files
when they have it and from LAIT otherwise (the two agree where both publish: checked for 2021-2025). An indicator
with an ees_dataset is never read from the NCCIS files: their avg_att8 and pt_l2basics_94 are context columns for an
earlier academic year than the file's calendar year.

A live indicator with lait_breakdowns (Attainment 8's FSM and disadvantage splits) keeps them from the bundled LAIT
extract: the live run reads the headline series from EES and the breakdowns from LAIT, since a live series replaces
the indicator's stored rows and the EES filter options that would give them could not be checked offline."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, SourceSkipped, empty_tidy, read_csv_strict, snapshot_payload,
    tidy,
)
from pipelines.http import check_page
from tracker.catalog import IndicatorSpec
from tracker.config import setting

LAIT_FILE = "education/dfe_lait_selected_indicators_utla_2016_to_2025.csv.gz"
NCCIS_FILES = {y: f"education/dfe_nccis_neet_participation_la_{y}.csv" for y in ("2021", "2022", "2023", "2025")}
LAIT_COLUMNS = ("measure_code", "year_type", "period", "area_code", "area_name", "geography", "value", "value_as_published")
EES_COLUMNS = ("time_period", "time_identifier", "geographic_level", "country_code", "region_code", "new_la_code")
EES_LEVELS = {"National": "country_code", "Regional": "region_code", "Local authority": "new_la_code"}
API_LEVELS = ("NAT", "REG", "LA")
API_TIME_CODES = {"AY": "Academic year", "FY": "Financial year", "CY": "Calendar year", "RY": "Reporting year"}
PAGE_SIZE = 10_000


def _span(label: str, kind: str, override: str | None) -> tuple[str, date, date]:
    """(label, start, end) for a period. `kind` says how the publisher counts years: academic (Sep-Aug),
    financial (Apr-Mar), calendar, or march (DfE's children's social care "reporting year", to 31 March)."""
    m = re.fullmatch(r"(\d{4})(?:/?(\d{2}))?", label)
    if m and not m.group(2) and override == "nccis_neet":  # NCCIS "2023": the average of Dec 2022, Jan and Feb 2023
        y = int(m.group(1))
        return label, date(y - 1, 12, 1), date(y, 3, 1) - timedelta(days=1)
    if m and not m.group(2) and override == "nccis_march":  # participation is measured at the end of March
        y = int(m.group(1))
        return label, date(y, 3, 1), date(y, 3, 31)
    if m and m.group(2):  # "2015/16" or "201516"; y is the year it ends in
        y = int(m.group(1)) + 1
        label = f"{y - 1}/{str(y)[2:]}"
    elif m:
        y = int(m.group(1))
        if kind in ("academic", "financial"):  # LAIT labels these by the year they end in: 2016 = 2015/16
            label = f"{y - 1}/{str(y)[2:]}"
    else:
        three = re.fullmatch(r"(\d{4})-(\d{2})", label)  # LAIT's 3-year calendar periods "2014-16"
        if not three or kind != "calendar":
            raise SourceFormatError(f"dfe: period {label!r} ({kind}) is not in a format the tracker knows")
        return label, date(int(three.group(1)), 1, 1), date(int(three.group(1)[:2] + three.group(2)), 12, 31)
    if kind == "academic":
        return label, date(y - 1, 9, 1), date(y, 8, 31)
    if kind in ("financial", "march"):
        return label, date(y - 1, 4, 1), date(y, 3, 31)
    if kind == "calendar":
        return label, date(y, 1, 1), date(y, 12, 31)
    raise SourceFormatError(f"dfe: unknown kind of year {kind!r} for period {label!r}")


LAIT_YEAR_TYPES = {
    "Academic Year": "academic", "Financial Year": "financial", "Calendar Year": "calendar", "Annual": "march",
}
EES_YEAR_TYPES = {
    "Academic year": "academic", "Financial year": "financial", "Calendar year": "calendar", "Reporting year": "march",
}


def _periods(labels: pd.Series, kinds: pd.Series, override: str | None) -> pd.DataFrame:
    positions, distinct = pd.factorize(pd.MultiIndex.from_arrays([labels, kinds]))  # a span per distinct pair
    spans = pd.DataFrame([_span(l, k, override) for l, k in distinct], columns=["period", "period_start", "period_end"])
    return spans.take(positions).set_axis(labels.index)


class DfeSource(Source):
    name = "dfe"
    title = "Department for Education (LAIT, NCCIS, Explore Education Statistics)"
    producer = "Department for Education"
    # GSS symbols used in EES files and the API, and LAIT's "-"
    markers = {
        "-": "not available (LAIT '-')",
        "c": "confidential: suppressed to protect small numbers (DfE 'c')",
        "x": "not available (DfE 'x')",
        "z": "not applicable (DfE 'z')",
        "u": "low reliability, not published (DfE 'u')",
        "k": "rounds to zero, less than 0.5 (DfE 'k')",
        "low": "fewer than 5 (DfE 'low')",
        ":": "not available (DfE ':')",
        "..": "not available (DfE '..')",
    }

    # ---- offline -------------------------------------------------------------------------------------
    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(LAIT_FILE, nccis_years=sorted(NCCIS_FILES))
        for path in NCCIS_FILES.values():
            yield snapshot_payload(path)

    # ---- live ----------------------------------------------------------------------------------------
    def fetch(self, http, specs: list[IndicatorSpec]):
        live = [s for s in specs if s.options.get("ees_dataset")]
        if not live:
            raise SourceSkipped(
                "dfe: no catalog indicator has an EES data set id (options.ees_dataset), so there is nothing to "
                "fetch live; the DfE figures come from the bundled LAIT and NCCIS files (refresh --offline)"
            )
        base = setting("TRACKER_EES_BASE_URL").rstrip("/") + "/"
        found: dict[str, tuple[str, str | None]] = {}  # catalog data set id -> (id to read, its release date)
        for known in dict.fromkeys(s.options["ees_dataset"] for s in live):
            spec = next(s for s in live if s.options["ees_dataset"] == known)
            found[known] = yield from self._discover(http, base, known, spec.options)
        for known, (dataset, released) in found.items():
            group = [s for s in live if s.options["ees_dataset"] == known]
            via_csv = [s.id for s in group if s.options.get("ees_csv")]
            if via_csv:
                yield http.get(self.name, f"{base}data-sets/{dataset}/csv", indicator_ids=via_csv, released=released)
            queried = [s for s in group if not s.options.get("ees_csv")]
            if not queried:
                continue
            meta_payload = http.get(self.name, f"{base}data-sets/{dataset}/meta")
            yield meta_payload
            meta = _json(meta_payload)
            for spec in queried:
                body = _query_body(spec, meta, dataset)
                page, pages = 1, 1
                while page <= pages:
                    check_page(self.name, page, f"{base}data-sets/{dataset}/query")
                    p = http.post_json(
                        self.name, f"{base}data-sets/{dataset}/query", {**body, "page": page},
                        indicator_id=spec.id, ees_meta=meta, released=released,
                    )
                    yield p
                    paging = _json(p).get("paging") or {}
                    pages = int(paging.get("totalPages") or 1)
                    page += 1
        kept = [s.id for s in live if s.options.get("lait_breakdowns")]
        if kept:  # their breakdowns are not in the live series: keep LAIT's (see the module docstring)
            yield snapshot_payload(LAIT_FILE, lait_breakdowns_only=kept)

    def _discover(self, http, base: str, known: str, options: dict):
        """The data set to read for catalog id `known`, found by publication so that a new release is read without a
        code change: the publication (options.ees_publication, its slug) lists its data sets; the one titled
        options.ees_dataset_title is taken (a new data set replacing the old one is found by its title), else the
        catalog id. A deprecated data set is followed to the one that supersedes it. Yields the discovery responses
        (archived with the run); returns (data set id, when its latest version was published)."""
        dataset = known
        slug, title = options.get("ees_publication"), options.get("ees_dataset_title")
        if slug and title:
            listing = http.get(self.name, f"{base}publications", params={"search": slug.replace("-", " "),
                                                                          "pageSize": 40}, ees_step="publications")
            yield listing
            publication = next((p for p in _json(listing).get("results", []) if p.get("slug") == slug), None)
            if publication is None:
                raise SourceFormatError(f"dfe: EES has no publication with slug {slug!r} (searched {listing.location})")
            page, pages, matches = 1, 1, []
            while page <= pages:
                sets = http.get(self.name, f"{base}publications/{publication['id']}/data-sets",
                                params={"page": page, "pageSize": 40}, ees_step="data-sets")
                yield sets
                doc = _json(sets)
                matches += [d for d in doc.get("results", []) if d.get("title") == title and d.get("status") == "Published"]
                pages = int((doc.get("paging") or {}).get("totalPages") or 1)
                page += 1
            if matches:
                dataset = matches[0]["id"]
        for _ in range(5):  # follow a chain of superseded data sets, but not for ever
            summary = http.get(self.name, f"{base}data-sets/{dataset}", ees_step="data-set")
            yield summary
            doc = _json(summary)
            if doc.get("status") == "Withdrawn":
                raise SourceFormatError(f"dfe: EES data set {dataset} ({doc.get('title')}) has been withdrawn; "
                                        "find its replacement in the EES data catalogue and update the catalog entry")
            if doc.get("status") == "Deprecated" and doc.get("supersedingDataSetId"):
                dataset = doc["supersedingDataSetId"]
                continue
            return dataset, ((doc.get("latestVersion") or {}).get("published") or None)
        raise SourceFormatError(f"dfe: EES data set {known} is superseded more than five times over")

    # ---- parsing -------------------------------------------------------------------------------------
    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("ees_step"):
            return empty_tidy()  # discovery (publication, data-set list, data-set summary): nothing to load
        text = payload.text().lstrip()
        if text.startswith("{"):
            doc = _json(payload)
            if "results" in doc:
                return self._parse_query(payload, doc, specs)
            return empty_tidy()  # the meta document: read by the query payloads that follow it
        header = text.split("\n", 1)[0]
        if "measure_code" in header:
            return self._parse_lait(payload, specs)
        return self._parse_ees_csv(payload, specs)

    def _parse_lait(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        frame = read_csv_strict(payload, LAIT_COLUMNS, self.name)
        # "(Pre LG)" rows (Bournemouth, Poole, Dorset county before April 2019) stay: the shared harmonisation
        # reports them as merged or split areas, never as BCP's or Dorset's values.
        frame["value"] = frame["value"].where(frame["value"] != "", frame["value_as_published"])
        nccis_years = set(payload.meta.get("nccis_years", []))
        by_measure = dict(tuple(frame.groupby("measure_code")))
        only = payload.meta.get("lait_breakdowns_only")  # a live run: just these indicators' breakdowns
        if only is not None:
            specs = [s for s in specs if s.id in only]
        parts = []
        for spec in specs:
            if spec.source_id not in by_measure:
                if spec.source_id in (spec.options.get("ees_column"), *spec.options.get("ees_column_aliases", [])):
                    continue  # an EES-only indicator: its source id is its EES column
                raise SourceFormatError(
                    f"dfe: {payload.location} has no LAIT measure {spec.source_id!r} (indicator {spec.id})"
                )
            measures = _with_breakdowns(spec.source_id, spec.options.get("lait_breakdowns", {}))
            if only is not None:
                del measures[spec.source_id]  # the headline comes from EES
            for code, (ctype, cat) in measures.items():
                rows = by_measure.get(code)
                if rows is None:
                    raise SourceFormatError(f"dfe: {payload.location} has no LAIT measure {code!r} (indicator {spec.id})")
                if spec.options.get("ees_column") and not spec.options.get("ees_dataset"):
                    rows = rows[~rows["period"].isin(nccis_years)]  # those years come from the NCCIS files
                kinds = rows["year_type"].map(LAIT_YEAR_TYPES)
                if kinds.isna().any():
                    unknown = rows["year_type"][kinds.isna()].iloc[0]
                    raise SourceFormatError(f"dfe: LAIT year type {unknown!r} of {code} is unknown")
                periods = _periods(rows["period"], kinds, spec.options.get("period"))
                out = pd.concat([rows[["area_code", "value", "geography"]], periods], axis=1)
                out["indicator_id"], out["category_type"], out["category"] = spec.id, ctype, cat
                out["age"] = spec.options.get("age", "All ages")
                parts.append(_withhold_impossible_england(out))
        if not parts:
            return empty_tidy()
        return tidy(pd.concat(parts, ignore_index=True).drop(columns="geography"))

    def _parse_ees_csv(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        frame = read_csv_strict(payload, EES_COLUMNS, self.name)
        wanted = payload.meta.get("indicator_ids")  # the live CSV path: only what it was fetched for
        frame = frame[frame["geographic_level"].isin(EES_LEVELS)]
        kinds = frame["time_identifier"].map(EES_YEAR_TYPES)
        if kinds.isna().any():
            unknown = frame["time_identifier"][kinds.isna()].iloc[0]
            raise SourceFormatError(f"dfe: {payload.location}: time_identifier {unknown!r} is not one the tracker knows")
        codes = pd.Series(None, index=frame.index, dtype=object)
        for level, column in EES_LEVELS.items():
            codes[frame["geographic_level"] == level] = frame[column]
        parts = []
        for spec in specs:
            column = spec.options.get("ees_column")
            if not column or column not in frame.columns or (wanted and spec.id not in wanted):
                continue
            if not wanted and spec.options.get("ees_dataset"):
                continue  # an NCCIS file's context column (an earlier year's KS4 figure), not this indicator's series
            rows = frame
            for fcol, label in spec.options.get("ees_filters", {}).items():
                if fcol not in frame.columns:
                    raise SourceFormatError(f"dfe: {payload.location} has no filter column {fcol!r} (indicator {spec.id})")
                rows = rows[rows[fcol] == label]
            periods = _periods(rows["time_period"], kinds[rows.index], spec.options.get("period"))
            columns = _with_breakdowns(column, spec.options.get("ees_breakdowns", {}))
            for col, (ctype, cat) in columns.items():
                if col not in frame.columns:
                    raise SourceFormatError(f"dfe: {payload.location} has no column {col!r} (indicator {spec.id})")
                if ctype and rows.loc[rows["geographic_level"] == "Local authority", col].eq("").all():
                    # a breakdown with no local authority figures is not published that year: the 2021 NCCIS file
                    # fills the SEN columns on its England row only, with the 2022 England figures
                    continue
                out = periods.copy()
                out["area_code"], out["value"] = codes[rows.index], rows[col]
                out["indicator_id"], out["category_type"], out["category"] = spec.id, ctype, cat
                out["age"] = spec.options.get("age", "All ages")
                parts.append(out)
        return tidy(pd.concat(parts, ignore_index=True)) if parts else empty_tidy()

    def _parse_query(self, payload: Payload, doc: dict, specs: list[IndicatorSpec]) -> pd.DataFrame:
        meta = payload.meta.get("ees_meta")
        spec = {s.id: s for s in specs}.get(payload.meta.get("indicator_id"))
        if meta is None or spec is None:
            raise SourceFormatError(
                f"dfe: {payload.location}: an EES query response can only be read with its data set's meta"
            )
        places = {
            (group["level"]["code"], o["id"]): o.get("code")
            for group in meta.get("locations", []) for o in group.get("options", [])
        }
        columns = {i["id"]: i["column"] for i in meta.get("indicators", [])}
        wanted = _with_breakdowns(_column(spec, set(columns.values())), spec.options.get("ees_breakdowns", {}))
        rows, seen = [], {}
        for r in doc.get("results", []):
            level = r.get("geographicLevel")
            if level not in API_LEVELS:
                continue
            key = (level, (r.get("locations") or {}).get(level), r["timePeriod"].get("period"))
            if key in seen:  # a filter left free (options.ees_any_filters) splits the rows after all
                raise SourceFormatError(
                    f"dfe: {payload.location}: more than one row for {key[1]} ({level}) in {key[2]} (filters "
                    f"{seen[key]} and {r.get('filters')}); pin the filter that differs in options.ees_filters "
                    f"(indicator {spec.id})")
            seen[key] = r.get("filters")
            tp = r["timePeriod"]
            identifier = API_TIME_CODES.get(tp["code"])
            if identifier is None:
                raise SourceFormatError(
                    f"dfe: {payload.location}: time period code {tp['code']!r} is not one the tracker knows"
                )
            period = tp["period"].replace("/20", "") if "/" in tp["period"] else tp["period"]  # 2023/2024 -> 202324
            label, start, end = _span(period, EES_YEAR_TYPES[identifier], spec.options.get("period"))
            code = places.get((level, (r.get("locations") or {}).get(level)))  # None: reported as a missing area code
            for ind_id, value in r.get("values", {}).items():
                if columns.get(ind_id) in wanted:
                    ctype, cat = wanted[columns[ind_id]]
                    rows.append({"indicator_id": spec.id, "area_code": code, "period": label, "period_start": start,
                                 "period_end": end, "category_type": ctype, "category": cat, "value": value})
        if not rows:
            return empty_tidy()
        return tidy(pd.DataFrame(rows), age=spec.options.get("age", "All ages"))


def _with_breakdowns(main: str, breakdowns: dict) -> dict[str, tuple[str, str]]:
    """The headline column (no category) and each breakdown column with its (category_type, category)."""
    return {main: ("", ""), **{k: tuple(v) for k, v in breakdowns.items()}}


def _withhold_impossible_england(rows: pd.DataFrame) -> pd.DataFrame:
    """An England average must lie within the range of its regions. LAIT's England row for first-time
    entrants is the sum of the nine regional rates (3,071 for 2016, against regions of 237 to 417): such a
    figure is withheld (NULL, with the reason) rather than loaded, so England is never compared against it."""
    values = pd.to_numeric(rows["value"], errors="coerce")
    out = rows.copy()
    out["note"] = None
    regions = values[rows["geography"] == "Region"].groupby(rows["period"]).agg(["min", "max"]).dropna()
    for i in rows.index[rows["geography"] == "England"]:
        v, period = values[i], rows.at[i, "period"]
        if pd.isna(v) or period not in regions.index:
            continue
        lo, hi = regions.loc[period]
        if v < lo - 1e-9 or v > hi + 1e-9:
            out.loc[i, "value"] = ""
            out.loc[i, "note"] = (
                f"withheld: LAIT's England figure ({v:g}) lies outside the range of the regional figures "
                f"({lo:g} to {hi:g}), so it is not an England rate (LAIT adds up the regional rates for this measure)"
            )
    return out


def _json(payload: Payload) -> dict:
    try:
        return json.loads(payload.text())
    except ValueError as exc:
        raise SourceFormatError(
            f"dfe: {payload.location} is not the JSON the EES API returns: {payload.text()[:80]!r}"
        ) from exc


def _column(spec: IndicatorSpec, available: set[str]) -> str:
    """The indicator's column as the data set names it: ees_column, else the first of ees_column_aliases it has."""
    names = [spec.options["ees_column"], *spec.options.get("ees_column_aliases", [])]
    return next((n for n in names if n in available), names[0])


def _query_body(spec: IndicatorSpec, meta: dict, dataset: str) -> dict:
    """The POST /query body: the spec's indicator columns and filter options, resolved to the data set's ids."""
    by_column = {i["column"]: i["id"] for i in meta.get("indicators", [])}
    columns = [_column(spec, set(by_column)), *spec.options.get("ees_breakdowns", {})]
    missing = [c for c in columns if c not in by_column]
    if missing:
        raise SourceFormatError(
            f"dfe: EES data set {dataset} has no indicator column {', '.join(missing)} (indicator {spec.id}); "
            f"it has {', '.join(sorted(by_column))}"
        )
    criteria: list[dict] = [{"geographicLevels": {"in": list(API_LEVELS)}}]
    filters = {f["column"]: f for f in meta.get("filters", [])}
    pinned = spec.options.get("ees_filters", {})
    for column, label in pinned.items():
        options = {o["label"]: o["id"] for o in (filters.get(column) or {}).get("options", [])}
        if label not in options:
            raise SourceFormatError(f"dfe: EES data set {dataset} has no filter {column} = {label!r} (indicator {spec.id})")
        criteria.append({"filters": {"eq": options[label]}})
    free = set(spec.options.get("ees_any_filters", []))
    for column, f in filters.items():  # any other filter: its "Total" option (EES data standards), so one row per place
        if column in pinned:
            continue
        total = [o["id"] for o in f.get("options", []) if o.get("label") == "Total"]
        if total:
            criteria.append({"filters": {"eq": total[0]}})
            continue
        if column in free or len(f.get("options", [])) == 1:
            # a filter with one option (C1's category "Referrals and Re-referrals") selects nothing; one listed in
            # ees_any_filters describes each row rather than splitting it (KS4's version: each year is published in
            # one version). _parse_query checks that each place and period still has one row.
            continue
        raise SourceFormatError(
            f"dfe: EES data set {dataset} has filter {column} with no 'Total' option (indicator {spec.id}); pin it "
            f"in the catalog's options.ees_filters to one of: {', '.join(o['label'] for o in f.get('options', []))}")
    indicators = [by_column[c] for c in columns]
    return {"criteria": {"and": criteria}, "indicators": indicators, "debug": False, "pageSize": PAGE_SIZE}
