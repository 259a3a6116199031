"""Part 2: the offline refresh of the whole bundled snapshot into an empty database (tracker.store.prepare), and
the profiling children for missed goals."""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

from bench.common import peak_rss_mb


def prepare_snapshot(db: str, sources: list[str] | None = None) -> dict:
    """Child task: tracker.store.prepare on an empty database, as `make run` does on first start (schema,
    reference data, then every source's bundled files: read, parse, validate, load, archive). `sources`: only
    those (initialise, then an offline refresh of them), for quick checks of the harness."""
    from db.engine import make_engine
    from tracker.config import paths
    from tracker.refresh import refresh
    from tracker.store import initialise, prepare

    shutil.rmtree(paths().archive_dir, ignore_errors=True)  # a first start archives every payload
    engine = make_engine(f"sqlite:///{db}")
    analysis_from: list[tuple[float, float]] = []  # when prepare's last step (precomputing the analysis) began

    loading_peak: list[float] = []  # the peak RSS of loading alone, read when the analysis precompute begins

    def progress(source: str, _message: str) -> None:
        if source == "analysis" and not analysis_from:
            analysis_from.append((time.perf_counter(), time.process_time()))
            loading_peak.append(peak_rss_mb())

    t, cpu = time.perf_counter(), time.process_time()
    if sources:
        initialise(engine)
        summaries = refresh(engine, sources, offline=True)
    else:
        summaries = prepare(engine, progress=progress, second_process=True)  # as `tracker prepare` does
    end, end_cpu = time.perf_counter(), time.process_time()
    refreshed, refreshed_cpu = analysis_from[0] if analysis_from else (end, end_cpu)
    total, cpu = refreshed - t, refreshed_cpu - cpu
    engine.dispose()
    sources = [{"source": s.source, "status": s.status, "seconds": round(s.seconds, 3), "rows_read": s.rows_read,
                "rows_loaded": s.rows_loaded, "rows_rejected": s.rows_rejected, "rows_unmapped": s.rows_unmapped,
                "stages": {k: round(v, 3) for k, v in s.stages.items()}, "error": s.error} for s in summaries]
    # "seconds": the refresh (schema, reference data, every source); the analysis precompute that follows it in
    # tracker.store.prepare is reported apart ("analysis_seconds"): it is not part of loading the data
    return {"seconds": total, "cpu_seconds": cpu, "initialise_seconds": total - sum(s.seconds for s in summaries), "sources": sources,
            "analysis_seconds": round(end - refreshed, 3), "analysis_cpu_seconds": round(end_cpu - refreshed_cpu, 3),
            "rows_loaded": sum(s.rows_loaded for s in summaries), "peak_rss_mb": peak_rss_mb(),
            "load_peak_rss_mb": loading_peak[0] if loading_peak else peak_rss_mb(), **second_process()}


