"""Source freshness by the data, from the run log: what `tracker status` prints and the dashboard's Data page shows.

Fresh means the age of the figures, not when they were loaded: for each source, the latest period held, when the
publisher released it, and whether a newer release is overdue: end of the latest period + one release cadence +
the source's grace days (tracker/data/releases.yaml) is in the past. A source with no data yet (NOMIS before its
first live load) is "no data yet", never overdue."""

from __future__ import annotations

from datetime import date
from email.utils import parsedate_to_datetime

import pandas as pd
from sqlalchemy import Engine, select

from db.models import Run
from tracker.catalog import load_releases
from tracker.refresh import lock_held, utcnow


def source_status(engine: Engine, today: date | None = None) -> pd.DataFrame:
    """One row per source: the latest period held and its release, whether a newer one is overdue, and the last
    run (when, status, mode, message)."""
    from pipelines.registry import all_sources

    with engine.connect() as conn:
        runs = pd.read_sql(select(Run).order_by(Run.id), conn)
    releases = load_releases()
    today = today or utcnow().date()
    running = lock_held()  # else a run left "running" was interrupted (killed) and no refresh has run since
    rows = []
    for name, source in all_sources().items():
        mine = runs[runs["source"] == name]
        last = mine.iloc[-1] if len(mine) else None
        ok = mine[(mine["status"] == "succeeded")]
        good = ok.iloc[-1] if len(ok) else None
        held = ok[ok["latest_period_end"].notna()]
        # the run that loaded the latest period (a live run of some indicators may end earlier than the snapshot)
        newest = held.loc[pd.to_datetime(held["latest_period_end"]).idxmax()] if len(held) else None
        release = releases.get(name)
        period_end = pd.Timestamp(newest["latest_period_end"]).date() if newest is not None else None
        due = release.next_due(period_end) if release else None
        rows.append(
            {
                "source": name,
                "title": source.title,
                "latest_period": newest["period_max"] if newest is not None else None,
                "period_end": period_end,
                "released": _released(newest, release) if newest is not None else None,
                "cadence": release.cadence if release else None,
                "next_release_due": due,
                "overdue": bool(due is not None and due < today),
                "freshness": _freshness(newest, due, today, source),
                "last_checked": pd.Timestamp(good["finished_at"]).floor("s") if good is not None else None,
                "rows_loaded": int(good["rows_loaded"]) if good is not None else 0,
                "last_run": last["started_at"] if last is not None else None,
                "last_status": _shown_status(last["status"], running) if last is not None else "never run",
                "last_mode": last["mode"] if last is not None else None,
                "last_error": _shown_error(last, running),
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


def _released(run, release) -> date | None:
    """When the publisher released what this run loaded: the date the live client read from the publisher (payload
    meta "released", or the HTTP Last-Modified header), else for the bundled snapshot the release recorded in
    releases.yaml; None when not known."""
    dates = []
    for meta in (run["payload_meta"] or {}).values():
        value = (meta or {}).get("released") or (meta or {}).get("last_modified")
        if not value:
            continue
        try:
            dates.append(date.fromisoformat(str(value)[:10]))
        except ValueError:
            try:
                dates.append(parsedate_to_datetime(str(value)).date())  # an HTTP date
            except (TypeError, ValueError):
                continue
    if dates:
        return max(dates)
    if run["mode"] in ("offline", "replay") and release is not None:
        return release.snapshot_released
    return None


def _freshness(newest, due: date | None, today: date, source) -> str:
    if newest is None:
        return "no data yet" + ("" if source.has_offline else " (live only: loaded by the first live refresh)")
    if due is None:
        return "current (no release schedule)"
    if due < today:
        return f"newer release overdue since {due:%d %b %Y}"
    return f"current (next release expected by {due:%d %b %Y})"

