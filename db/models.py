"""SQLAlchemy 2 models. The words are the project's shared words (see docs/architecture in the README):
area, indicator, observation, period, department, run."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Small facts about the database itself, e.g. the checksum of the geography files it was built from."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Department(Base):
    """A Whitehall ministerial department as it is today, keyed by its GOV.UK slug."""

    __tablename__ = "department"

    slug: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    abbreviation: Mapped[str] = mapped_column(String(20))
    is_dhsc: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class DepartmentLineage(Base):
    """A name a department (or its predecessor) has been known by, and the department that holds
    those functions today. A predecessor split by function has one row per successor."""

    __tablename__ = "department_lineage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    abbreviation: Mapped[str | None] = mapped_column(String(20))
    slug: Mapped[str | None] = mapped_column(String(120))
    used_from: Mapped[date | None] = mapped_column(Date)
    used_until: Mapped[date | None] = mapped_column(Date)  # NULL: still in use
    current_slug: Mapped[str] = mapped_column(ForeignKey("department.slug"))
    functions: Mapped[str] = mapped_column(Text, default="all")  # which functions went to current_slug
    note: Mapped[str | None] = mapped_column(Text)


class Area(Base):
    """A place by its ONS GSS code: england, region, icb, utla, ltla or lsoa."""

    __tablename__ = "area"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10), index=True)
    vintage: Mapped[str] = mapped_column(String(20))  # boundary vintage, e.g. "LAD24", "ICB24"
    nhs_code: Mapped[str | None] = mapped_column(String(10))  # ODS code for ICBs


class AreaLink(Base):
    """Child area within parent area. share is the fraction of the child in the parent (1 when whole);
    share_basis says how a split was measured ("whole", "households", "lsoa_count")."""

    __tablename__ = "area_link"

    child_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    parent_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    parent_type: Mapped[str] = mapped_column(String(10), index=True)
    share: Mapped[float] = mapped_column(Float, default=1.0)
    share_basis: Mapped[str] = mapped_column(String(20), default="whole")

    __table_args__ = (Index("ix_area_link_parent", "parent_code"),)


class AreaCodeHistory(Base):
    """An older local-authority code and the current (2024) code(s) it maps to. A former district merged
    into a new unitary maps to one code; codes are never guessed."""

    __tablename__ = "area_code_history"

    old_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    current_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    old_name: Mapped[str] = mapped_column(String(200))
    last_year: Mapped[int] = mapped_column(Integer)  # last year the old code was in use


class Indicator(Base):
    __tablename__ = "indicator"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    domain: Mapped[str] = mapped_column(String(40), index=True)
    unit: Mapped[str] = mapped_column(String(80))
    value_type: Mapped[str] = mapped_column(String(20))
    polarity: Mapped[str] = mapped_column(String(20))
    department_slug: Mapped[str] = mapped_column(ForeignKey("department.slug"), index=True)
    secondary_departments: Mapped[list] = mapped_column(JSON, default=list)
    producer: Mapped[str] = mapped_column(String(300))
    rationale: Mapped[str] = mapped_column(Text)
    definition: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(40), index=True)
    source_id: Mapped[str] = mapped_column(String(200))
    source_url: Mapped[str | None] = mapped_column(Text)
    area_types: Mapped[list] = mapped_column(JSON, default=list)
    headline_outcome: Mapped[bool] = mapped_column(Boolean, default=False)
    caveats: Mapped[str | None] = mapped_column(Text)
    multiplier: Mapped[float | None] = mapped_column(Float)  # 100 for %, 1000 for per 1,000 (CIs from counts)
    default_sex: Mapped[str] = mapped_column(String(20), default="Persons")  # sex used for headline figures
    ci_method: Mapped[str] = mapped_column(String(20), default="published")  # published | wilson | byar | none
    ci_reason: Mapped[str | None] = mapped_column(Text)  # why ci_method is none


class Run(Base):
    """One pipeline run of one source: the provenance of everything it loaded."""

    __tablename__ = "run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40), index=True)
    mode: Mapped[str] = mapped_column(String(10))  # live | offline | replay
    status: Mapped[str] = mapped_column(String(12))  # running | succeeded | failed | skipped
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    locations: Mapped[list] = mapped_column(JSON, default=list)  # URLs or bundled files read
    checksums: Mapped[dict] = mapped_column(JSON, default=dict)  # location -> sha256 of the raw payload
    payload_meta: Mapped[dict | None] = mapped_column(JSON)  # location -> what the parser needs besides the bytes
    replay_of: Mapped[int | None] = mapped_column(Integer)  # mode "replay": the run whose archived payloads were re-read
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rows_unmapped: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    period_min: Mapped[str | None] = mapped_column(String(40))
    period_max: Mapped[str | None] = mapped_column(String(40))
    latest_period_end: Mapped[date | None] = mapped_column(Date)
    problems: Mapped[dict] = mapped_column(JSON, default=dict)  # rejected/unmapped counts by reason, with examples
    error: Mapped[str | None] = mapped_column(Text)


class Observation(Base):
    """indicator x area x period x sex x age x category -> value. Suppressed or missing values are NULL
    with a note, never 0. Headline rows have category_type = category = ''."""

    __tablename__ = "observation"

    indicator_id: Mapped[str] = mapped_column(ForeignKey("indicator.id"), primary_key=True)
    area_code: Mapped[str] = mapped_column(ForeignKey("area.code"), primary_key=True)
    period: Mapped[str] = mapped_column(String(40), primary_key=True)
    sex: Mapped[str] = mapped_column(String(20), primary_key=True, default="Persons")
    age: Mapped[str] = mapped_column(String(40), primary_key=True, default="All ages")
    category_type: Mapped[str] = mapped_column(String(120), primary_key=True, default="")
    category: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    value: Mapped[float | None] = mapped_column(Float)
    lci95: Mapped[float | None] = mapped_column(Float)
    uci95: Mapped[float | None] = mapped_column(Float)
    lci998: Mapped[float | None] = mapped_column(Float)
    uci998: Mapped[float | None] = mapped_column(Float)
    count: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    # the publisher's own comparison with England where it publishes one (Fingertips: Better, Similar, Worse,
    # Higher, Lower), kept as published; the run (run_id) says which source
    published_comparison: Mapped[str | None] = mapped_column(String(20))
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id"))

    __table_args__ = (
        Index("ix_observation_area", "area_code", "indicator_id"),
    )


OBSERVATION_KEY = ("indicator_id", "area_code", "period", "sex", "age", "category_type", "category")
OBSERVATION_VALUES = (
    "period_start", "period_end", "value", "lci95", "uci95", "lci998", "uci998", "count", "denominator", "note",
    "published_comparison",
)


class AnalysisSave(Base):
    """One complete save of the precomputed analysis (tracker.analysis.saved): which data version and which analysis
    code it belongs to. Written in the same transaction as its parts, so its presence means the save is whole."""

    __tablename__ = "analysis_save"

    data_version: Mapped[str] = mapped_column(String(80), primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(40), primary_key=True)
    parts: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    saved_at: Mapped[datetime] = mapped_column(DateTime)


class AnalysisPart(Base):
    """A part of a save: part 0 is its JSON structure, the others one Parquet frame each (data, never code)."""

    __tablename__ = "analysis_part"

    data_version: Mapped[str] = mapped_column(String(80), primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class AnalysisRow(Base):
    """The comparisons, trends and ICB figures of one area for one indicator, period and sex, as the dashboard and the
    exports show them (tracker.analysis.place.area_rows): an ordinary table of a save, read a few areas at a time,
    so a dashboard process does not hold every area's rows. Written in the save's own transaction."""

    __tablename__ = "analysis_row"

    # keyed by area first: an area's rows are read together (and, in SQLite, stored together: WITHOUT ROWID)
    data_version: Mapped[str] = mapped_column(String(80), primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(40), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the order the analysis gives an area's rows
    indicator_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(20))
    latest: Mapped[bool] = mapped_column(Boolean)  # the latest period of its area, indicator and sex
    value: Mapped[float | None] = mapped_column(Float)
    lci95: Mapped[float | None] = mapped_column(Float)
    uci95: Mapped[float | None] = mapped_column(Float)
    lci998: Mapped[float | None] = mapped_column(Float)
    uci998: Mapped[float | None] = mapped_column(Float)
    count: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    england_value: Mapped[float | None] = mapped_column(Float)
    comparison: Mapped[str | None] = mapped_column(Text)
    comparison_level: Mapped[str | None] = mapped_column(Text)
    comparison_label: Mapped[str | None] = mapped_column(Text)
    comparison_basis: Mapped[str | None] = mapped_column(Text)
    position: Mapped[str | None] = mapped_column(Text)
    position_only: Mapped[bool] = mapped_column(Boolean)
    min_of_type: Mapped[float | None] = mapped_column(Float)
    max_of_type: Mapped[float | None] = mapped_column(Float)
    trend: Mapped[str | None] = mapped_column(Text)
    trend_method: Mapped[str | None] = mapped_column(Text)
    red_red: Mapped[bool] = mapped_column(Boolean)
    icb_value: Mapped[float | None] = mapped_column(Float)
    icb_method: Mapped[str | None] = mapped_column(Text)
    figure_method: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    approximate: Mapped[bool | None] = mapped_column(Boolean)
    ci_source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(Integer)  # the run that loaded a published figure; none if built

    __table_args__ = {"sqlite_with_rowid": False}
