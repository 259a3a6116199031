"""Part 4: exports (tracker.exports). The pack for one ICB as `tracker export` makes it in a new process (cold:
the analysis Store is read back from what the last refresh saved) and as the dashboard's download button makes
it (warm: Store in memory); then a full export of everything (every area, every period) to a CSV file: rows per
second and peak memory."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import peak_rss_mb, percentile


def measure(db: str, what: str, out: str, icb: str | None = None, repeats: int = 2) -> dict:
    """Child task. what="icb": the pack for `icb`, cold once then warm `repeats` times; what="full": every area
    the tracker lists, every period, as CSV into `out`."""
    from db.engine import make_engine
    from tracker.exports import write_export

    engine = make_engine(f"sqlite:///{db}")
    target = Path(out)
    if what == "icb":
        times, rows = [], 0
        for _ in range(repeats + 1):
            t = time.perf_counter()
            with target.open("wb") as stream:
                result = write_export(engine, stream, [icb])
            times.append(time.perf_counter() - t)
            rows = result.rows
        warm = times[1:]
        return {"icb": icb, "rows": rows, "areas": result.areas, "cold_seconds": round(times[0], 3),
                "warm_p50_seconds": round(percentile(warm, 50), 3), "warm_max_seconds": round(max(warm), 3),
                "bytes": target.stat().st_size, "peak_rss_mb": peak_rss_mb()}
    from tracker.geography import LISTABLE_TYPES, list_areas

    codes = sorted({c for t in LISTABLE_TYPES for c in list_areas(engine, t)["code"]})
    t = time.perf_counter()
    with target.open("wb") as stream:
        result = write_export(engine, stream, codes, all_periods=True)
    seconds = time.perf_counter() - t
    return {"areas": result.areas, "rows": result.rows, "seconds": round(seconds, 3),
            "rows_per_second": round(result.rows / seconds) if seconds else None, "bytes": target.stat().st_size,
            "peak_rss_mb": peak_rss_mb()}
