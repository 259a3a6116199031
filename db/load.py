"""Loading observations: idempotent and set-based, inside the caller's transaction, in chunks.

First load of a source's indicators: rows go straight into the table. Later loads: rows go in chunks into
a temporary staging table, then one INSERT .. ON CONFLICT DO UPDATE writes only rows that are new or whose
values changed (an unchanged row keeps the run that first loaded it, so a repeated refresh changes
nothing), and one DELETE removes rows of the loaded indicators that the source no longer publishes, except
keys whose new row validation rejected (their stored value is kept, counted in `kept`). Before that DELETE, the
shrink guard: a load that would remove more than a set share of the indicators' rows, or every row of an area
type an indicator had, raises ShrinkRefused (the caller's transaction rolls back) unless allowed.
A key repeated across chunks keeps its first row (counted in `repeated`). Works the same on SQLite
(3.39+) and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Float, text

from db.columns import per_distinct
from db.models import OBSERVATION_KEY, OBSERVATION_VALUES, Observation

COLUMNS = OBSERVATION_KEY + OBSERVATION_VALUES + ("run_id",)
NUMBER_COLUMNS = tuple(c.name for c in Observation.__table__.columns if isinstance(c.type, Float))
CHUNK_ROWS = 50_000


class ShrinkRefused(Exception):
    """The load would remove more of the stored rows than the shrink guard allows."""


@dataclass
class ShrinkGuard:
    max_share: float  # the largest share (0-1) of the loaded indicators' stored rows a load may remove
    allow: bool = False  # the operator's override (--allow-shrink)


@dataclass
class LoadResult:
    written: int  # inserted or changed
    deleted: int
    total: int  # rows offered
    repeated: int  # rows whose key an earlier chunk already had (first kept)
    kept: int = 0  # stored rows kept because the new row for their key was rejected


DATE_COLUMNS = ("period_start", "period_end")


def _db_column(values: pd.Series, name: str, sqlite: bool) -> list:
    """One column as the DB-API values the database stores, NULL (None) for missing. Column by column in
    numpy: a Python call per cell (the sqlite3 date adapter, pandas' per-row where) costs more than the insert."""
    if name in DATE_COLUMNS:  # ISO text on SQLite, as SQLAlchemy's Date stores it there; dates for PostgreSQL
        return per_distinct(pd.to_datetime(values),
                            lambda dates: [d.strftime("%Y-%m-%d") if sqlite else d.date() for d in dates]).tolist()
    if name in NUMBER_COLUMNS:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = numbers.tolist()
        for at in np.isnan(numbers).nonzero()[0].tolist():  # NaN is NULL (PostgreSQL would store NaN); few cells
            out[at] = None
        return out
    return per_distinct(values, pd.Index.tolist).tolist()  # text: one Python object per distinct value


def _rows(frame: pd.DataFrame, run_id: int, sqlite: bool) -> Iterator[tuple[int, Iterator[tuple]]]:
    """(row count, rows) per chunk of CHUNK_ROWS."""
    cols = [c for c in COLUMNS if c != "run_id"]
    order = None
    if frame["indicator_id"].nunique() > 1:
        # in key order: SQLite appends to the key's B-tree instead of jumping around it (several times faster for a
        # payload that interleaves indicators, e.g. one row per area with a column per indicator). The order is
        # worked out on integer codes and taken chunk by chunk: no sorted copy of the whole frame in memory.
        codes = [pd.factorize(frame[c], sort=True)[0] for c in reversed(OBSERVATION_KEY)]
        order = np.lexsort(codes)
        del codes
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS] if order is None else frame.take(order[start : start + CHUNK_ROWS])
        columns = [_db_column(part[c], c, sqlite) for c in cols]
        yield len(part), zip(*columns, repeat(run_id, len(part)))


def _insert(conn: Connection, table: str, rows: Iterable[tuple]) -> int:
    """Observation rows in; a key already there is kept. Returns how many rows went in."""
    return insert_rows(conn, table, COLUMNS, rows, f"ON CONFLICT ({', '.join(OBSERVATION_KEY)}) DO NOTHING")


