"""Evidence packs for ICS strategy teams: the tracker's figures for chosen areas as CSV or Excel.

One row per area x indicator x period x sex: headline rows only (no breakdown categories, each indicator's headline
age), as tracker.analysis computes them. Every number comes from tracker.analysis; this module only chooses areas,
labels, orders and writes. `tracker export` and the dashboard's download buttons both call write_export (the
dashboard through export_bytes), so the same choice gives the same bytes. DATA_DICTIONARY describes every column;
docs/export-columns.md is generated from it (`python -m tracker.exports`).

Safe to open in Excel: the CSV is UTF-8 with a byte-order mark; numbers are plain decimals at full precision, never
quoted; every text cell is quoted, and one that begins with =, +, -, @, a tab or a carriage return gets a leading
apostrophe (OWASP CSV injection guidance), so a name can never run as a formula. In the xlsx every text is written
as a string (never a formula) and such cells carry Excel's own quote prefix."""

from __future__ import annotations

import difflib
import io
import math
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from db.columns import per_distinct
from db.models import AreaCodeHistory, Run
from tracker import departments as dept_mod
from tracker.analysis import (
    CAVEAT, area_info, associations, icb_drilldown, indicator_catalog,
    latest_observations,
)
from tracker.analysis.data import get_store, headline_sex
from tracker.analysis.dependence import place_ranking
from tracker.analysis.place import area_rows
from tracker.analysis.peers import with_peers
from tracker.catalog import DOMAINS
from tracker.config import PROJECT_ROOT
from tracker.geography import LISTABLE_TYPES, list_areas

FORMATS = ("csv", "xlsx")
DOCS_FILE = PROJECT_ROOT / "docs" / "export-columns.md"
BOM = "\ufeff"
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576  # Excel's limit, header included

# Outcome id -> its column; fixed so the columns stay the same whatever the catalog holds.
HEADLINE_OUTCOMES = {
    "life-expectancy": "Aligned rho: life expectancy",
    "healthy-life-expectancy": "Aligned rho: healthy life expectancy",
    "preventable-mortality-u75": "Aligned rho: preventable mortality under 75",
    "life-expectancy-inequality": "Aligned rho: inequality in life expectancy",
}
AREA_KINDS = {"E92": "England", "E12": "Region", "E54": "Integrated care board", "E10": "County (upper tier)",
              "E06": "Unitary authority", "E07": "District (lower tier)", "E08": "Metropolitan district",
              "E09": "London borough"}
