"""Loading observations: idempotent and set-based, inside the caller's transaction.

Rows go in chunks into a temporary staging table, then one INSERT .. ON CONFLICT DO UPDATE writes only
rows that are new or whose values changed (so an unchanged row keeps the run that first loaded it, and a
repeated refresh changes nothing), and one DELETE removes rows of the loaded indicators that the source
no longer publishes. Works the same on SQLite (3.39+) and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import pandas as pd
from sqlalchemy import Connection, text

from db.models import OBSERVATION_KEY, OBSERVATION_VALUES

COLUMNS = OBSERVATION_KEY + OBSERVATION_VALUES + ("run_id",)
CHUNK_ROWS = 50_000


@dataclass
class LoadResult:
    written: int  # inserted or changed
    deleted: int
    total: int  # rows offered


def _chunks(frame: pd.DataFrame, run_id: int) -> Iterator[list[tuple]]:
    cols = [c for c in COLUMNS if c != "run_id"]
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS][cols]
        part = part.astype(object).where(part.notna(), None)  # NaN is NULL (PostgreSQL would store NaN)
        yield [(*row, run_id) for row in part.itertuples(index=False, name=None)]


def _executemany(conn: Connection, sql: str, rows: list[tuple]) -> None:
    # the DB-API cursor directly: SQLAlchemy's per-row parameter processing costs more than the insert
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def load_observations(
    conn: Connection, chunks: Iterable[pd.DataFrame] | pd.DataFrame, run_id: int, indicator_ids: Iterable[str]
) -> LoadResult:
    """Make the observations of `indicator_ids` equal to the rows given (one frame or an iterable of
    frames with db.models columns). Call inside a transaction; nothing is committed here."""
    frames = [chunks] if isinstance(chunks, pd.DataFrame) else chunks
    ids = sorted(set(indicator_ids))
    dialect = conn.dialect.name
    ph = "?" if dialect == "sqlite" else "%s"
    cols = ", ".join(COLUMNS)
    marks = ", ".join([ph] * len(COLUMNS))
    params = {f"i{n}": v for n, v in enumerate(ids)}
    in_list = ", ".join(f":i{n}" for n in range(len(ids))) or "NULL"

    existing = conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM observation WHERE indicator_id IN ({in_list}))"), params
    ).scalar()
    total = 0
    if not existing:
        # first load of these indicators: straight into the table, the fast path
        for frame in frames:
            for rows in _chunks(frame, run_id):
                _executemany(conn, f"INSERT INTO observation ({cols}) VALUES ({marks})", rows)
                total += len(rows)
        return LoadResult(written=total, deleted=0, total=total)

    if dialect == "sqlite":
        conn.execute(text("DROP TABLE IF EXISTS temp.stage_observation"))
        conn.execute(text("CREATE TEMP TABLE stage_observation AS SELECT * FROM observation WHERE 0"))
    else:
        conn.execute(text("DROP TABLE IF EXISTS stage_observation"))
        conn.execute(text("CREATE TEMP TABLE stage_observation (LIKE observation) ON COMMIT DROP"))
    for frame in frames:
        for rows in _chunks(frame, run_id):
            _executemany(conn, f"INSERT INTO stage_observation ({cols}) VALUES ({marks})", rows)
            total += len(rows)
    key = ", ".join(OBSERVATION_KEY)
    conn.execute(text(f"CREATE INDEX stage_observation_key ON stage_observation ({key})"))
    changed = " OR ".join(f"observation.{c} IS DISTINCT FROM excluded.{c}" for c in OBSERVATION_VALUES)
    updates = ", ".join(f"{c} = excluded.{c}" for c in OBSERVATION_VALUES + ("run_id",))
    written = conn.execute(
        text(
            f"INSERT INTO observation ({cols}) SELECT {cols} FROM stage_observation WHERE true "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {changed}"
        )
    ).rowcount
    match = " AND ".join(f"s.{c} = observation.{c}" for c in OBSERVATION_KEY)
    deleted = conn.execute(
        text(
            f"DELETE FROM observation WHERE indicator_id IN ({in_list}) "
            f"AND NOT EXISTS (SELECT 1 FROM stage_observation s WHERE {match})"
        ),
        params,
    ).rowcount
    conn.execute(text("DROP TABLE IF EXISTS stage_observation"))
    return LoadResult(written=written, deleted=deleted, total=total)
