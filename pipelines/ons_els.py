"""ONS Explore Local Statistics (ELS): one tidy CSV per dataset, compiled by ONS from ONS, DWP, DfE, MHCLG,
DfT, DESNZ and OHID statistics.

Live: `{TRACKER_ELS_BASE_URL}<dataset>/<dataset>.csv` (the layout of ONSdigital/explore-local-statistics-data).
Offline: the same files in the snapshot; tracker/data/snapshot/metadata/ons_els_indicator_metadata.csv (flattened
from the ELS `<dataset>.json` files) maps each dataset to its snapshot file, and is where the catalog's
definitions, caveats and producers come from.

Catalog `source_id` is "<dataset>::<indicator as named in the file>". A dataset split by sex into two indicators
(healthy life expectancy) is one catalog entry with `source_id` "<dataset>" and `options.sex_indicators`
{sex: indicator name}.

What parse keeps, and why:
* Areas the tracker can hold (E92 England, E12 regions, E10 counties, E06/E07/E08/E09 LAs), including old codes of
  those types: the shared harmonisation maps them or reports them as unmapped with the reason (merged, split,
  unknown), so a rise in "unmapped" means something a user should look at.
* Skipped by rule, counted in the run report (problems/skipped): rows outside England (the tracker is England only) and English
  geographies the tracker has no area type for (SKIPPED_GEOGRAPHIES). These are aggregates of areas the tracker
  already holds or, for police force areas, areas it cannot place; reporting them as "unmapped" on every run would
  bury real mapping problems.
* Superseded rows: ELS publishes some old codes next to the successor area's own row for the same period (the
  old row's note says "Obsolete code since 2023 (replaced by E06000065 North Yorkshire)"). The successor's row is
  the figure for the tracker's area, so the old one is dropped (logged) rather than left to clash with it.
* `status` x -> value NULL with the note "not available"; u -> the value (ELS leaves it blank) with the note
  "low reliability"; any other status text and the publisher's `notes` are kept in the note.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from db.columns import per_distinct
from pipelines.base import (
    Payload, Source, SourceError, SourceFormatError, empty_tidy, read_csv_strict, snapshot_payload, tidy, with_skipped,
)
from tracker.catalog import IndicatorSpec
from tracker.config import SNAPSHOT_DIR, setting


METADATA_FILE = "metadata/ons_els_indicator_metadata.csv"
COLUMNS = ("areacd", "areanm", "geography", "indicator", "period", "observation", "measure", "unit", "lci_95",
           "uci_95", "status", "notes")
SKIPPED_GEOGRAPHIES = {
    "E11": "metropolitan counties",
    "E13": "Inner/Outer London",
    "E23": "police force areas",
    "E47": "combined authorities",
    "E67": "combined pairs of local authorities (City of London + Hackney, Cornwall + Isles of Scilly)",
}
STATUS_NOTES = {"x": "not available", "u": "low reliability"}
OBSOLETE = "Obsolete code"
CODE = re.compile(r"\bE\d{8}\b")
PERIOD = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:/P(\d+)Y)?")


def dataset_of(spec: IndicatorSpec) -> str:
    return spec.source_id.split("::", 1)[0]


def indicator_names(spec: IndicatorSpec) -> dict[str, str]:
    """Indicator name as in the file -> sex."""
    by_sex = spec.options.get("sex_indicators")
    if by_sex:
        return {name: sex for sex, name in by_sex.items()}
    return {spec.source_id.split("::", 1)[1]: "Persons"}


def _datasets(specs: list[IndicatorSpec]) -> list[str]:
    return sorted({dataset_of(s) for s in specs})


@lru_cache(maxsize=1)
def snapshot_files() -> dict[str, str]:
    """ELS dataset -> snapshot file, from the bundled metadata's `shared_file` column."""
    meta = pd.read_csv(SNAPSHOT_DIR / METADATA_FILE, dtype=str, encoding="utf-8-sig")
    return dict(zip(meta["els_dataset"], meta["shared_file"]))


def period_of(text: str) -> tuple[str, date, date]:
    """ELS ISO 8601 period -> (label, start, end).

    `2023-01-01/P1Y` "2023"; `2021-04-01/P1Y` financial "2021/22"; `2024-08-01/P1Y` or `2024-09-01/P1Y` academic
    "2024/25"; `2022-01-01/P3Y` "2022 - 24"; `2022-04-01/P3Y` "2022/23 - 24/25". A bare date is a point estimate
    (ASHE pay in April, affordability): labelled by its year, as the publishers do, with start = end = the date."""
    m = PERIOD.fullmatch(text.strip())
    if not m:
        raise ValueError(text)
    year, month, day, years = int(m[1]), int(m[2]), int(m[3]), m[4]
    start = date(year, month, day)
    if years is None:
        return str(year), start, start
    n = int(years)
    end = date(year + n, month, day) - timedelta(days=1)
    if (month, day) == (1, 1):
        label = str(year) if n == 1 else f"{year} - {(year + n - 1) % 100:02d}"
    elif month in (4, 8, 9) and day == 1:  # financial (April) or academic (August/September) years
        label = f"{year}/{(year + 1) % 100:02d}"
        if n > 1:
            label += f" - {(year + n - 1) % 100:02d}/{(year + n) % 100:02d}"
    else:
        raise ValueError(text)
    return label, start, end