def insert_rows(conn: Connection, table: str, columns, rows: Iterable[tuple], suffix: str = "") -> int:
    """INSERT through executemany on the DB-API cursor, inside the caller's transaction: for bulk loads, where
    SQLAlchemy's per-row processing costs more than the insert. `rows`: tuples in `columns` order, plain Python
    values (None for NULL). Returns how many rows went in."""
    ph = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([ph] * len(columns))}) {suffix}"
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            before = conn.connection.total_changes
            cursor.executemany(sql, rows)
            return conn.connection.total_changes - before
        cursor.executemany(sql, rows)
        return cursor.rowcount
    finally:
        cursor.close()


def load_observations(
    conn: Connection, frames: Iterable[pd.DataFrame] | pd.DataFrame, run_id: int, indicator_ids: Iterable[str],
    keep: list[pd.DataFrame] | None = None, guard: ShrinkGuard | None = None,
) -> LoadResult:
    """Make the stored observations equal to the rows given, for every indicator that has rows among them.
    `frames`: one frame or an iterable of frames (db.models columns), consumed chunk by chunk so memory stays
    bounded. `indicator_ids`: the source's indicators (decides the first-load fast path). `keep`: frames of
    OBSERVATION_KEY columns whose stored rows stay although absent from `frames` (their new row was rejected);
    read after `frames` is consumed, so the caller may fill it meanwhile. `guard`: the shrink guard. Call inside
    a transaction; nothing is committed here."""
    frames = [frames] if isinstance(frames, pd.DataFrame) else frames
    sqlite = conn.dialect.name == "sqlite"
    ids = sorted(set(indicator_ids))
    params = {f"i{n}": v for n, v in enumerate(ids)}
    in_list = ", ".join(f":i{n}" for n in range(len(ids))) or "NULL"
    existing = conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM observation WHERE indicator_id IN ({in_list}))"), params
    ).scalar()
    total = written = 0
    if not existing:
        for frame in frames:
            for count, rows in _rows(frame, run_id, sqlite):
                written += _insert(conn, "observation", rows)
                total += count
            del frame  # released before the next payload is read, parsed and validated
        return LoadResult(written=written, deleted=0, total=total, repeated=total - written)

    key = ", ".join(OBSERVATION_KEY)
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TABLE IF EXISTS temp.stage_observation"))
        conn.execute(text("CREATE TEMP TABLE stage_observation AS SELECT * FROM observation WHERE 0"))
    else:
        conn.execute(text("DROP TABLE IF EXISTS stage_observation"))
        conn.execute(text("CREATE TEMP TABLE stage_observation (LIKE observation) ON COMMIT DROP"))
    conn.execute(text(f"CREATE UNIQUE INDEX stage_observation_key ON stage_observation ({key})"))
    staged = 0
    for frame in frames:
        for count, rows in _rows(frame, run_id, sqlite):
            staged += _insert(conn, "stage_observation", rows)
            total += count
        del frame  # released before the next payload is read, parsed and validated
    cols = ", ".join(COLUMNS)
    changed = " OR ".join(f"observation.{c} IS DISTINCT FROM excluded.{c}" for c in OBSERVATION_VALUES)
    updates = ", ".join(f"{c} = excluded.{c}" for c in OBSERVATION_VALUES + ("run_id",))
    written = conn.execute(
        text(
            f"INSERT INTO observation ({cols}) SELECT {cols} FROM stage_observation WHERE true "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {changed}"
        )
    ).rowcount
    match = " AND ".join(f"s.{c} = observation.{c}" for c in OBSERVATION_KEY)
    gone = ("observation.indicator_id IN (SELECT DISTINCT indicator_id FROM stage_observation) "
            f"AND NOT EXISTS (SELECT 1 FROM stage_observation s WHERE {match})")
    kept = 0
    keys = [k for k in (keep or []) if len(k)]
    if keys:
        _stage_keys(conn, pd.concat(keys, ignore_index=True), sqlite)
        kept_rule = f"EXISTS (SELECT 1 FROM stage_keep s WHERE {match})"
        kept = conn.execute(text(f"SELECT COUNT(*) FROM observation WHERE {gone} AND {kept_rule}")).scalar()
        gone += f" AND NOT {kept_rule}"
    if guard is not None and not guard.allow:
        _check_shrink(conn, gone, guard)
    deleted = conn.execute(text(f"DELETE FROM observation WHERE {gone}")).rowcount
    conn.execute(text("DROP TABLE IF EXISTS stage_observation"))
    conn.execute(text("DROP TABLE IF EXISTS stage_keep"))
    return LoadResult(written=written, deleted=deleted, total=total, repeated=total - staged, kept=kept)