TYPE_ORDER = {"england": 0, "region": 1, "icb": 2, "utla": 3, "ltla": 4}
POLARITY_WORDS = {"higher_is_better": "Higher is better", "lower_is_better": "Lower is better",
                  "no_judgement": "No judgement"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "number" or "date": how the cell is written
    width: int  # xlsx column width, in characters
    meaning: str


_RHO = ("Spearman's rank correlation across English local authorities between this indicator and {outcome}, aligned "
        "so that a positive value means a worse value of this indicator goes with worse {outcome}: the outcome's "
        "latest period and headline sex, the indicator's nearest period with at least 20 local authorities, district "
        "level where both are published for districts, else upper tier (docs/methods.md, 7.1). The same figure on "
        "every row of the indicator in that sex. It is an association across areas, not evidence that the indicator "
        "causes the outcome (see the caveat below). Empty where not computed: indicators that are not determinants "
        "(health outcomes, the overall IMD and the other IoD measures methods 7.1 lists, counts, ranks), indicators "
        "with no polarity or too few local authorities, and rows in a sex other than the one used.")

DATA_DICTIONARY: tuple[Column, ...] = (
    Column("Area code", "text", 11, "ONS code of the area the row's figures are for: E92 England, E12 region, E54 "
           "integrated care board (ICB), E10 county, E06 unitary authority, E07 district, E08 metropolitan district, "
           "E09 London borough. 2024 boundaries; figures published on older codes are placed on today's codes."),
    Column("Area name", "text", 28, "The area's official name."),
    Column("Area type", "text", 20, "England, Region, Integrated care board, County (upper tier), Unitary authority, "
           "District (lower tier), Metropolitan district or London borough."),
    Column("Included as", "text", 30, "Why the area is in the pack. \"Requested area\": asked for. \"Local authority "
           "in E54...\": a local authority of a requested ICB, including one only partly inside it. \"County (upper "
           "tier) for districts in E54...\": the county council of two-tier districts in a requested ICB, included "
           "because figures published only for upper-tier authorities exist for the county, not its districts; they "
           "are on the county's rows and are not copied to the districts. An area asked for directly is always \"Requested "
           "area\" (with the ICB holding its largest share); an area in two requested ICBs appears once, under the "
           "first ICB by code."),
    Column("ICB code", "text", 11, "For a local authority: the ICB the row is read against, i.e. the requested ICB it "
           "came in through, otherwise the ICB holding the largest share of it. For an ICB: the ICB itself. For a "
           "county in an ICB's pack: that ICB. Empty for England, regions and counties asked for on their own."),
    Column("ICB name", "text", 34, "Name of the ICB in ICB code."),
    Column("Share of area in ICB", "number", 10, "For a local authority: the fraction of it inside that ICB (1 = "
           "wholly inside). For the 13 local authorities split between ICBs it is the authority's households in the "
           "ICB over all its households (DESNZ 2021 households per LSOA), or its share of LSOAs where households are "
           "missing. Empty for other areas."),
    Column("ICB split", "text", 28, "For a local authority split between ICBs: every ICB and the share of the "
           "authority in it, e.g. \"E54000050: 0.62; E54000051: 0.38\" (two decimals). Empty when it is wholly in one ICB."),
    Column("Indicator ID", "text", 30, "The tracker's stable indicator id (`tracker indicators` lists them)."),
    Column("Indicator", "text", 45, "The indicator's title."),
    Column("Domain", "text", 16, "The wider determinant it belongs to: " + ", ".join(DOMAINS) + "."),
    Column("Department (abbreviation)", "text", 10, "Abbreviation of the responsible department."),
    Column("Department", "text", 34, "The responsible Whitehall department: the policy owner whose levers and "
           "ministerial accountability cover the determinant (not necessarily the producer), named as it is today "
           "(figures published under an old name such as DLUHC or BEIS are tagged with today's department)."),
    Column("Secondary departments", "text", 16, "Abbreviations of other departments that share the policy, "
           "separated by \"; \". Empty when none."),
    Column("Producer", "text", 34, "The body that compiles or publishes the statistic."),
    Column("Unit", "text", 16, "The unit of Value, lower and upper CI and the England and ICB values."),
    Column("Polarity", "text", 14, "\"Higher is better\", \"Lower is better\" or \"No judgement\" (then the comparison "
           "says Higher or Lower, not Better or Worse)."),
    Column("Period", "text", 12, "The period as the publisher labels it, e.g. \"2021 - 23\", \"2023/24\", \"2025 Q4\"."),
    Column("Period start", "date", 11, "First day of the period (YYYY-MM-DD)."),
    Column("Period end", "date", 11, "Last day of the period (YYYY-MM-DD). Without --all-periods each indicator has "
           "its latest period for each area and sex."),
    Column("Sex", "text", 8, "Persons, Male or Female. Every sex an indicator is published for is included; the "
           "analysis uses one headline sex per indicator (e.g. Male for life expectancy)."),
    Column("Age", "text", 9, "The age group as published: \"All ages\" unless the publisher gives one band, e.g. "
           "\"19+ yrs\". One age group per indicator (the one the analysis uses)."),
    Column("Value", "number", 12, "The figure, in Unit, at full precision as held. Empty (never 0) when the "
           "publisher suppressed it or it is missing: Note says why. For an ICB, see Figure method."),
    Column("Lower 95% CI", "number", 12, "Lower limit of the 95% confidence interval: as published, or computed from "
           "the count and denominator (CI source says which). Empty when there is none."),
    Column("Upper 95% CI", "number", 12, "Upper limit of the 95% confidence interval, as for Lower 95% CI."),
    Column("Count", "number", 10, "The numerator (events or people) where published. For an ICB, the sum over its "
           "local authorities (a split authority counting with its share) when the figure is recomputed from counts."),
    Column("Denominator", "number", 12, "The population or base the value is calculated on, where published."),
    Column("England value", "number", 12, "England's figure for the same indicator, period and sex."),
    Column("Compared with England", "text", 16, "A significance judgement only. \"Better\", \"Similar\" or "
           "\"Worse\" (\"Higher\"/\"Lower\"/\"Similar\" for an indicator with no polarity), with the confidence "
           "level: \"(95%)\" when England's value lies outside the area's 95% CI (at least at 95%), \"(99.8%)\" "
           "when it also lies outside the 99.8% CI. Where the publisher gives its own judgement (OHID Fingertips) it "
           "is shown as published; otherwise Fingertips' method on the CIs. \"Not compared\" when there is no CI to "
           "test (many ONS and DfE series, an approximate ICB figure), when the indicator's figure supports no CI "
           "(a modelled estimate, an index, a ratio of medians, money per head: see docs/catalog.md, ci_method), "
           "when a value or England value is missing, and for England itself. Never a position: see Position "
           "among areas."),
    Column("Comparison basis", "text", 24, "What Compared with England rests on: \"published judgement "
           "(<producer>)\", \"published CI\", \"CI computed from counts (Wilson score)\" or \"(Byar / exact "
           "Poisson)\", or \"CI computed from summed counts\" (an ICB figure recomputed from counts). Empty when "
           "not compared."),
    Column("Position among areas", "text", 16, "Where the value lies among areas of the same type in the same "
           "period and sex (districts and unitaries, counties and unitaries, or the 42 ICBs), in fifths: \"Best "
           "fifth\", \"Second-best fifth\", \"Middle fifth\", \"Second-worst fifth\", \"Worst fifth\" by the "
           "indicator's polarity, or \"Highest fifth\" ... \"Lowest fifth\" when it has none. A position, not a "
           "test: the worst fifth is not \"Worse\" than England. Given for every row with a value except "
           "England."),
    Column("ICB value", "number", 12, "For a local authority: the figure of the ICB in ICB code for the same "
           "indicator, period and sex (how ICB figures are made: Figure method, docs/methods.md). Empty otherwise."),
    Column("Similar areas", "text", 26, "The places this row is also compared with. A local authority or county: "
           "\"ONS similar areas (global)\", the 20 nearest neighbours ONS's Explore Local Statistics publishes for it "
           "on its global model (2026 configuration). An ICB: \"Tracker peer ICBs\", the tracker's own group of the "
           "5 ICBs nearest on standardised deprivation, age structure and density (not an official grouping; "
           "docs/methods.md, section 9). Empty for England and regions."),
    Column("Similar areas value", "number", 12, "The similar areas' figure for the same indicator, period and sex: "
           "their pooled rate (counts and denominators summed) where every peer's figure is its count over its "
           "denominator, else the mean of their values (Similar areas method says which). Empty when fewer than half "
           "of the similar areas have a figure (e.g. Welsh or Scottish neighbours, or a district-level neighbour for "
           "a county-level indicator), and on a district's row that shows its county's figure."),
    Column("Similar areas with a figure", "number", 9, "How many of the similar areas have a figure for that "
           "indicator, period and sex (of 20 for a local authority, 5 for an ICB)."),
    Column("Similar areas method", "text", 24, "\"pooled rate (peers' counts and denominators summed)\" or \"mean "
           "of peers' values\"."),
    Column("Compared with similar areas", "text", 16, "The same test as Compared with England, against the "
           "Similar areas value: \"Better\"/\"Worse\" (\"Higher\"/\"Lower\" without polarity) when it lies "
           "outside the area's 95% CI, with \"(99.8%)\" when also outside the 99.8% CI, \"Similar\" inside. \"Not "
           "compared\" for an indicator without confidence intervals (see Position among similar areas) or when a "
           "value is missing."),
    Column("Position among similar areas", "text", 12, "The area's place among itself and the similar areas with a "
           "figure, e.g. \"3 of 19\": 1 = best (1 = highest for an indicator with no polarity). A position, not a "
           "significance test."),
    Column("Trend", "text", 26, "Recent trend of the area's series over its last five points, in Fingertips' words "
           "(\"Increasing and getting worse\", \"No significant change\", \"Cannot be calculated\"...). Describes "
           "the series, so it is the same on every period's row."),
    Column("Trend method", "text", 24, "The test behind Trend, as in Fingertips (weighted regression on the 95% "
           "CIs, or the chi-squared test for trend on counts for indicators Fingertips compares by SPC for "
           "proportions), or why it cannot be calculated (docs/methods.md, Recent trend)."),
    Column("Red-red flag", "text", 8, "\"Yes\" when, in the series' latest period, the area is significantly worse "
           "than England (95% or 99.8%) and its trend is getting worse; otherwise \"No\" (always \"No\" on earlier "
           "periods' rows)."),
    *(Column(name, "number", 11, _RHO.format(outcome=name.split(": ", 1)[1])) for name in HEADLINE_OUTCOMES.values()),
    Column("Department ranking for this area", "text", 40, "Where the row's department stands among the "
           "departments this area's health depends on (docs/methods.md, 7.3), for each headline outcome in its "
           "headline sex, separated by \"; \": e.g. \"life expectancy (Male): 2 of 7 (95% interval 1-4)\". The "
           "score behind it is the area's gap to England on each of the department's indicators that go with the "
           "outcome (in standard deviations of local-authority values, zero where the area is better) times the "
           "strength of that association, weighed by how many indicators there are; the interval comes from "
           "resampling areas and indicators (\"to not ranked\" when in some resamples the department is not "
           "ranked at all). \"rests on one indicator\" is added when the area is behind England on "
           "only one of the department's indicators; \"held back\" when that one indicator is less than a quarter "
           "of a standard deviation from England (then the department is not ranked); \"not ranked\" when the "
           "area is behind England on none. Empty when the department has no indicator that goes with the outcome."),
    Column("Figure method", "text", 24, "How the figure was made. \"published\": as the publisher gives it (every "
           "area other than an ICB, and an ICB the source publishes). \"counted over LSOAs\": a measure built from "
           "LSOAs (the shares of LSOAs in the most deprived 10% on the IoD 2025, fuel poverty) counted over the "
           "area's own LSOAs (an ICB, a county or a region the source does not publish; a local authority split "
           "between ICBs is split by its LSOAs), as MHCLG's File 13 does for ICBs; Note gives the number of LSOAs. "
           "For an ICB the source does not publish, otherwise: "
           "\"recomputed from counts\" (the local authorities' counts and denominators summed, a split authority with "
           "its share, and the value and CI computed again: exact), \"sum of LA values\" (counts), or "
           "\"population-weighted average (approximate)\" (the local authority values weighted by mid-2020 "
           "population; see Note), or, for a directly standardised rate, \"population-weighted average of DSRs "
           "(approximate: no age-specific counts)\" (no CI: a DSR cannot be recomputed without them). A county or region figure the source does not "
           "publish is built the same way from its local authorities (\"sum of LA values\" or \"population-weighted "
           "average (approximate)\"), or, for a measure built from LSOAs, \"counted over LSOAs\"."),
    Column("Approximate", "text", 9, "\"Yes\" when the figure is approximate (an ICB, county or region figure "
           "that is a population-weighted average of its local authorities), else \"No\" (every published figure)."),
    Column("CI source", "text", 22, "Where the 95% CI came from: \"published\" (by the producer), \"computed from "
           "counts (Wilson score)\" for proportions or \"computed from counts (Byar / exact Poisson)\" for rates "
           "(computed by the tracker where the publisher gives a count and denominator but no CI and the indicator's "
           "CI method is wilson or byar, and for a figure recomputed from its local authorities' counts), or \"none\" "
           "when the row has no CI."),
    Column("CI method", "text", 14, "The indicator's catalog ci_method: \"published\" (CIs only as the publisher "
           "gives them), \"wilson\" or \"byar\" (as published, else computed from counts), or \"none: <reason>\" "
           "(the figure supports no CI, e.g. a modelled estimate: never tested against England)."),
    Column("Source URL", "text", 40, "The publisher's page for the indicator."),
    Column("Licence", "text", 22, "The licence the figures are published under (Open Government Licence v3.0)."),
    Column("Loaded on", "date", 11, "Date (UTC) the tracker's refresh run that loaded the figure finished. For an "
           "ICB figure built from local authorities: the latest such date among the figures it was built from."),
    Column("Note", "text", 40, "The publisher's note on the value (e.g. what a suppression marker meant, "
           "\"provisional\"), and for an approximate ICB figure how it was made."),
)
COLUMN_NAMES = [c.name for c in DATA_DICTIONARY]

CAVEATS: tuple[tuple[str, str], ...] = (
    ("Association, not causation", CAVEAT),
    ("What the rows are", "Headline rows only: breakdowns published for some indicators (deprivation deciles, "
     "ethnic group, free school meals...) are not in the pack, because comparisons, trends and ICB figures are made "
     "on headline rows; they stay in the tracker's database. LSOA-level indicators are not in the pack."),
    ("ICB figures", "Where a source does not publish ICB figures, the tracker builds them from the ICB's local "
     "authorities (Figure method says how). A population-weighted average is approximate: it weights local "
     "authority values by mid-2020 population, needs authorities covering at least half the ICB's population, has "
     "no CI and is placed among the 42 ICBs (Position among areas) rather than tested against England. A local authority "
     "split between ICBs counts in each with its share of households."),
    ("Methods", "docs/methods.md in the tracker explains every comparison, trend, confidence interval and "
     "association method in plain English."),
    ("Opening the file", "CSV: UTF-8 with a byte-order mark; numbers are plain decimals at full precision (the "
     "shortest decimal that gives back the stored number), never quoted; every text is quoted. A text that begins "
     "with =, +, -, @, a tab or a carriage return is given a leading apostrophe so a spreadsheet cannot run it as a "
     "formula (OWASP CSV injection guidance): the apostrophe is not part of the name. Excel: numbers carry 16 "
     "significant digits, dates are dates, and text is never a formula."),
)
LICENCE_TEXT = (
    "Contains public sector information licensed under the Open Government Licence v3.0 "
    "(https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/). Each row names the producer, "
    "licence and publisher's page of its figures. Area names, codes and lookups: Source: Office for National "
    "Statistics licensed under the Open Government Licence v.3.0. Households used for split local authorities: "
    "Department for Energy Security and Net Zero, sub-regional fuel poverty statistics (OGL v3.0)."
)


class ExportError(ValueError):
    """A choice the export cannot make (unknown area, department or domain); the message says what is valid."""


@dataclass(frozen=True)
class PackArea:
    code: str
    type: str  # england, region, icb, utla (E10 counties), ltla
    included_as: str
    icb_code: str | None  # see the "ICB code" column
    icb_name: str | None


@dataclass(frozen=True)
class ExportResult:
    rows: int
    areas: int


# ---------------------------------------------------------------------------------------------------------------
# Choosing what goes in


def _known_areas(engine: Engine) -> pd.DataFrame:
    """Every area a user can choose (code, name, type, icb_code), unitaries once as ltla. Memoised with the data
    version's analysis, like the Store's own areas (reading them was a tenth of a pack's time)."""
    def build():
        areas = pd.concat([list_areas(engine, t) for t in LISTABLE_TYPES], ignore_index=True)
        areas["order"] = areas["type"].map({"ltla": 0}).fillna(1)  # a unitary is listed as ltla and as utla
        return areas.sort_values(["order", "code"]).drop_duplicates("code").set_index("code")
    return get_store(engine).derived(("known_areas",), build)


def _unknown_area(engine: Engine, code: str, known: pd.DataFrame) -> ExportError:
    message = f"unknown area code {code!r}; use an E92/E12/E54/E06-E10 code; see `tracker areas`"
    with engine.connect() as conn:
        history = conn.execute(select(AreaCodeHistory.current_code, AreaCodeHistory.old_name)
                               .where(AreaCodeHistory.old_code == code.upper())
                               .order_by(AreaCodeHistory.current_code)).fetchall()
    now = [f"{c} ({known.at[c, 'name']})" for c, _ in history if c in known.index]
    if now:
        return ExportError(f"{message}; {code} ({history[0][1]}) is now {' and '.join(now)}")
    by_name = {n.lower(): c for c, n in zip(known.index, known["name"])}
    close = difflib.get_close_matches(code.lower(), list(by_name), n=3, cutoff=0.75)
    close += [c.lower() for c in difflib.get_close_matches(code.upper(), list(known.index), n=3, cutoff=0.85)]
    hints = [f"{by_name[c]} ({known.at[by_name[c], 'name']})" if c in by_name else f"{c.upper()} ({known.at[c.upper(), 'name']})"
             for c in close]
    return ExportError(f"{message}; did you mean {' or '.join(dict.fromkeys(hints))}?" if hints else message)


def plan_areas(engine: Engine, area_codes) -> list[PackArea]:
    """The areas of the pack in order: requested areas by type (England, regions, ICBs, counties, local authorities)
    and code; each ICB followed by the counties of its two-tier districts and its local authorities. "all" asks for
    every area."""
    codes = [area_codes] if isinstance(area_codes, str) else list(area_codes)
    if not codes:
        raise ExportError("choose at least one area (--area CODE); see `tracker areas`")
    known = _known_areas(engine)
    wanted = []
    for raw in codes:
        code = raw.strip().upper()
        if code == "ALL":
            wanted += list(known.index)
        elif code not in known.index:
            raise _unknown_area(engine, raw, known)
        else:
            wanted.append(code)
    wanted = sorted(set(wanted), key=lambda c: (TYPE_ORDER[known.at[c, "type"]], c))
    requested = {}
    for code in wanted:
        atype = known.at[code, "type"]
        own_icb = code if atype == "icb" else known.at[code, "icb_code"] if atype == "ltla" else None
        requested[code] = PackArea(code, atype, "Requested area", own_icb, known.at[own_icb, "name"] if own_icb else None)
    plan: dict[str, PackArea] = {}
    for code, area in requested.items():
        plan.setdefault(code, area)
        if area.type != "icb":
            continue
        las = icb_drilldown(engine, code)
        members = [(u, "utla", f"County (upper tier) for districts in {code}")
                   for u in sorted({u for u in las["utla_code"].dropna() if known["type"].get(u) == "utla"})]
        members += [(la, "ltla", f"Local authority in {code}") for la in las["la_code"]]
        for member, mtype, why in members:  # an area also asked for directly stays "Requested area"
            plan.setdefault(member, requested.get(member) or PackArea(member, mtype, why, code, area.icb_name))
    return list(plan.values())


def resolve_departments(names) -> list[str]:
    """Slugs for department names, abbreviations or slugs, current or historical (tracker.departments.resolve)."""
    try:
        return [dept_mod.resolve(n).slug for n in names or ()]
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def resolve_domains(names) -> list[str]:
    out = []
    for name in names or ():
        match = [d for d in DOMAINS if d == name.strip().lower()]
        if not match:
            raise ExportError(f"unknown domain {name!r}; use one of: {', '.join(DOMAINS)}")
        out.append(match[0])
    return out


def _indicators(engine: Engine, departments, domains) -> pd.DataFrame:
    """The catalog (indicator_catalog) cut to the chosen departments (lead or secondary) and domains."""
    meta = indicator_catalog(engine).set_index("id", drop=False).rename_axis(None)
    slugs, doms = resolve_departments(departments), resolve_domains(domains)
    keep = pd.Series(True, index=meta.index)
    if slugs:
        keep &= meta["department_slug"].isin(slugs) | meta["secondary_departments"].map(lambda s: bool(set(s or []) & set(slugs)))
    if doms:
        keep &= meta["domain"].isin(doms)
    if not keep.any():
        raise ExportError(f"no indicator matches department {', '.join(departments or ['any'])} and domain "
                          f"{', '.join(domains or ['any'])}; see `tracker indicators`")
    meta = meta[keep].copy()
    abbr = {d.slug: d.abbreviation for d in dept_mod.all_departments()}
    meta["secondary_text"] = meta["secondary_departments"].map(lambda s: "; ".join(abbr.get(x, x) for x in s or []))
    return meta


# ---------------------------------------------------------------------------------------------------------------
# Building the rows


class _Pack:
    """What every area's rows share: indicator metadata, associations, ages, ICB figures and provenance."""

    def __init__(self, engine: Engine, meta: pd.DataFrame, all_periods: bool, area_codes: list[str]):
        self.engine, self.meta, self.all_periods = engine, meta, all_periods
        self.area_codes = set(area_codes)  # every area of the pack: its rankings are worded for these only
        self.ids = list(meta.index)
        self.rho = {column: self._aligned_rho(outcome) for outcome, column in HEADLINE_OUTCOMES.items()}
        self.ages = get_store(engine).headline_ages  # the age group the analysis keeps for each indicator
        self._ranks: pd.Series | None = None
        self._icb: dict[str, tuple[pd.DataFrame, pd.Series]] = {}

    def _aligned_rho(self, outcome: str) -> pd.Series:
        """aligned rho by (indicator_id, sex); empty when the outcome is not in the database or has no LA figures."""
        try:
            table = associations(self.engine, outcome)
        except (KeyError, ValueError):
            return pd.Series(dtype=float)
        return table.dropna(subset=["aligned_rho"]).set_index(["indicator_id", "sex"])["aligned_rho"]

    def ranks(self) -> pd.Series:
        """(area code, department slug) -> the department's ranking text for the area over the headline outcomes."""
        if self._ranks is None:
            joined: dict[tuple[str, str], str] = {}  # in outcome order; a dict, not a groupby: thousands of keys
            for outcome, column in HEADLINE_OUTCOMES.items():
                try:
                    store = get_store(self.engine)
                    store.indicator(outcome)
                    sex = headline_sex(store, outcome)
                    pd_ = place_ranking(store, outcome, sex)  # read only; the ranking, not its evidence
                except (KeyError, ValueError):
                    continue
                n = pd_.groupby("place_code")["rank"].transform("count")
                mine = pd_["place_code"].isin(self.area_codes).to_numpy()
                pd_, n = pd_[mine], n[mine]
                words = [(f"{column.split(': ', 1)[1]} ({sex}): "
                          + ("held back" if h else "not ranked" if r != r else
                             f"{r:.0f} of {k} (95% interval {lo:.0f}-{hi:.0f})" if hi <= k else
                             f"{r:.0f} of {k} (95% interval {lo:.0f} to not ranked)")
                          + (", rests on one indicator" if one and not h else ""))
                         for r, k, lo, hi, h, one in zip(pd_["rank"], n, pd_["rank_lci"], pd_["rank_uci"],
                                                         pd_["held_back"], pd_["rests_on_one_indicator"])]
                for key, word in zip(zip(pd_["place_code"], pd_["department_slug"]), words):
                    joined[key] = f"{joined[key]}; {word}" if key in joined else word
            self._ranks = pd.Series(list(joined.values()), dtype=object, index=pd.MultiIndex.from_tuples(
                list(joined), names=["place_code", "department_slug"]) if joined else None)
        return self._ranks

    def icb(self, code: str) -> tuple[pd.DataFrame, pd.Series]:
        """(its local authorities with shares, its figures by indicator, period and sex)."""
        if code not in self._icb:
            las = icb_drilldown(self.engine, code).set_index("la_code")
            # the ICB's own rows of the saved analysis (its figures, every period and sex), not every ICB's figures
            figures = area_rows(get_store(self.engine), [code], columns=["area_code", "indicator_id", "period", "sex",
                                                                          "value"])
            self._icb[code] = (las, figures.set_index(["indicator_id", "period", "sex"])["value"])
        return self._icb[code]

    def loaded_on(self, areas: list[PackArea], obs: pd.DataFrame) -> pd.Series:
        """Finish date of the run that loaded each row (its area row's run_id); for an ICB figure built from local
        authorities, the latest among the rows it was built from."""
        store = get_store(self.engine)
        keys = ["indicator_id", "period", "sex"]
        when = obs["run_id"].astype(float).map(store.run_finished)
        # an ICB's figure built here (no run loaded it): the rows it was built from (its local authorities' and
        # counties'), read for those figures' indicators and periods only
        built = obs["run_id"].isna().to_numpy() & obs["area_code"].isin([a.code for a in areas if a.type == "icb"])
        built_from = {}
        for code in obs.loc[built, "area_code"].unique():
            las = self.icb(code)[0]
            built_from[code] = [code, *las.index, *(u for u in las["utla_code"].dropna().unique() if u not in las.index)]
        if built_from:
            series = obs.loc[built, ["indicator_id", "period"]].drop_duplicates()
            runs = area_rows(store, sorted(set().union(*built_from.values())), series["indicator_id"].unique(),
                             columns=["area_code", *keys, "run_id"], periods=series.itertuples(index=False, name=None))
            runs = runs[runs["run_id"].notna()]
            runs = runs.assign(finished_at=runs["run_id"].astype(int).map(store.run_finished))
            for code, inputs in built_from.items():
                latest = runs[runs["area_code"].isin(inputs)].groupby(keys)["finished_at"].max()
                mine = built & (obs["area_code"] == code).to_numpy()
                when[mine] = latest.reindex(pd.MultiIndex.from_frame(obs.loc[mine, keys])).to_numpy()
        return pd.Series([t.date() if pd.notna(t) else None for t in pd.to_datetime(when)], index=obs.index, dtype=object)

    def ci_source(self, obs: pd.DataFrame) -> pd.Series:
        """Every row says where its CI came from: as the analysis tags it; for a figure recomputed from its local
        authorities' counts, the method of the indicator's ci_method; "none" without a CI."""
        computed = obs["indicator_id"].map(self.meta["ci_method"]).map(
            {"wilson": "computed from counts (Wilson score)", "byar": "computed from counts (Byar / exact Poisson)"})
        recomputed = obs["figure_method"].eq("recomputed from counts")
        has_ci = obs["lci95"].notna() & obs["uci95"].notna()
        return obs["ci_source"].where(~recomputed, computed).fillna("published").where(has_ci, "none")

    def rows(self, areas: list[PackArea]) -> pd.DataFrame:
        """The pack's rows for `areas`, in their order (several at once: pandas' cost is per call, not per row)."""
        obs = latest_observations(self.engine, [a.code for a in areas], self.ids, all_periods=self.all_periods, sex="all",
                                  extra=["run_id"])
        if obs.empty:
            return pd.DataFrame(columns=COLUMN_NAMES)
        obs = with_peers(self.engine, obs, "global")  # compared with similar areas (ONS global / peer ICBs)
        place = {a.code: i for i, a in enumerate(areas)}
        obs = obs.reset_index(drop=True)
        meta = self.meta.loc[obs["indicator_id"]].reset_index(drop=True)
        # per area: its ICB's figures and its share of it (local authorities in an ICB), and the split if any
        share, split, icb_value = {}, {}, pd.Series(np.nan, index=obs.index, dtype=object)
        for area in areas:
            if not (area.icb_code and area.type == "ltla"):
                continue
            las, figures = self.icb(area.icb_code)
            share[area.code] = float(las.at[area.code, "share"])
            if share[area.code] < 1:
                split[area.code] = area_info(self.engine, area.code).at[0, "icb_shares"]
            mine = obs["area_code"] == area.code
            keys = pd.MultiIndex.from_frame(obs.loc[mine, ["indicator_id", "period", "sex"]])
            icb_value[mine] = figures.reindex(keys).to_numpy()
        by_code = {a.code: a for a in areas}
        code = obs["area_code"]
        by_sex = pd.MultiIndex.from_frame(obs[["indicator_id", "sex"]])
        out = {
            "Area code": code,
            "Area name": obs["area_name"],
            "Area type": code.str[:3].map(AREA_KINDS).fillna(obs["area_type"]),
            "Included as": code.map({c: a.included_as for c, a in by_code.items()}),
            "ICB code": code.map({c: a.icb_code for c, a in by_code.items()}),
            "ICB name": code.map({c: a.icb_name for c, a in by_code.items()}),
            "Share of area in ICB": code.map(share).astype(object).where(code.isin(share), None),
            "ICB split": code.map(split).astype(object).where(code.isin(split), None),
            "Indicator ID": obs["indicator_id"],
            "Indicator": meta["title"],
            "Domain": meta["domain"],
            "Department (abbreviation)": meta["department_abbr"],
            "Department": meta["department_name"],
            "Secondary departments": meta["secondary_text"].replace("", None),
            "Producer": meta["producer"],
            "Unit": meta["unit"],
            "Polarity": meta["polarity"].map(POLARITY_WORDS),
            "Period": obs["period"],
            "Period start": obs["period_start"].dt.date,
            "Period end": obs["period_end"].dt.date,
            "Sex": obs["sex"],
            "Age": obs["indicator_id"].map(self.ages),
            "Value": obs["value"],
            "Lower 95% CI": obs["lci95"],
            "Upper 95% CI": obs["uci95"],
            "Count": obs["count"],
            "Denominator": obs["denominator"],
            "England value": obs["england_value"],
            "Compared with England": obs["comparison_label"],
            "Comparison basis": obs["comparison_basis"],
            "Position among areas": obs["position"],
            "ICB value": icb_value.where(code.isin(share), None),
            "Similar areas": obs["peer_group"],
            "Similar areas value": obs["peer_value"].astype(float),
            "Similar areas with a figure": obs["n_peers_with_value"].where(obs["peer_group"].notna(), None),
            "Similar areas method": obs["peer_method"],
            "Compared with similar areas": obs["peer_comparison_label"].where(obs["peer_group"].notna(), None),
            "Position among similar areas": obs["peer_position"],
            "Trend": obs["trend"],
            "Trend method": obs["trend_method"],
            "Red-red flag": obs["red_red"].map({True: "Yes", False: "No"}),
            **{column: rho.reindex(by_sex).to_numpy() if len(rho) else None for column, rho in self.rho.items()},
            "Department ranking for this area": self.ranks().reindex(
                pd.MultiIndex.from_arrays([code, meta["department_slug"]])).to_numpy(),
            "Figure method": obs["figure_method"].fillna("published"),
            "Approximate": obs["approximate"].map({True: "Yes", False: "No"}).fillna("No"),
            "CI source": self.ci_source(obs),
            "CI method": meta["ci_method"].where(meta["ci_method"] != "none", "none: " + meta["ci_reason"].fillna("")),
            "Source URL": meta["source_url"],
            "Licence": meta["licence"],
            "Loaded on": self.loaded_on(areas, obs),
            "Note": obs["note"],
        }
        frame = pd.DataFrame(out, index=obs.index)
        order = pd.DataFrame({"area": code.map(place), "domain": meta["domain"].map({d: i for i, d in enumerate(DOMAINS)}),
                              "id": obs["indicator_id"], "sex": obs["sex"], "end": obs["period_end"],
                              "period": obs["period"]})
        frame = frame.loc[order.sort_values(list(order.columns), kind="mergesort").index]
        return frame[COLUMN_NAMES].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Writing


def neutralise(text: str) -> str:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + text if text.startswith(DANGEROUS_START) else text


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _csv_cell(value, kind: str) -> str:
    if _missing(value):
        return ""
    if kind == "number":
        return np.format_float_positional(float(value), trim="-")  # plain decimal, shortest exact form
    if kind == "date":
        return value.isoformat()
    return '"' + neutralise(str(value)).replace('"', '""') + '"'


def _csv_column(values: pd.Series, kind: str) -> list[str]:
    """_csv_cell for a whole column, formatting each distinct value once (names, titles, sources and many
    figures repeat down a pack)."""
    return per_distinct(values, lambda distinct: [_csv_cell(v, kind) for v in distinct], "").tolist()


class _CsvWriter:
    def __init__(self, stream, columns: tuple[Column, ...]):
        self.stream, self.kinds, self.rows = stream, [c.kind for c in columns], 0
        stream.write(BOM.encode("utf-8"))
        self._lines([[c.name for c in columns]], ["text"] * len(columns))

    def _lines(self, rows, kinds) -> None:
        self.stream.write("".join(",".join(map(_csv_cell, row, kinds)) + "\r\n" for row in rows).encode("utf-8"))

    def write(self, frame: pd.DataFrame) -> None:
        cells = [_csv_column(frame.iloc[:, i], kind) for i, kind in enumerate(self.kinds)]
        self.stream.write("".join(",".join(row) + "\r\n" for row in zip(*cells)).encode("utf-8"))
        self.rows += len(frame)

    def close(self, about: list[tuple[str, str]], sources: pd.DataFrame) -> None:
        pass  # the dictionary goes in a file of its own (dictionary_bytes)


class _XlsxWriter:
    """Data, Dictionary and About sheets; rows go straight to disk (XlsxWriter's constant_memory mode)."""

    def __init__(self, stream, columns: tuple[Column, ...], created: datetime):
        import xlsxwriter

        self.book = xlsxwriter.Workbook(stream, {"constant_memory": True, "strings_to_numbers": False,
                                                 "strings_to_formulas": False, "strings_to_urls": False})
        self.book.set_properties({"title": "Wider Determinants Tracker evidence pack",
                                  "author": "Wider Determinants Tracker", "created": created})
        self.header = self.book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7"})
        self.wrap = self.book.add_format({"text_wrap": True, "valign": "top"})
        self.date = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.quoted = self.book.add_format({"quote_prefix": True})
        self.columns, self.kinds, self.rows = columns, [c.kind for c in columns], 0
        self.sheet = self._sheet("Data", [(c.name, c.width) for c in columns])

    def _sheet(self, name: str, header: list[tuple[str, int]]):
        sheet = self.book.add_worksheet(name)
        for i, (title, width) in enumerate(header):
            sheet.set_column(i, i, width)
            sheet.write_string(0, i, title, self.header)
        sheet.freeze_panes(1, 0)
        return sheet

    def _cell(self, sheet, row: int, col: int, value, kind: str, fmt=None) -> None:
        if _missing(value):
            return
        if kind == "number":
            sheet.write_number(row, col, float(value))
        elif kind == "date":
            sheet.write_datetime(row, col, value, self.date)
        else:
            text = str(value)
            sheet.write_string(row, col, text, self.quoted if text.startswith(DANGEROUS_START) else fmt)

    def write(self, frame: pd.DataFrame) -> None:
        if self.rows + len(frame) >= XLSX_MAX_ROWS:
            raise ExportError(f"more than {XLSX_MAX_ROWS - 1:,} rows, Excel's limit for a sheet; use --format csv "
                              "or fewer areas")
        for values in frame.itertuples(index=False, name=None):
            self.rows += 1
            for col, (value, kind) in enumerate(zip(values, self.kinds)):
                self._cell(self.sheet, self.rows, col, value, kind)

    def close(self, about: list[tuple[str, str]], sources: pd.DataFrame) -> None:
        self.sheet.autofilter(0, 0, self.rows, len(self.columns) - 1)
        sheet = self._sheet("Dictionary", [("Section", 10), ("Name", 34), ("Type", 8), ("Meaning", 110)])
        for row, values in enumerate(_dictionary_rows(), start=1):
            for col, value in enumerate(values):
                self._cell(sheet, row, col, value, "text", self.wrap)
        sheet.autofilter(0, 0, row, 3)
        sheet = self._sheet("About", [("About", 30), ("Detail", 100), ("Indicators in this pack", 60)])
        row = 0
        for label, text in about:
            row += 1
            self._cell(sheet, row, 0, label, "text")
            self._cell(sheet, row, 1, text, "text", self.wrap)
        row += 2
        for col, title in enumerate(("Producer", "Licence", "Indicators in this pack")):
            sheet.write_string(row, col, title, self.header)
        for values in sources.itertuples(index=False, name=None):
            row += 1
            for col, value in enumerate(values):
                self._cell(sheet, row, col, value, "text", self.wrap)
        self.book.close()


def _dictionary_rows() -> list[tuple[str, str, str, str]]:
    rows = [("Column", c.name, c.kind, c.meaning) for c in DATA_DICTIONARY]
    rows += [("Caveat", heading, "", text) for heading, text in CAVEATS]
    return rows + [("Licence", "Open Government Licence v3.0", "", LICENCE_TEXT)]


def dictionary_bytes() -> bytes:
    """The data dictionary as CSV (UTF-8 with BOM): Section, Name, Type, Meaning; every column of the export, then
    the methods caveats and the licence. The file beside a CSV export, and the dashboard's dictionary download."""
    out = io.BytesIO()
    writer = _CsvWriter(out, tuple(Column(n, "text", 0, "") for n in ("Section", "Name", "Type", "Meaning")))
    writer.write(pd.DataFrame(_dictionary_rows()))
    return out.getvalue()


def dictionary_markdown() -> str:
    """docs/export-columns.md, generated from DATA_DICTIONARY, CAVEATS and LICENCE_TEXT."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Export columns (data dictionary)", "",
             "<!-- Generated from tracker.exports.DATA_DICTIONARY by `python -m tracker.exports`; do not edit by hand. -->",
             "", "`tracker export` and the dashboard's downloads write one row per area x indicator x period x sex, "
             "with these columns in this order. A CSV export has this dictionary beside it (`<name>-dictionary.csv`); "
             "an Excel export has it as the Dictionary sheet.", "", "| # | Column | Type | Meaning |", "|---|---|---|---|"]
    lines += [f"| {i} | {cell(c.name)} | {c.kind} | {cell(c.meaning)} |" for i, c in enumerate(DATA_DICTIONARY, 1)]
    lines += ["", "## Caveats", ""]
    for heading, text in CAVEATS:
        lines += [f"### {heading}", "", text, ""]
    lines += ["## Licence and attribution", "", LICENCE_TEXT, ""]
    return "\n".join(lines)


def _data_date(engine: Engine) -> datetime:
    """When the data last changed (the latest successful run): the xlsx's created date, so the file is reproducible."""
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(Run.finished_at)).where(Run.status == "succeeded")).scalar()
    return (latest or datetime(2000, 1, 1)).replace(microsecond=0)


