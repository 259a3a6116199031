"""Part 3: the Place view's data for an ICB on the England-wide database, through tracker.analysis and as raw SQL.

tracker.analysis keeps an in-memory Store per data version (tracker.analysis.data.get_store): the first call
after a refresh lands ("cold") reads the database and builds the derived tables; later calls ("warm") work on
those frames. Cold is paid once per refresh; warm is what every page view pays, so warm is what is compared with
raw SQL (run on a warm connection, page cache filled, like the warm Store)."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from bench.common import checkpoint, peak_rss_mb, percentile

ENGLAND = "E92000001"
# Latest period per indicator for the ICB's local authorities (and the ICB itself where published), headline
# rows only, with England's value for the same indicator, period, sex and age: the floor for the Place view.
RAW_SQL = """
WITH places AS (
    SELECT l.child_code AS code FROM area_link l JOIN area a ON a.code = l.child_code
    WHERE l.parent_code = :icb AND l.parent_type = 'icb' AND a.type IN ('ltla', 'utla')
    UNION SELECT :icb
),
rows AS (
    SELECT o.* FROM observation o JOIN places p ON o.area_code = p.code
    WHERE o.category_type = '' AND o.category = ''
),
latest AS (
    SELECT indicator_id, sex, age, MAX(period_end) AS period_end FROM rows GROUP BY indicator_id, sex, age
)
SELECT r.area_code, r.indicator_id, r.period, r.period_end, r.sex, r.age, r.value, r.lci95, r.uci95,
       e.value AS england_value
FROM rows r JOIN latest USING (indicator_id, sex, age, period_end)
LEFT JOIN observation e ON e.indicator_id = r.indicator_id AND e.area_code = :england AND e.period = r.period
    AND e.sex = r.sex AND e.age = r.age AND e.category_type = '' AND e.category = ''
ORDER BY r.indicator_id, r.area_code
"""
RUN_COLUMNS = ("id", "source", "mode", "status", "started_at", "finished_at", "locations", "checksums", "rows_read",
               "rows_loaded", "rows_rejected", "rows_unmapped", "rows_changed", "period_min", "period_max",
               "latest_period_end", "problems", "error")


def build_query_db(loaded: Path, snapshot: Path | None, target: Path) -> dict:
    """The England-wide database: the tracker contender's SYNTHETIC LSOA rows (its database file is moved here)
    plus the real snapshot's rows, copied with their runs, so the Place view has its real indicators among
    millions of rows."""
    checkpoint(loaded)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(loaded, target)
    conn = sqlite3.connect(target)
    if snapshot is not None and snapshot.exists():
        conn.execute("ATTACH DATABASE ? AS snap", (str(snapshot),))
        offset = conn.execute("SELECT COALESCE(MAX(id), 0) FROM run").fetchone()[0]
        cols = ", ".join(RUN_COLUMNS[1:])
        conn.execute(f"INSERT INTO run (id, {cols}) SELECT id + ?, {cols} FROM snap.run", (offset,))
        # every column by name (the schema grows through migrations), run ids moved past the synthetic runs
        names = [row[1] for row in conn.execute("PRAGMA table_info(observation)")]
        picked = ", ".join("run_id + ?" if n == "run_id" else n for n in names)
        conn.execute(f"INSERT INTO observation ({', '.join(names)}) SELECT {picked} FROM snap.observation", (offset,))
        conn.commit()
        conn.execute("DETACH DATABASE snap")
    rows = conn.execute("SELECT COUNT(*) FROM observation").fetchone()[0]
    synthetic = conn.execute("SELECT COUNT(*) FROM observation WHERE indicator_id LIKE 'synthetic-bench-%'").fetchone()[0]
    conn.close()
    checkpoint(target)
    return {"rows": rows, "synthetic_rows": synthetic, "real_rows": rows - synthetic}


def data_change(engine) -> None:
    """What a refresh landing looks like to the analysis: one more succeeded run (data_version changes)."""
    from sqlalchemy import insert

    from db.models import Run

    now = datetime.now()
    with engine.begin() as conn:
        conn.execute(insert(Run).values(source="bench_data_change", mode="offline", status="succeeded", started_at=now,
                                        finished_at=now, locations=[], checksums={}, problems={}))


def _stats(times: list[float]) -> dict:
    ms = [t * 1000 for t in times]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "max_ms": round(max(ms), 2) if ms else None}


def measure(db: str, queries: int = 200, cold_samples: int = 3) -> dict:
    """Child task: cold and warm place_profile for ICBs (cycling through all 42), and the raw SQL floor."""
    from db.engine import make_engine
    from tracker.analysis.data import get_store
    from tracker.analysis.place import place_profile

    from bench.load import connect

    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        icbs = [r[0] for r in conn.exec_driver_sql("SELECT code FROM area WHERE type = 'icb' ORDER BY code")]
    sequence = [icbs[i % len(icbs)] for i in range(queries)]

    cold = []
    for k in range(cold_samples):
        data_change(engine)
        t0 = time.perf_counter()
        get_store(engine)
        t1 = time.perf_counter()
        place_profile(engine, sequence[k])
        t2 = time.perf_counter()
        cold.append({"icb": sequence[k], "store_seconds": round(t1 - t0, 3), "first_profile_seconds": round(t2 - t1, 3),
                     "seconds": round(t2 - t0, 3)})
    warm, rows = [], []
    for code in sequence:
        t = time.perf_counter()
        frame = place_profile(engine, code)
        warm.append(time.perf_counter() - t)
        rows.append(len(frame))
    engine.dispose()

    conn = connect(Path(db))
    raw, raw_rows = [], []
    for code in sequence:
        t = time.perf_counter()
        result = conn.execute(RAW_SQL, {"icb": code, "england": ENGLAND}).fetchall()
        raw.append(time.perf_counter() - t)
        raw_rows.append(len(result))
    plan = [r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + RAW_SQL, {"icb": icbs[0], "england": ENGLAND})]
    conn.close()
    return {"icbs": len(icbs), "cold": cold, "warm": _stats(warm), "raw": _stats(raw),
            "rows_per_profile": {"min": min(rows), "max": max(rows)},
            "raw_rows_per_query": {"min": min(raw_rows), "max": max(raw_rows)}, "raw_plan": plan,
            "peak_rss_mb": peak_rss_mb()}
