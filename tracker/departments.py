"""Whitehall departments and their machinery-of-government lineage, from tracker/data/departments.yaml.

`lookup("DLUHC")` -> the department that holds those functions today (MHCLG), and when the old name
stopped being used. A predecessor split by function (BEIS) returns one match per successor unless a
function narrows it: `lookup("BEIS", function="fuel poverty")` -> DESNZ."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy import Engine, delete, insert

from db.models import Department, DepartmentLineage
from tracker.config import PACKAGE_DATA, read_yaml

DEPARTMENTS_FILE = PACKAGE_DATA / "departments.yaml"
DHSC = "department-of-health-and-social-care"


@dataclass(frozen=True)
class Dept:
    slug: str
    name: str
    abbreviation: str
    is_dhsc: bool = False
    scope: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LineageMatch:
    department: Dept  # today's department
    matched: str  # the name, abbreviation or slug that matched
    used_until: date | None  # None: still in use
    functions: str  # which functions went to `department` ("all" when not split)
    note: str | None = None

    def describe(self) -> str:
        if self.used_until is None:
            return f"{self.matched} is {self.department.name} ({self.department.abbreviation})"
        return (
            f"{self.matched} was used until {self.used_until:%d %b %Y}; its "
            f"{'functions' if self.functions == 'all' else self.functions + ' functions'} are now with "
            f"{self.department.name} ({self.department.abbreviation})"
        )


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower().replace("&", "and")).strip()


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, Dept], tuple[dict, ...]]:
    raw = read_yaml(DEPARTMENTS_FILE)
    depts = {d["slug"]: Dept(**d) for d in raw["departments"]}
    for row in raw["lineage"]:
        if row["current"] not in depts:
            raise ValueError(f"{DEPARTMENTS_FILE}: lineage entry {row['name']!r} names unknown department {row['current']!r}")
    return depts, tuple(raw["lineage"])


def all_departments() -> list[Dept]:
    return sorted(_registry()[0].values(), key=lambda d: d.name)


def get(slug: str) -> Dept:
    return _registry()[0][slug]


def lookup(name: str, function: str | None = None) -> list[LineageMatch]:
    """Every current department that `name` (a current or historical name, abbreviation or slug) leads
    to. Empty when nothing matches. `function` keeps only the successor that took that function."""
    depts, lineage = _registry()
    key = _norm(name)
    matches: list[LineageMatch] = []
    for d in depts.values():
        if key in {_norm(d.slug), _norm(d.name), _norm(d.abbreviation)}:
            matches.append(LineageMatch(d, name, None, "all", d.note))
    if matches:
        return matches
    for row in lineage:
        names = {_norm(row["name"]), _norm(re.sub(r"\s*\(\d{4}-\d{4}\)$", "", row["name"]))}
        names |= {_norm(row[k]) for k in ("abbreviation", "slug") if row.get(k)}
        if key in names:
            matches.append(
                LineageMatch(depts[row["current"]], name, row.get("used_until"), row.get("functions", "all"), row.get("note"))
            )
    if function and len(matches) > 1:
        wanted = _norm(function)
        narrowed = [m for m in matches if m.functions == "all" or any(wanted in _norm(f) or _norm(f) in wanted for f in m.functions.split(","))]
        matches = narrowed or matches
    return matches


def resolve(name: str, function: str | None = None) -> Dept:
    """The one current department for `name`; ValueError (saying what is valid) when none or ambiguous."""
    matches = lookup(name, function)
    found = {m.department.slug: m.department for m in matches}
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        valid = ", ".join(sorted(d.abbreviation for d in all_departments()))
        raise ValueError(f"unknown department {name!r}; use a GOV.UK slug or one of: {valid}")
    options = ", ".join(f"{m.department.abbreviation} ({m.functions})" for m in matches)
    raise ValueError(f"{name!r} was split between departments: {options}; say which function you mean")


def sync_departments(engine: Engine) -> int:
    """Write the departments and lineage tables from the data file (one transaction)."""
    depts, lineage = _registry()
    with engine.begin() as conn:
        conn.execute(delete(DepartmentLineage))
        existing = {r[0] for r in conn.execute(Department.__table__.select().with_only_columns(Department.slug))}
        for d in depts.values():
            values = dict(name=d.name, abbreviation=d.abbreviation, is_dhsc=d.is_dhsc, scope=d.scope, note=d.note)
            if d.slug in existing:
                conn.execute(Department.__table__.update().where(Department.slug == d.slug).values(**values))
            else:
                conn.execute(insert(Department).values(slug=d.slug, **values))
        if lineage:
            conn.execute(
                insert(DepartmentLineage),
                [
                    dict(
                        name=r["name"], abbreviation=r.get("abbreviation"), slug=r.get("slug"),
                        used_from=r.get("used_from"), used_until=r.get("used_until"), current_slug=r["current"],
                        functions=r.get("functions", "all"), note=r.get("note"),
                    )
                    for r in lineage
                ],
            )
    return len(depts)