class ElsSource(Source):
    name = "ons_els"
    title = "ONS Explore Local Statistics"
    producer = "Office for National Statistics"

    def fetch(self, http, specs: list[IndicatorSpec]):
        base = setting("TRACKER_ELS_BASE_URL").rstrip("/") + "/"
        for dataset in _datasets(specs):
            yield http.get(self.name, f"{base}{dataset}/{dataset}.csv", dataset=dataset)

    def read_offline(self, specs: list[IndicatorSpec]):
        files = snapshot_files()
        for dataset in _datasets(specs):
            if dataset not in files:
                raise SourceError(
                    f"{self.name}: no bundled snapshot file for ELS dataset {dataset!r} in {METADATA_FILE}"
                )
            yield snapshot_payload(files[dataset], dataset=dataset)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        dataset = payload.meta["dataset"]
        wanted = {
            name: (spec.id, sex)
            for spec in specs
            if dataset_of(spec) == dataset
            for name, sex in indicator_names(spec).items()
        }
        if not wanted:
            return empty_tidy()
        raw = read_csv_strict(payload, COLUMNS, self.name)
        found = sorted(raw["indicator"].unique())
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise SourceFormatError(
                f"{self.name}: {payload.location} has no rows for indicator(s) {', '.join(missing)}; "
                f"found {', '.join(found)}"
            )
        rows = raw[raw["indicator"].isin(wanted)].copy()
        rows["areacd"] = rows["areacd"].str.strip()
        skipped: dict[str, int] = {}
        rows = _drop_superseded(_in_scope(rows, payload.location, skipped), payload.location, skipped)

        periods = {}
        for p in rows["period"].unique():
            try:
                periods[p] = period_of(p)
            except ValueError:
                raise SourceFormatError(
                    f"{self.name}: {payload.location} has period {p!r}, not an ISO 8601 date or yearly interval "
                    "(e.g. 2023-01-01/P1Y) the tracker knows how to label"
                ) from None
        status = rows["status"].str.strip()
        # mapped per distinct value: the files repeat a few periods, indicators and notes many times
        out = pd.DataFrame({
            "indicator_id": rows["indicator"].map({k: v[0] for k, v in wanted.items()}).to_numpy(),
            "area_code": rows["areacd"].to_numpy(),
            "period": rows["period"].map({k: v[0] for k, v in periods.items()}).to_numpy(),
            "period_start": rows["period"].map({k: v[1] for k, v in periods.items()}).to_numpy(),
            "period_end": rows["period"].map({k: v[2] for k, v in periods.items()}).to_numpy(),
            "sex": rows["indicator"].map({k: v[1] for k, v in wanted.items()}).to_numpy(),
            "value": rows["observation"].where(status.str.lower() != "x", "").to_numpy(),
            "lci95": rows["lci_95"].to_numpy(),
            "uci95": rows["uci_95"].to_numpy(),
            "note": _notes(status, rows["notes"]),
        })
        return with_skipped(tidy(out), skipped)


def _notes(status: pd.Series, notes: pd.Series) -> list[str | None]:
    """_note for every row, computed once per distinct (status, notes) pair."""
    pairs = status + "\x1f" + notes
    return per_distinct(pairs, lambda distinct: [_note(*pair.split("\x1f", 1)) for pair in distinct]).tolist()


def _note(status: str, notes: str) -> str | None:
    parts = [STATUS_NOTES.get(status.lower(), status), notes.strip()]
    # "Obsolete code ..." is about the area code, which the shared harmonisation deals with, not about the value.
    return "; ".join(p for p in parts if p and not p.startswith(OBSOLETE)) or None


def _in_scope(rows: pd.DataFrame, location: str, skipped: dict[str, int]) -> pd.DataFrame:
    prefix = rows["areacd"].str[:3]
    outside = ~rows["areacd"].str.startswith("E")
    other = prefix.isin(SKIPPED_GEOGRAPHIES)
    if outside.any():
        skipped["outside England"] = int(outside.sum())
    for p, n in prefix[other].value_counts().items():
        skipped[f"{SKIPPED_GEOGRAPHIES[p]} ({p} codes): the tracker has no such areas"] = int(n)
    return rows[~outside & ~other]


def _drop_superseded(rows: pd.DataFrame, location: str, skipped: dict[str, int]) -> pd.DataFrame:
    """Drop an old code's row when every area its note names as replacement has its own row for that period."""
    obsolete = rows["notes"].str.startswith(OBSOLETE).to_numpy()
    if not obsolete.any():
        return rows
    old = rows[obsolete]
    present = set(zip(rows["indicator"].tolist(), rows["period"].tolist(), rows["areacd"].tolist()))
    superseded = np.zeros(len(rows), dtype=bool)
    superseded[obsolete.nonzero()[0]] = [
        bool(new) and all((i, p, c) in present for c in new)
        for i, p, new in zip(old["indicator"].tolist(), old["period"].tolist(), old["notes"].map(CODE.findall))
    ]
    if superseded.any():
        skipped["old area code whose successor has its own row for the same period"] = int(superseded.sum())
    return rows[~superseded]
