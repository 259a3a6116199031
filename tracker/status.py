"""Source freshness from the run log: what `tracker status` prints and the dashboard's Data page shows."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from db.models import Run
from tracker.config import setting
from tracker.refresh import lock_held, utcnow


def source_status(engine: Engine) -> pd.DataFrame:
    """One row per source: the last run and the last successful run, rows, latest period, age, stale flag."""
    from pipelines.registry import all_sources

    with engine.connect() as conn:
        runs = pd.read_sql(select(Run).order_by(Run.id), conn)
    stale_days = float(setting("TRACKER_STALE_DAYS"))
    now = utcnow()
    running = lock_held()  # else a run left "running" was interrupted (killed) and no refresh has run since
    rows = []
    for name, source in all_sources().items():
        mine = runs[runs["source"] == name]
        last = mine.iloc[-1] if len(mine) else None
        ok = mine[mine["status"] == "succeeded"]
        good = ok.iloc[-1] if len(ok) else None
        age = (now - good["finished_at"]).total_seconds() / 86400 if good is not None else None
        rows.append(
            {
                "source": name,
                "title": source.title,
                "last_run": last["started_at"] if last is not None else None,
                "last_status": _shown_status(last["status"], running) if last is not None else "never run",
                "last_mode": last["mode"] if last is not None else None,
                "last_error": _shown_error(last, running),
                "last_success": good["finished_at"] if good is not None else None,
                "rows_loaded": int(good["rows_loaded"]) if good is not None else 0,
                "latest_period": good["period_max"] if good is not None else None,
                "age_days": round(age, 1) if age is not None else None,
                "stale": bool(age is None or age > stale_days),
            }
        )
    return pd.DataFrame(rows)


def _shown_status(status: str, running: bool) -> str:
    return "interrupted" if status == "running" and not running else status


def _shown_error(last, running: bool) -> str:
    if last is None:
        return ""
    if last["status"] == "running" and not running:
        return "the refresh process stopped before it finished (killed?); the previous data is kept"
    return last["error"] or ""