def _stage_keys(conn: Connection, keys: pd.DataFrame, sqlite: bool) -> None:
    """The keys whose stored rows must stay, in a temporary table beside the staged rows."""
    key = ", ".join(OBSERVATION_KEY)
    if sqlite:
        conn.execute(text("DROP TABLE IF EXISTS temp.stage_keep"))
        conn.execute(text(f"CREATE TEMP TABLE stage_keep AS SELECT {key} FROM observation WHERE 0"))
    else:
        conn.execute(text("DROP TABLE IF EXISTS stage_keep"))
        conn.execute(text(f"CREATE TEMP TABLE stage_keep AS SELECT {key} FROM observation WITH NO DATA"))
        conn.execute(text("ALTER TABLE stage_keep ALTER COLUMN area_code TYPE text, ALTER COLUMN sex TYPE text, "
                          "ALTER COLUMN age TYPE text, ALTER COLUMN category_type TYPE text, "
                          "ALTER COLUMN category TYPE text, ALTER COLUMN period TYPE text"))
    conn.execute(text(f"CREATE INDEX stage_keep_key ON stage_keep ({key})"))
    keys = keys.drop_duplicates()
    columns = [per_distinct(keys[c].astype(str), pd.Index.tolist).tolist() for c in OBSERVATION_KEY]
    insert_rows(conn, "stage_keep", OBSERVATION_KEY, zip(*columns))


def _check_shrink(conn: Connection, gone: str, guard: ShrinkGuard) -> None:
    """Refuse a load that removes more than guard.max_share of the loaded indicators' stored rows, or every row of
    an area type an indicator had (a reply holding only England, a publisher dropping districts). Asked only when
    something would be removed, so a repeated refresh pays nothing for it."""
    removing = conn.execute(text(f"SELECT COUNT(*) FROM observation WHERE {gone}")).scalar()
    if not removing:
        return
    stored = conn.execute(text(  # the loaded indicators' rows, as stored before this load's deletions
        "SELECT COUNT(*) FROM observation WHERE indicator_id IN (SELECT DISTINCT indicator_id FROM stage_observation)"
    )).scalar()
    share = removing / stored if stored else 0.0
    lost = conn.execute(text(
        "SELECT DISTINCT o.indicator_id, a.type FROM observation o JOIN area a ON a.code = o.area_code "
        f"WHERE {gone.replace('observation.', 'o.')} AND NOT EXISTS ("
        "SELECT 1 FROM stage_observation s JOIN area b ON b.code = s.area_code "
        "WHERE s.indicator_id = o.indicator_id AND b.type = a.type) ORDER BY 1, 2"
    )).all()
    if share <= guard.max_share and not lost:
        return
    why = []
    if share > guard.max_share:
        why.append(f"would remove {removing:,} of {stored:,} stored rows ({share:.1%}, more than the "
                   f"{guard.max_share:.0%} allowed)")
    if lost:
        pairs = ", ".join(f"{i} {t}" for i, t in lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        why.append(f"would lose every row of an area type ({pairs})")
    raise ShrinkRefused(
        " and ".join(why) + "; nothing was changed. If the publisher really withdrew these figures, run again with "
        "--allow-shrink (or raise TRACKER_SHRINK_LIMIT)"
    )


@contextmanager
def indexes_built_after(engine: Engine):
    """For a bulk build into an empty observation table: drop its secondary indexes and build each once at the
    end (one sorted build is quicker than inserting key by key). They are rebuilt even when the build fails,
    and db.engine.upgrade rebuilds them should the process die in between."""
    indexes = list(Observation.__table__.indexes)
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn, checkfirst=True)
    try:
        yield
    finally:
        ensure_indexes(engine)


def ensure_indexes(engine: Engine) -> None:
    with engine.begin() as conn:
        for index in Observation.__table__.indexes:
            index.create(conn, checkfirst=True)
