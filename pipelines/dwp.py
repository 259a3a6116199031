"""DWP children in low income families: local area statistics, relative low income, counts of children under 16
by local authority district (2021 codes), financial years ending 2015 to 2022 (2021/22 provisional).

Counts only: the bundled Stat-Xplore export has no denominator, and DWP's own percentages come through the ONS
Explore Local Statistics source (children in relative poverty). The count is kept because it sizes the problem in a
place and shows its trend there; it is not for comparing places (it grows with the number of children), so the
catalog gives it polarity no_judgement.

Live: the DWP Stat-Xplore Open Data API (POST table, with the user's key in the APIKey header), when
TRACKER_STATXPLORE_API_KEY is set (free registration at https://stat-xplore.dwp.gov.uk). One query per indicator:
children under 16 (age bands combined by a recode) by local authority district and financial year, every year
Stat-Xplore holds, so a new year is found without a code change. Without a key the run is skipped with one message and
the data stay as they are. The key travels in a header only: never in a URL, the run table, the archived payloads'
metadata or a message. Offline: the bundled export. Districts merged in 2023 (Cumbria, North Yorkshire, Somerset) are
summed into today's authorities.

Catalog options.statxplore: database, measure, geography_field, geography_values (the value-set prefix of a district,
to which the GSS code is appended), date_field, age_field and age_values (the bands combined)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from pipelines.base import (
    Payload, Source, SourceFormatError, SourceSkipped, empty_tidy, read_csv_strict, snapshot_payload, tidy,
)
from pipelines.mhclg import combine_merged_districts, numeric
from tracker.catalog import IndicatorSpec
from tracker.config import GEOGRAPHY_DIR, setting

COUNTS_FILE = "children/dwp_children_in_relative_low_income_families_counts_lad21_fye2015_to_fye2022.csv"
COLUMNS = ("LAD21CD", "financial_year", "provisional")


class ChildrenLowIncomeSource(Source):
    name = "dwp_children_low_income"
    title = "DWP children in low income families (counts)"
    producer = "Department for Work and Pensions"
    publisher_url = "https://www.gov.uk/government/collections/children-in-low-income-families-local-area-statistics"

    def read_offline(self, specs: list[IndicatorSpec]):
        yield snapshot_payload(COUNTS_FILE)

    def fetch(self, http, specs: list[IndicatorSpec]):
        key = setting("TRACKER_STATXPLORE_API_KEY")
        if not key:
            raise SourceSkipped(
                f"{self.name}: DWP Stat-Xplore needs an API key: set TRACKER_STATXPLORE_API_KEY (free registration at "
                "https://stat-xplore.dwp.gov.uk, then your account's Open Data API key); the data already loaded stay "
                "as they are"
            )
        url = setting("TRACKER_STATXPLORE_BASE_URL").rstrip("/") + "/table"
        for spec in specs:
            if spec.options.get("statxplore"):
                yield http.post_json(self.name, url, table_query(spec.options["statxplore"], district_codes()),
                                     headers={"APIKey": key}, indicator_id=spec.id)

    def _parse_table(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        spec = {s.id: s for s in specs}.get(payload.meta.get("indicator_id"))
        if spec is None:
            return empty_tidy()
        options = spec.options["statxplore"]
        try:
            doc = json.loads(payload.text())
        except ValueError as exc:
            raise SourceFormatError(f"{self.name}: {payload.location} is not the JSON Stat-Xplore returns (an HTML page, "
                                    f"or a response cut short?): {payload.text()[:80]!r}") from exc
        cells = cube_rows(doc, payload.location)
        for field in (options["geography_field"], options["date_field"]):
            if field not in cells.columns:
                raise SourceFormatError(f"{self.name}: {payload.location} has no field {field} (indicator {spec.id})")
        years = cells[options["date_field"]].str.extract(r"(\d{4})\s*/\s*(\d{2})")
        if years.isna().any().any():
            bad = cells.loc[years.isna().any(axis=1), options["date_field"]].iloc[0]
            raise SourceFormatError(f"{self.name}: {payload.location} has year {bad!r}; expected e.g. 2019/20")
        frame = pd.DataFrame({
            "area_code": cells[f"{options['geography_field']}#code"],
            "start": years[0].astype(int),
            "provisional": cells[options["date_field"]].str.contains(r"\(p\)|provisional", case=False, regex=True),
            "count": pd.to_numeric(cells["value"], errors="coerce"),
        })
        frame["financial_year"] = [f"{y}/{str(y + 1)[2:]}" for y in frame["start"]]
        frame = frame.groupby(["area_code", "financial_year", "start", "provisional"], as_index=False)["count"].sum(min_count=1)
        return self._tidy_counts([(spec, frame)])

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        if payload.meta.get("indicator_id"):  # a Stat-Xplore response (the bundled export is a CSV)
            return self._parse_table(payload, specs)
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
        return self._tidy_counts([(spec, pd.DataFrame({
            "financial_year": df["financial_year"], "start": df["start"], "provisional": df["provisional"],
            "area_code": df["LAD21CD"].replace("", None), "count": numeric(df[spec.source_id], self.name, payload.location),
        })) for spec in specs])

    @staticmethod
    def _tidy_counts(parts: list[tuple[IndicatorSpec, pd.DataFrame]]) -> pd.DataFrame:
        """(spec, rows of financial_year, start, provisional, area_code, count) -> tidy rows, merged districts summed."""
        out = []
        for spec, part in parts:
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


def district_codes() -> list[str]:
    """Today's local authority districts (the tracker's bundled geography): the rows asked of Stat-Xplore."""
    return sorted(pd.read_csv(GEOGRAPHY_DIR / "lad24_rgn24.csv", dtype=str)["LAD24CD"])


def table_query(options: dict, districts: list[str]) -> dict:
    """The POST table body (Stat-Xplore Open Data API): the measure by district and year, age bands combined."""
    dimensions = [options["geography_field"], options["date_field"]]
    recodes = {options["geography_field"]: {"map": [[f"{options['geography_values']}:{c}"] for c in districts],
                                            "total": False}}
    if options.get("age_field"):
        dimensions.append(options["age_field"])
        recodes[options["age_field"]] = {"map": [list(options["age_values"])], "total": False}
    return {"database": options["database"], "measures": [options["measure"]], "recodes": recodes,
            "dimensions": [[d] for d in dimensions]}


def cube_rows(doc: dict, location: str) -> pd.DataFrame:
    """A Stat-Xplore table response as one row per cell: per field, a column named by the field's URI (the item's
    label) and one named "<URI>#code" (the last part of the item's value URI: a GSS code for geography), then the
    measure's label and the value. Total items (a recode with "total": true) are left out."""
    try:
        fields, measures, cubes = doc["fields"], doc["measures"], doc["cubes"]
    except (KeyError, TypeError) as exc:
        raise SourceFormatError(f"dwp: {location} is not a Stat-Xplore table response (no {exc})") from exc
    rows = []
    for measure in measures:
        values = cubes.get(measure["uri"], {}).get("values")
        if values is None:
            raise SourceFormatError(f"dwp: {location} has no cube for measure {measure['uri']}")

        def walk(level, node, path):
            if level == len(fields):
                rows.append({**dict(path), "measure": measure["label"], "value": node})
                return
            items = fields[level]["items"]
            if len(node) != len(items):
                raise SourceFormatError(f"dwp: {location}: field {fields[level]['label']!r} has {len(items)} items "
                                        f"but the cube has {len(node)} values at that level")
            for item, child in zip(items, node):
                if item.get("type") == "Total":
                    continue
                uri = fields[level]["uri"]
                walk(level + 1, child, path + [(uri, item["labels"][0]),
                                                (f"{uri}#code", (item.get("uris") or [""])[0].rsplit(":", 1)[-1])])

        walk(0, values, [])
    return pd.DataFrame(rows)