def _about(engine: Engine, plan: list[PackArea], departments, domains, all_periods: bool) -> list[tuple[str, str]]:
    requested = [a.code for a in plan if a.included_as == "Requested area"]
    return [
        ("Pack", "Wider Determinants Tracker evidence pack: the tracker's figures for the areas below, one row per "
                 "area, indicator, period and sex (Data sheet; columns explained in the Dictionary sheet)."),
        ("Areas requested", "; ".join(requested)),
        ("Areas in the pack", str(len(plan))),
        ("Periods", "every period" if all_periods else "latest period of each indicator"),
        ("Departments", ", ".join(departments) if departments else "all"),
        ("Domains", ", ".join(domains) if domains else "all"),
        ("Data loaded up to", f"{_data_date(engine):%Y-%m-%d} (latest successful refresh run, UTC)"),
        ("Licence", LICENCE_TEXT),
        ("Association, not causation", CAVEAT),
    ]


def _sources(meta: pd.DataFrame) -> pd.DataFrame:
    g = meta.sort_values("id").groupby(["producer", "licence"], sort=True)["id"].agg("; ".join)
    return g.reset_index()


AREAS_AT_ONCE = 25  # areas whose rows are built together: fewer pandas calls, memory still bounded


def write_export(engine: Engine, stream, area_codes, departments=None, domains=None, all_periods: bool = False,
                 fmt: str = "csv") -> ExportResult:
    """Write the pack for `area_codes` (E92/E12/E54/E10/E06-E09 codes, or "all"; an ICB brings its local authorities
    and the counties of its two-tier districts) to the binary `stream`, area by area. departments: names, abbreviations or
    slugs (an indicator matches on its lead or a secondary department); domains: catalog domains; all_periods: every
    period instead of each indicator's latest. Everything is checked before the first byte is written: ExportError
    (a ValueError) names what is valid."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if fmt == "xlsx" and not stream.seekable():
        # a zip written to a pipe differs from one written to a file: build it in a temporary file, then copy
        with tempfile.TemporaryFile() as tmp:
            result = write_export(engine, tmp, area_codes, departments, domains, all_periods, fmt)
            tmp.seek(0)
            shutil.copyfileobj(tmp, stream)
        return result
    plan = plan_areas(engine, area_codes)
    meta = _indicators(engine, departments, domains)
    pack = _Pack(engine, meta, all_periods, [a.code for a in plan])
    writer = _CsvWriter(stream, DATA_DICTIONARY) if fmt == "csv" else _XlsxWriter(stream, DATA_DICTIONARY, _data_date(engine))
    present: set[str] = set()
    for start in range(0, len(plan), AREAS_AT_ONCE):
        rows = pack.rows(plan[start : start + AREAS_AT_ONCE])
        writer.write(rows)
        present.update(rows["Indicator ID"])
    writer.close(_about(engine, plan, departments, domains, all_periods), _sources(meta[meta.index.isin(present)]))
    return ExportResult(rows=writer.rows, areas=len(plan))


def export_bytes(engine: Engine, area_codes, departments=None, domains=None, all_periods: bool = False,
                 fmt: str = "csv") -> bytes:
    """The pack as bytes, for the dashboard's download buttons: byte for byte what `tracker export` writes for the
    same choice. Arguments as write_export."""
    out = io.BytesIO()
    write_export(engine, out, area_codes, departments, domains, all_periods, fmt)
    return out.getvalue()


def default_filename(area_codes, fmt: str, today: date) -> str:
    """pack-E54000050-2025-06-01.csv; several codes are joined, more than three shortened."""
    codes = sorted({c.strip().upper() for c in ([area_codes] if isinstance(area_codes, str) else area_codes)})
    name = "-".join(codes) if len(codes) <= 3 else f"{codes[0]}-and-{len(codes) - 1}-more"
    return f"pack-{name}-{today.isoformat()}.{fmt}"


def dictionary_path(path: Path) -> Path:
    """pack.csv -> pack-dictionary.csv, beside it."""
    return path.with_name(f"{path.stem}-dictionary.csv")


if __name__ == "__main__":
    DOCS_FILE.write_text(dictionary_markdown(), encoding="utf-8")
    print(f"wrote {DOCS_FILE}")