def second_process() -> dict:
    """CPU time and peak RSS of the analysis' second process (tracker.analysis.warm OutcomesElsewhere), the only
    child these tasks start; its RSS counts the pages it still shares with this process."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"second_process_cpu_seconds": round(child.ru_utime + child.ru_stime, 3),
            "second_process_peak_rss_mb": round(child.ru_maxrss / 1024)}


REFERENCE_KEY = ("indicator_id", "area_code", "period", "sex", "age", "category_type", "category")
REFERENCE_CODED = REFERENCE_KEY + ("period_start", "period_end", "note", "published_comparison")
REFERENCE_NUMBERS = ("value", "lci95", "uci95", "lci998", "uci998", "count", "denominator")


def physical_reference(db: str, target: str) -> dict:
    """Child task: the physical reference for part 2. The rows the tracker loaded (read back from its database),
    with every text column (the 7 key columns, dates, note, published comparison) replaced by a small integer
    code, inserted by raw sqlite3 executemany, in key order, in one transaction, into a minimal integer-keyed
    table (WITHOUT ROWID, no secondary index, no foreign key) in a new database with the tracker's pragmas. Only
    the executemany and the commit are timed: what SQLite itself costs for these rows, with nothing else to do."""
    import sqlite3

    from bench.load import connect

    source = sqlite3.connect(db)
    rows = source.execute(f"SELECT {', '.join(REFERENCE_CODED + REFERENCE_NUMBERS)} FROM observation").fetchall()
    source.close()
    codes: list[dict] = [{} for _ in REFERENCE_CODED]
    n = len(REFERENCE_CODED)
    coded = sorted(tuple(c.setdefault(v, len(c)) if v is not None else None for c, v in zip(codes, r[:n])) + r[n:]
                   for r in rows)  # sorted by the integer key: the order the tracker inserts its own rows in
    del rows
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    conn = connect(Path(target))
    columns = [f"{c} INTEGER" for c in REFERENCE_CODED] + [f"{c} REAL" for c in REFERENCE_NUMBERS]
    conn.execute(f"CREATE TABLE observation_ref ({', '.join(columns)}, PRIMARY KEY ({', '.join(REFERENCE_KEY)})) "
                 "WITHOUT ROWID")
    sql = f"INSERT INTO observation_ref VALUES ({', '.join('?' * len(columns))})"
    t, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN")
    conn.executemany(sql, coded)
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    stored = conn.execute("SELECT COUNT(*) FROM observation_ref").fetchone()[0]
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "rows": stored,
            "rows_per_cpu_second": round(stored / cpu) if cpu else None, "peak_rss_mb": peak_rss_mb()}


def precompute_analysis(db: str) -> dict:
    """Child task: what `tracker refresh` does once new data has landed (tracker.analysis.warm, with its second
    process): build the analysis of the database's current data and save it in the database."""
    from db.engine import make_engine
    from tracker.analysis.warm import warm

    engine = make_engine(f"sqlite:///{db}")
    t, cpu = time.perf_counter(), time.process_time()
    saved_bytes = warm(engine, second_process=True)  # None when the database holds no observations
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    engine.dispose()
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
            "saved_mb": round(saved_bytes / 1e6, 1) if saved_bytes else None, "peak_rss_mb": peak_rss_mb(),
            **second_process()}


def profile(kind: str, db: str, name: str, folder: str, files: list[str] | None = None, n_indicators: int = 0,
            source: str | None = None, area_code: str | None = None) -> dict:
    """Child task: pyinstrument profile of one slow stage, saved as <folder>/<name>.txt.
    kind "load": the tracker contender's refresh of `files`; "source": one source's offline refresh into an
    initialised, empty database; "query-warm": place_profile for every ICB once the Store is built;
    "export-icb": the pack for `area_code` once the Store is built."""
    from bench.profiling import profile as run_profile
    from db.engine import make_engine

    engine = make_engine(f"sqlite:///{db}")
    if kind == "load":
        from bench.synthetic import PayloadSource, synthetic_specs
        from tracker.geography import AreaMapper
        from tracker.refresh import run_source

        specs = synthetic_specs(n_indicators)
        work = lambda: run_source(engine, PayloadSource([Path(f) for f in files]), specs, offline=True,  # noqa: E731
                                  mapper=AreaMapper.from_engine(engine))
    elif kind == "source":
        from tracker.refresh import refresh

        work = lambda: refresh(engine, [source], offline=True)  # noqa: E731
    elif kind == "query-warm":
        from tracker.analysis.place import place_profile

        with engine.connect() as conn:
            icbs = [r[0] for r in conn.exec_driver_sql("SELECT code FROM area WHERE type = 'icb' ORDER BY code")]
        place_profile(engine, icbs[0])  # builds the Store and its derived tables: not what is profiled
        work = lambda: [place_profile(engine, code) for code in icbs]  # noqa: E731
    else:
        import io

        from tracker.exports import write_export

        write_export(engine, io.BytesIO(), [area_code])
        work = lambda: write_export(engine, io.BytesIO(), [area_code])  # noqa: E731
    result = run_profile(name, work, Path(folder))
    engine.dispose()
    return result
