"""The indicator catalog: declarative YAML files in tracker/data/catalog/, one per source.

Each file holds `indicators:`, a list of entries. Loading validates every entry and fails with a
message naming the file and the entry (see CatalogError). docs/catalog.md describes each field."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import Engine, delete, select

from db.models import Indicator
from tracker import departments
from tracker.config import CATALOG_DIR

DOMAINS = (
    "housing",
    "employment",
    "education",
    "environment",
    "income",
    "crime and justice",
    "transport",
    "communities",
    "health behaviours and services",
    "health outcome",
)
POLARITIES = ("higher_is_better", "lower_is_better", "no_judgement")
VALUE_TYPES = ("proportion", "rate", "mean", "median", "ratio", "score", "count", "years", "rank")
AREA_TYPES = ("england", "region", "icb", "utla", "ltla", "lsoa")
REQUIRED = ("id", "title", "domain", "unit", "value_type", "polarity", "department", "producer", "rationale",
            "definition", "licence", "source", "source_id")
OPTIONAL = ("secondary_departments", "source_url", "area_types", "headline_outcome", "caveats", "multiplier",
            "default_sex", "options", "limits")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class IndicatorSpec:
    id: str
    title: str
    domain: str
    unit: str
    value_type: str
    polarity: str
    department: str  # GOV.UK slug of the policy owner
    producer: str
    rationale: str
    definition: str
    licence: str
    source: str  # pipeline name
    source_id: str  # the source's own id for this indicator
    secondary_departments: tuple[str, ...] = ()
    source_url: str | None = None
    area_types: tuple[str, ...] = ("ltla",)
    headline_outcome: bool = False
    caveats: str | None = None
    multiplier: float | None = None  # 100 for a percentage, 1000 for "per 1,000": used for CIs from counts
    default_sex: str = "Persons"  # the sex used for headline comparisons and the analysis
    options: dict = field(default_factory=dict)  # source-specific parsing options
    # plausible (low, high) of a value, None where unbounded: from the catalog's `limits`, else default_limits()
    limits: tuple[float | None, float | None] | None = None

    def __post_init__(self) -> None:
        if self.limits is None:
            object.__setattr__(self, "limits", default_limits(self.value_type, self.unit, self.multiplier,
                                                              bool(self.options.get("allow_negative"))))


UNIT_RANGE = re.compile(r"\((-?[\d.]+) to (-?[\d.]+)\)")  # a unit that states its range, e.g. "mean score (0 to 10)"


def default_limits(value_type: str, unit: str, multiplier: float | None, allow_negative: bool) -> tuple[float | None, float | None]:
    """Plausible limits from what the value is: years 0-120, a share 0-1 or 0-100 by its multiplier, a rate,
    count, mean, median or ratio never negative, a decile 1-10, a stated range "(0 to 10)" in the unit. Scores
    (e.g. IMD, can be negative) have none. A value outside is rejected at validation."""
    stated = UNIT_RANGE.search(unit or "")
    if stated:
        return float(stated.group(1)), float(stated.group(2))
    low = None if allow_negative else 0.0
    if value_type == "years":
        return (-120.0 if allow_negative else 0.0), 120.0
    if value_type == "proportion":
        return low, float(multiplier or 100.0)
    if value_type == "rank":
        return (1.0, 10.0) if (unit or "").lower().startswith("decile") else (1.0, None)
    if value_type == "score":
        return None, None
    return low, None  # rate, count, mean, median, ratio


def _entry_error(path: Path, entry: dict | None, index: int, message: str) -> CatalogError:
    name = (entry or {}).get("id") or f"entry #{index + 1}"
    return CatalogError(f"{path.name}: indicator {name}: {message}")


def _parse_entry(path: Path, entry: dict, index: int) -> IndicatorSpec:
    if not isinstance(entry, dict):
        raise _entry_error(path, None, index, "is not a mapping of fields")
    missing = [k for k in REQUIRED if not str(entry.get(k) or "").strip()]
    if missing:
        raise _entry_error(path, entry, index, f"missing {', '.join(missing)}")
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _entry_error(path, entry, index, f"unknown field(s) {', '.join(unknown)}")
    if entry["domain"] not in DOMAINS:
        raise _entry_error(path, entry, index, f"unknown domain {entry['domain']!r}; valid: {', '.join(DOMAINS)}")
    if entry["polarity"] not in POLARITIES:
        raise _entry_error(path, entry, index, f"unknown polarity {entry['polarity']!r}; valid: {', '.join(POLARITIES)}")
    if entry["value_type"] not in VALUE_TYPES:
        raise _entry_error(path, entry, index, f"unknown value_type {entry['value_type']!r}; valid: {', '.join(VALUE_TYPES)}")
    known = {d.slug for d in departments.all_departments()}
    for slug in [entry["department"], *entry.get("secondary_departments", [])]:
        if slug not in known:
            raise _entry_error(path, entry, index, f"unknown department {slug!r}; use a GOV.UK slug from departments.yaml")
    area_types = tuple(entry.get("area_types") or ("ltla",))
    bad = [a for a in area_types if a not in AREA_TYPES]
    if bad:
        raise _entry_error(path, entry, index, f"unknown area type(s) {', '.join(bad)}; valid: {', '.join(AREA_TYPES)}")
    values = {k: entry[k] for k in REQUIRED + OPTIONAL if k in entry}
    values["secondary_departments"] = tuple(entry.get("secondary_departments", []))
    values["area_types"] = area_types
    values["source_id"] = str(entry["source_id"])
    values["options"] = dict(entry.get("options") or {})
    values["limits"] = _limits(path, entry, index, values["options"])
    return IndicatorSpec(**values)


def _limits(path: Path, entry: dict, index: int, options: dict) -> tuple[float | None, float | None] | None:
    if "limits" not in entry:
        return None  # IndicatorSpec works out the default
    given = entry["limits"]
    try:
        low, high = [None if v is None else float(v) for v in given]
    except (TypeError, ValueError):
        raise _entry_error(path, entry, index, f"limits must be [low, high] numbers (null for unbounded), not {given!r}") from None
    if any(v is not None and not math.isfinite(v) for v in (low, high)) or (
            low is not None and high is not None and low >= high):
        raise _entry_error(path, entry, index, f"limits {given!r}: low must be below high, both finite or null")
    return low, high


def load_catalog(directory: Path = CATALOG_DIR) -> list[IndicatorSpec]:
    """Every indicator in every catalog file, validated. Raises CatalogError naming file and entry."""
    specs: list[IndicatorSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        # libyaml when available: the pure-Python parser takes most of a refresh's start-up
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        entries = doc.get("indicators")
        if not isinstance(entries, list):
            raise CatalogError(f"{path.name}: expected a top-level 'indicators:' list")
        for i, entry in enumerate(entries):
            spec = _parse_entry(path, entry, i)
            if spec.id in seen:
                raise _entry_error(path, entry, i, f"duplicate id (also in {seen[spec.id]})")
            seen[spec.id] = path.name
            specs.append(spec)
    return specs


def by_source(source: str, specs: list[IndicatorSpec] | None = None) -> list[IndicatorSpec]:
    return [s for s in (specs if specs is not None else load_catalog()) if s.source == source]


def sync_catalog(engine: Engine, specs: list[IndicatorSpec] | None = None) -> int:
    """Upsert every catalog entry into the indicator table (one transaction). Indicators no longer in the
    catalog are removed when no observation refers to them."""
    specs = specs if specs is not None else load_catalog()
    table = Indicator.__table__
    with engine.begin() as conn:
        existing = set(conn.execute(select(Indicator.id)).scalars())
        for s in specs:
            row = asdict(s)
            row["department_slug"] = row.pop("department")
            row["secondary_departments"] = list(s.secondary_departments)
            row["area_types"] = list(s.area_types)
            row.pop("options")
            row.pop("limits")
            if s.id in existing:
                conn.execute(table.update().where(table.c.id == s.id).values(**row))
            else:
                conn.execute(table.insert().values(**row))
        gone = existing - {s.id for s in specs}
        if gone:
            from db.models import Observation

            referenced = set(conn.execute(select(Observation.indicator_id).distinct()).scalars())
            conn.execute(delete(Indicator).where(Indicator.id.in_(gone - referenced)))
    return len(specs)
