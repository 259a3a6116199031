"""The indicator catalog: declarative YAML files in tracker/data/catalog/, one per source.

Each file holds `indicators:`, a list of entries. Loading validates every entry and fails with a
message naming the file and the entry (see CatalogError). docs/catalog.md describes each field."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, delete, select

from db.models import Indicator
from tracker import departments
from tracker.config import CATALOG_DIR, read_yaml

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
            "default_sex", "options", "trend_method", "standardised", "ci_method", "ci_reason",
            "decimals", "limits")
# How the recent trend is tested (docs/methods.md, "Recent trend"), as Fingertips does: "ci_regression" (weighted
# regression on the 95% CIs with the leave-one-out check), "spc_proportions" (chi-squared test for trend on counts,
# only for indicators Fingertips compares by "SPC for proportions"), "none" (Fingertips calculates no trend for this
# value type). Default: ci_regression for proportions and rates (Fingertips' proportions, crude rates and directly
# standardised rates), none otherwise.
TREND_METHODS = ("ci_regression", "spc_proportions", "none")
TREND_VALUE_TYPES = ("proportion", "rate")


def default_trend_method(value_type: str) -> str:
    return "ci_regression" if value_type in TREND_VALUE_TYPES else "none"


def default_standardised(entry: dict) -> bool:
    """A rate is directly (age-)standardised when its unit, title or definition says so."""
    text = " ".join(str(entry.get(k) or "") for k in ("unit", "title", "definition")).lower()
    return entry.get("value_type") == "rate" and "standardised" in text


# How a figure gets a confidence interval (docs/catalog.md, docs/methods.md section 2):
#   published: only as the publisher gives it; the tracker computes none.
#   wilson: as published, else the Wilson score interval from count and denominator (a directly counted proportion).
#   byar: as published, else Byar's method (exact Poisson below 10 events) from count and denominator (a crude rate).
#   none: the figure supports no CI (a modelled or survey-model estimate, an index, score, rank, count, ratio of
#         medians, money per head): never computed, never compared with England by significance; needs ci_reason.
CI_METHODS = ("published", "wilson", "byar", "none")
DEFAULT_NONE_REASON = {
    "score": "an index or score: no sampling error the tracker could compute",
    "rank": "a rank: a position, not an estimate",
    "count": "a count of the whole area: nothing to sample",
}
# Decimal places the dashboard shows when an indicator has no `decimals` of its own (exports keep full precision):
# whole numbers for counts, ranks and money, two places for ratios and scores, three for a proportion given as a
# fraction of 1 (unit "proportion of ..."), one for percentages, rates, means and years.
DEFAULT_DECIMALS = {"count": 0, "rank": 0, "ratio": 2, "score": 2}


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
    trend_method: str = "none"  # TREND_METHODS; the default comes from value_type (default_trend_method)
    standardised: bool = False  # a directly standardised rate (DSR): never given a crude rate's CI
    ci_method: str = "published"  # CI_METHODS; default_ci_method() when the YAML gives none
    ci_reason: str | None = None  # why ci_method is none (required then)
    decimals: int | None = None  # decimal places shown in the dashboard; None = default_decimals()
    # plausible (low, high) of a value, None where unbounded: from the catalog's `limits`, else default_limits()
    limits: tuple[float | None, float | None] | None = None

    def __post_init__(self) -> None:
        if self.decimals is None:
            object.__setattr__(self, "decimals", default_decimals(self.value_type, self.unit))
        if self.limits is None:
            object.__setattr__(self, "limits", default_limits(self.value_type, self.unit, self.multiplier,
                                                              bool(self.options.get("allow_negative"))))


def default_ci_method(value_type: str, multiplier) -> tuple[str, str | None]:
    """The CI method when the catalog entry names none: a proportion or rate with a multiplier is taken to be a
    directly counted one (Wilson, Byar), an index, score, rank or count has none, anything else uses only the
    publisher's CIs. Entries whose figure is modelled, a survey-model estimate, a ratio of medians or money per
    head say `ci_method: none` in the YAML."""
    if value_type == "proportion" and multiplier:
        return "wilson", None
    if value_type == "rate" and multiplier:
        return "byar", None
    if value_type in DEFAULT_NONE_REASON:
        return "none", DEFAULT_NONE_REASON[value_type]
    return "published", None


def default_decimals(value_type: str, unit: str) -> int:
    """The decimal places shown for an indicator with no `decimals` field (see DEFAULT_DECIMALS)."""
    unit = str(unit).strip().lower()
    if value_type in DEFAULT_DECIMALS:
        return DEFAULT_DECIMALS[value_type]
    if unit.startswith("£"):
        return 0
    return 3 if unit.startswith("proportion") else 1


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
    # a directly standardised rate's CI is the publisher's (Dobson), never Byar's on its crude count
    is_dsr = entry.get("standardised", default_standardised(entry)) is True
    method, reason = ("published", None) if is_dsr else default_ci_method(entry["value_type"], entry.get("multiplier"))
    if "ci_method" in entry:
        method, reason = entry["ci_method"], entry.get("ci_reason")
        if method not in CI_METHODS:
            raise _entry_error(path, entry, index, f"unknown ci_method {method!r}; valid: {', '.join(CI_METHODS)}")
        wanted = {"wilson": "proportion", "byar": "rate"}.get(method)
        if wanted and (entry["value_type"] != wanted or not entry.get("multiplier")):
            raise _entry_error(path, entry, index, f"ci_method {method} needs value_type {wanted} and a multiplier")
        if method == "none" and not str(reason or "").strip():
            raise _entry_error(path, entry, index, "ci_method none needs a ci_reason (why the figure supports no CI)")
    elif "ci_reason" in entry:
        raise _entry_error(path, entry, index, "ci_reason is only for ci_method: none")
    decimals = entry.get("decimals")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6):
        raise _entry_error(path, entry, index, f"decimals must be a whole number from 0 to 6, not {decimals!r}")
    values = {k: entry[k] for k in REQUIRED + OPTIONAL if k in entry}
    values["ci_method"], values["ci_reason"] = method, (str(reason).strip() if method == "none" else None)
    values["secondary_departments"] = tuple(entry.get("secondary_departments", []))
    values["area_types"] = area_types
    values["source_id"] = str(entry["source_id"])
    values["options"] = dict(entry.get("options") or {})
    values["trend_method"] = entry.get("trend_method") or default_trend_method(entry["value_type"])
    if values["trend_method"] not in TREND_METHODS:
        raise _entry_error(path, entry, index,
                           f"unknown trend_method {values['trend_method']!r}; valid: {', '.join(TREND_METHODS)}")
    if values["trend_method"] == "spc_proportions" and entry["value_type"] != "proportion":
        raise _entry_error(path, entry, index, "trend_method spc_proportions needs value_type proportion")
    standardised = entry.get("standardised", default_standardised(entry))
    if not isinstance(standardised, bool):
        raise _entry_error(path, entry, index, f"standardised must be true or false, not {standardised!r}")
    if standardised and entry["value_type"] != "rate":
        raise _entry_error(path, entry, index, "standardised: true needs value_type rate")
    if standardised and method == "byar":
        raise _entry_error(path, entry, index, "a standardised rate cannot have ci_method byar (its crude count's CI)")
    values["standardised"] = standardised
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
        doc = read_yaml(path) or {}
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


@functools.lru_cache(maxsize=4)
def _fields(directory: Path):
    import pandas as pd

    specs = load_catalog(directory)
    return pd.DataFrame({"trend_method": [s.trend_method for s in specs], "standardised": [s.standardised for s in specs]},
                        index=pd.Index([s.id for s in specs], name="id"))


def catalog_fields(directory: Path = CATALOG_DIR):
    """trend_method and standardised per indicator id (indexed by id), from the catalog files (read once)."""
    return _fields(directory)


def by_source(source: str, specs: list[IndicatorSpec] | None = None) -> list[IndicatorSpec]:
    return [s for s in (specs if specs is not None else load_catalog()) if s.source == source]


def display_decimals() -> dict[str, int]:
    """{indicator id: decimal places the dashboard shows} for every catalog entry."""
    return {s.id: s.decimals for s in load_catalog()}


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
            for name in ("trend_method", "standardised"):  # read from the catalog by the analysis (catalog_fields)
                row.pop(name)
            row.pop("decimals")  # display only: read from the catalog files (display_decimals), not the database
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


# ---- release cadence per source (tracker/data/releases.yaml): freshness by the data, see tracker.status ----------

CADENCES = {"monthly": 1, "quarterly": 3, "annual": 12, "ad hoc": None}  # months between releases
RELEASES_FILE = CATALOG_DIR.parent / "releases.yaml"


@dataclass(frozen=True)
class SourceRelease:
    source: str
    cadence: str  # monthly | quarterly | annual | ad hoc
    grace_days: int  # the publisher's usual delay from period end to release, plus a margin
    snapshot_released: date | None = None  # when the publisher released the bundled edition, where known

    def next_due(self, latest_period_end: date | None) -> date | None:
        """When a release newer than the latest period held should have appeared: period end + one cadence +
        grace. None for ad hoc releases or when nothing is held."""
        months = CADENCES[self.cadence]
        if months is None or latest_period_end is None:
            return None
        return (pd.Timestamp(latest_period_end) + pd.DateOffset(months=months)
                + pd.Timedelta(days=self.grace_days)).date()


def load_releases(path: Path = RELEASES_FILE) -> dict[str, SourceRelease]:
    """Each source's release cadence, validated. Raises CatalogError naming the file and the source."""
    doc = read_yaml(path) or {}
    out = {}
    for source, entry in (doc.get("releases") or {}).items():
        if not isinstance(entry, dict) or entry.get("cadence") not in CADENCES:
            raise CatalogError(f"{path.name}: source {source}: cadence must be one of {', '.join(CADENCES)}")
        unknown = sorted(set(entry) - {"cadence", "grace_days", "snapshot_released"})
        if unknown:
            raise CatalogError(f"{path.name}: source {source}: unknown field(s) {', '.join(unknown)}")
        grace = entry.get("grace_days", 0)
        if not isinstance(grace, int) or grace < 0:
            raise CatalogError(f"{path.name}: source {source}: grace_days must be a whole number of days >= 0")
        released = entry.get("snapshot_released")
        if released is not None and not isinstance(released, date):
            raise CatalogError(f"{path.name}: source {source}: snapshot_released must be a date (YYYY-MM-DD)")
        out[source] = SourceRelease(source, entry["cadence"], grace, released)
    return out
