"""Part 1: loading the same tidy observations into the tracker's observation table, four ways.

Every contender starts from the same per-indicator tidy CSV payloads and ends with the same rows in a copy of
the same initialised database (same schema, keys, indexes and pragmas: WAL, synchronous=NORMAL, foreign keys
on), each in one transaction:
* tracker: tracker.refresh.run_source with a bench-only Source (parse -> validate -> idempotent load, payload
  by payload, provenance recorded, raw payloads archived) -- what a refresh does;
* sqlite-utils: Table.insert_all (rows as lists, its fastest mode) / upsert_all on the key;
* pandas: read_csv then DataFrame.to_sql(if_exists="append"); no repeated load (to_sql has no upsert);
* raw: csv + sqlite3 executemany INSERT / INSERT OR REPLACE: the practical floor.
Each runs in its own subprocess (bench.child) and reports seconds, peak RSS and what it left in the table."""

from __future__ import annotations

import csv
import sqlite3
import time
from pathlib import Path

import pandas as pd

from bench.common import peak_rss_mb
from db.models import OBSERVATION_KEY, OBSERVATION_VALUES
from pipelines.base import NUMERIC_COLUMNS, TIDY_COLUMNS
from bench.synthetic import MARKER

CONTENDERS = ("tracker", "sqlite_utils", "pandas", "raw")
NO_REPEAT = ("pandas",)  # contenders with no repeated (idempotent) load
COLUMNS = list(OBSERVATION_KEY + OBSERVATION_VALUES) + ["run_id"]
BENCH_RUN_ID = 1  # the run row the template database holds for the non-tracker contenders
NUMERIC_AT = [TIDY_COLUMNS.index(c) for c in NUMERIC_COLUMNS]
NOTE_AT = TIDY_COLUMNS.index("note")
ORDER = [TIDY_COLUMNS.index(c) for c in COLUMNS[:-1]]
REPEAT_METHOD = {
    "tracker": "the same refresh again (staging table + INSERT .. ON CONFLICT DO UPDATE only where changed + DELETE "
               "of rows no longer published)",
    "sqlite_utils": "upsert_all(pk=observation key)",
    "pandas": "not supported: to_sql has no upsert; a delete-then-append re-writes every row, i.e. repeats the "
              "first load (not run, to keep make bench within its time budget)",
    "raw": "INSERT OR REPLACE, executemany, one transaction",
}


def connect(db: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the tracker's own pragmas (db.engine.make_engine)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def csv_rows(files: list[Path]):
    """Rows in COLUMNS order as Python values: numbers as floats, blanks and the marker as NULL."""
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for r in reader:
                for i in NUMERIC_AT:
                    v = r[i]
                    r[i] = float(v) if v and v != MARKER else None
                r[NOTE_AT] = r[NOTE_AT] or None
                yield [r[i] for i in ORDER] + [BENCH_RUN_ID]


def _tracker(db: Path, files: list[Path], specs, repeat: bool) -> dict:
    from bench.synthetic import PayloadSource
    from db.engine import make_engine
    from tracker.geography import AreaMapper
    from tracker.refresh import run_source

    engine = make_engine(f"sqlite:///{db}")
    t = time.perf_counter()
    mapper = AreaMapper.from_engine(engine)  # refresh() builds it once per refresh
    summary = run_source(engine, PayloadSource(files), specs, offline=True, mapper=mapper)
    seconds = time.perf_counter() - t
    engine.dispose()
    if summary.status != "succeeded":
        raise RuntimeError(f"tracker refresh {summary.status}: {summary.error}")
    return {"seconds": seconds, "stages": {k: round(v, 3) for k, v in summary.stages.items()},
            "rows_changed": summary.rows_changed, "rows_rejected": summary.rows_rejected}


def _sqlite_utils(db: Path, files: list[Path], specs, repeat: bool, batch_size: int = 1000) -> dict:
    import sqlite_utils

    conn = connect(db)
    database = sqlite_utils.Database(conn)
    table = database.table("observation")
    t = time.perf_counter()
    records = _chain_header(csv_rows(files))  # list mode: the first record names the columns
    with database.atomic():
        if repeat:
            table.upsert_all(records, pk=list(OBSERVATION_KEY), batch_size=batch_size)
        else:
            table.insert_all(records, batch_size=batch_size)
    seconds = time.perf_counter() - t
    conn.close()
    # sqlite-utils caps a multi-row INSERT at 999 bound values
    return {"seconds": seconds, "batch_size": min(batch_size, 999 // len(COLUMNS))}


def _chain_header(rows):
    yield COLUMNS
    yield from rows


def _pandas(db: Path, files: list[Path], specs, repeat: bool, chunksize: int = 50_000) -> dict:
    from db.engine import make_engine

    if repeat:
        raise ValueError(REPEAT_METHOD["pandas"])
    engine = make_engine(f"sqlite:///{db}")
    text_cols = {c: str for c in TIDY_COLUMNS if c not in NUMERIC_COLUMNS}
    na = {c: ["", MARKER] for c in NUMERIC_COLUMNS} | {"note": [""]}
    t = time.perf_counter()
    with engine.begin() as conn:
        for path in files:
            frame = pd.read_csv(path, dtype=text_cols, keep_default_na=False, na_values=na)
            frame["run_id"] = BENCH_RUN_ID
            frame[COLUMNS].to_sql("observation", conn, if_exists="append", index=False, chunksize=chunksize)
    seconds = time.perf_counter() - t
    engine.dispose()
    return {"seconds": seconds, "chunksize": chunksize}


def _raw(db: Path, files: list[Path], specs, repeat: bool) -> dict:
    conn = connect(db)
    verb = "INSERT OR REPLACE" if repeat else "INSERT"
    sql = f"{verb} INTO observation ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(sql, csv_rows(files))
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    conn.close()
    return {"seconds": seconds}


RUNNERS = {"tracker": _tracker, "sqlite_utils": _sqlite_utils, "pandas": _pandas, "raw": _raw}


def table_state(db: Path, ids: list[str]) -> dict:
    """What a contender left in the table for the loaded indicators: rows, values present and their sum (the
    same for every contender when they loaded the same data)."""
    conn = sqlite3.connect(db)
    marks = ", ".join("?" * len(ids))
    rows, values, total = conn.execute(
        f"SELECT COUNT(*), COUNT(value), TOTAL(value) FROM observation WHERE indicator_id IN ({marks})", ids).fetchone()
    conn.close()
    return {"rows": rows, "values": values, "value_sum": total}


def load(contender: str, db: str, files: list[str], spec_kind: str, n_indicators: int = 0,
         repeat: bool = False) -> dict:
    """Child task: one contender, one phase (first load or repeated load) into `db`."""
    from bench.synthetic import synthetic_specs
    from tracker.catalog import load_catalog

    paths = [Path(f) for f in files]
    if spec_kind == "synthetic":
        specs = synthetic_specs(n_indicators)
    else:
        wanted = {p.stem for p in paths}
        specs = [s for s in load_catalog() if s.id in wanted]
    baseline = peak_rss_mb()
    cpu = time.process_time()
    result = RUNNERS[contender](Path(db), paths, specs, repeat)
    result["cpu_seconds"] = time.process_time() - cpu
    result.update(peak_rss_mb=peak_rss_mb(), baseline_rss_mb=baseline, **table_state(Path(db), [s.id for s in specs]))
    return result
