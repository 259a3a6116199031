"""Refresh jobs: run sources, record provenance, never lose data.

Each source run is: a `run` row marked running (committed at once, so an interrupted run is visible),
raw payloads fetched (or read from the bundled snapshot) and archived by checksum, parsed, validated,
then loaded in ONE transaction together with the run's final status. A failure rolls that source back
and is recorded; the other sources go on. A file lock stops two refreshes writing at once."""

from __future__ import annotations

import errno
import fcntl
import gzip
import json
import logging
import os
import queue
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import pandas as pd
from filelock import FileLock, Timeout
from sqlalchemy import Engine, func, insert, select, update

from db.load import ShrinkGuard, ShrinkRefused, load_observations
from db.models import Observation, Run
from pipelines.base import Payload, Source, SourceError, SourceSkipped
from pipelines.validate import prepare
from tracker.catalog import IndicatorSpec, load_catalog
from tracker.config import paths, setting

log = logging.getLogger("tracker.refresh")

Progress = Callable[[str, str], None]  # (source name, stage message)


class RefreshLocked(RuntimeError):
    pass


@dataclass
class RunSummary:
    source: str
    status: str  # succeeded | failed | skipped
    run_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_changed: int = 0
    rows_rejected: int = 0
    rows_unmapped: int = 0
    rows_removed: int = 0  # stored rows the publisher no longer publishes, deleted
    rows_kept: int = 0  # stored rows kept because their new row was rejected or unmapped
    seconds: float = 0.0
    error: str | None = None
    note: str | None = None  # e.g. how often its requests were retried, and why (urllib3's warnings, folded)
    stages: dict[str, float] = field(default_factory=dict)


def shrink_limit() -> float:
    """TRACKER_SHRINK_LIMIT (a percentage) as a share."""
    try:
        value = float(setting("TRACKER_SHRINK_LIMIT"))
    except ValueError:
        raise SourceError(f"TRACKER_SHRINK_LIMIT must be a percentage, e.g. 10, not {setting('TRACKER_SHRINK_LIMIT')!r}") from None
    return max(0.0, value) / 100.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def archive(payload: Payload) -> None:
    """Keep the raw payload by checksum so a run can be replayed (tracker replay is the same parse)."""
    target = paths().archive_dir / payload.sha256[:2] / f"{payload.sha256}.gz"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        try:
            tmp.write_bytes(gzip.compress(payload.content, compresslevel=1))  # fast; the archive is for replay, not space
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk leaves no partial file


def last_success(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(Run.finished_at)).where(Run.source == source, Run.status == "succeeded")
        ).scalar()


def mark_interrupted(engine: Engine) -> int:
    """Runs left 'running' by a killed process (we hold the lock, so none is really running)."""
    with engine.begin() as conn:
        return conn.execute(
            update(Run)
            .where(Run.status == "running")
            .values(status="failed", finished_at=utcnow(), error="interrupted: the refresh process stopped before it finished")
        ).rowcount


def run_source(
    engine: Engine,
    source: Source,
    specs: list[IndicatorSpec],
    offline: bool,
    mapper,
    http=None,
    progress: Progress | None = None,
    replay: tuple[int, list[Payload]] | None = None,
    allow_shrink: bool = False,
    analysis_follows: bool = False,
) -> RunSummary:
    """One run of one source (see the module docstring). `replay`: (run id, its archived payloads) to parse,
    validate and load again instead of fetching. `allow_shrink`: let this run remove more stored rows than the
    shrink guard (TRACKER_SHRINK_LIMIT) allows. `analysis_follows`: the caller computes and saves the analysis of
    the new data afterwards (tracker.analysis.warm), so a run that changes rows marks it as being built."""
    say = progress or (lambda _s, _m: None)
    mode = "replay" if replay else "offline" if offline else "live"
    started = utcnow()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(Run).values(source=source.name, mode=mode, status="running", started_at=started,
                               replay_of=replay[0] if replay else None)
        ).inserted_primary_key[0]
    summary = RunSummary(source=source.name, status="failed", run_id=run_id)
    locations: list[str] = []
    checksums: dict[str, str] = {}
    metas: dict[str, dict] = {}
    try:
        if offline and not source.has_offline and not replay:
            raise _Skip(f"{source.title} has no bundled snapshot; its figures come from other sources offline")
        if replay:
            payloads = replay[1]
        elif offline:
            payloads = source.read_offline(specs)
        else:
            if http is None:
                from pipelines.http import HttpClient

                http = HttpClient()
            if hasattr(http, "begin"):
                http.begin(source.name)  # the source's deadline starts now
            payloads = source.fetch(http, specs)
        say(source.name, "reading snapshot" if offline else "fetching")
        stats = _ChunkStats()
        keep: list[pd.DataFrame] = []

        def prepared_chunks():
            # payload by payload, so memory stays bounded however large the source
            it = iter(payloads)
            while True:
                t = time.perf_counter()
                payload = next(it, None)
                if payload is None:
                    summary.stages["fetch"] = summary.stages.get("fetch", 0.0) + time.perf_counter() - t
                    return
                locations.append(payload.location)
                checksums[payload.location] = payload.sha256
                if payload.meta:
                    metas[payload.location] = json.loads(json.dumps(payload.meta, default=str))
                archive(payload)
                # the "fetch" stage: getting the raw payload and archiving it
                summary.stages["fetch"] = summary.stages.get("fetch", 0.0) + time.perf_counter() - t
                t = time.perf_counter()
                frame = source.parse(payload, specs)
                del payload  # memory: only one payload's raw bytes and frames alive at a time
                stats.add_skipped(frame.attrs.get("skipped", {}))
                summary.stages["parse"] = summary.stages.get("parse", 0.0) + time.perf_counter() - t
                if frame.empty:
                    continue
                t = time.perf_counter()
                clean, problems = prepare(frame, specs, source.markers, mapper)
                summary.stages["validate"] = summary.stages.get("validate", 0.0) + time.perf_counter() - t
                stats.add(frame, clean, problems)
                keep.extend(problems.keys)  # the loader keeps the stored rows of these keys
                del frame, problems
                yield clean, stats.read
                del clean

        waited: list[float] = []  # seconds the load spent waiting for the next prepared payload

        def loaded_chunks():
            # the next payload is read, parsed and validated in a worker thread while this thread inserts the
            # current one; progress is reported from here, the caller's thread (Streamlit's progress bar needs it)
            for clean, read in read_ahead(prepared_chunks(), waited):
                say(source.name, f"loading {read:,} rows read so far")
                yield clean
                del clean

        t_load = time.perf_counter()
        with engine.begin() as conn:
            guard = ShrinkGuard(max_share=shrink_limit(), allow=allow_shrink)
            try:
                result = load_observations(conn, loaded_chunks(), run_id, [s.id for s in specs], keep=keep, guard=guard)
            except ShrinkRefused as exc:
                raise SourceError(f"{source.title}: refused: the new data {exc}") from None
            if stats.read == 0:
                raise SourceError(
                    f"{source.title}: no rows for any catalog indicator in {', '.join(locations) or 'nothing fetched'}"
                )
            if result.repeated:
                stats.problems.setdefault("rejected", {})["repeated in another payload of the same run (first kept)"] = {
                    "count": result.repeated, "examples": []}
            summary.rows_read = stats.read
            summary.rows_loaded = result.total - result.repeated
            summary.rows_rejected = stats.rejected + result.repeated
            summary.rows_unmapped = stats.unmapped
            summary.rows_changed = result.written + result.deleted
            summary.rows_removed, summary.rows_kept = result.deleted, result.kept
            if result.kept:
                stats.problems["kept"] = {
                    "count": result.kept,
                    "reason": "stored value kept: the new row for its key was rejected or unmapped"}
            if result.deleted:
                stats.problems["removed"] = {"count": result.deleted,
                                             "reason": "no longer published by the source: removed"}
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status="succeeded", finished_at=utcnow(), locations=locations, checksums=checksums,
                    payload_meta=metas,
                    rows_read=summary.rows_read, rows_loaded=summary.rows_loaded, rows_rejected=summary.rows_rejected,
                    rows_unmapped=summary.rows_unmapped, rows_changed=summary.rows_changed,
                    period_min=stats.period_min, period_max=stats.period_max,
                    latest_period_end=stats.latest_end, problems=stats.problems,
                )
            )
            if analysis_follows and summary.rows_changed:
                from tracker.analysis.data import CODE_DIGEST
                from tracker.analysis.saved import mark_building_in

                mark_building_in(conn, CODE_DIGEST)  # with the data: dashboards wait for the save, none computes it
        # the load's own time: fetch, parse and validate overlap it in the worker, except while it waited for them
        summary.stages["load"] = time.perf_counter() - t_load - sum(waited)
        summary.status = "succeeded"
    except (_Skip, SourceSkipped) as skip:
        summary.status = "skipped"
        summary.error = str(skip)
        _finish(engine, run_id, "skipped", str(skip), locations, checksums, metas)
    except Exception as exc:  # one failing source never stops the others
        # the load was rolled back: nothing was changed, whatever the counts said before the failure
        summary.rows_loaded = summary.rows_changed = summary.rows_removed = summary.rows_kept = 0
        message = str(exc) if isinstance(exc, SourceError) else _failure_message(source, exc)
        if not isinstance(exc, SourceError) and message.endswith(f"{exc.__class__.__name__}: {exc}"):
            log.exception("source %s failed", source.name)  # unforeseen: the traceback helps whoever reports it
        summary.error = message
        _finish(engine, run_id, "failed", message, locations, checksums, metas)
    if http is not None and hasattr(http, "retry_note"):
        summary.note = http.retry_note(source.name)
    summary.seconds = time.perf_counter() - t0
    say(source.name, summary.status)
    return summary


class _Skip(Exception):
    pass


_DONE = object()


def read_ahead(items: Iterator, waited: list[float] | None = None) -> Iterator:
    """The items of `items`, produced in a worker thread at most one item ahead of the consumer: the next payload
    is read, parsed and validated on the other core while SQLite inserts the current one (sqlite3 lets go of the
    GIL while it writes). Memory: at most the item being loaded, one waiting and one being prepared. An exception
    in the worker is raised here; when the consumer stops early (a failed insert), the worker stops at its next
    item. `waited`: the seconds this thread spent waiting for the worker are appended to it."""
    handover: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handover.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
                del item  # the consumer holds it now
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            put((_DONE, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="refresh-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            t = time.perf_counter()
            item, error = handover.get()
            if waited is not None:
                waited.append(time.perf_counter() - t)
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
            del item
    finally:
        stop.set()
        worker.join()


def nearly_full(folder) -> bool:
    """Less than 8 MB free where `folder` is: SQLite then reports a failed write as a 'disk I/O error'."""
    try:
        return shutil.disk_usage(folder).free < 8 * 1024 * 1024
    except OSError:
        return False


def _failure_message(source: Source, exc: Exception) -> str:
    """One line for failures that are not the source's own (SourceError): a full disk, a read-only folder."""
    text = str(exc)
    root = exc
    while root.__cause__ or root.__context__:
        root = root.__cause__ or root.__context__
    if getattr(root, "errno", None) in (errno.ENOSPC, errno.EFBIG) or "disk is full" in text or (
            "disk I/O error" in text and nearly_full(paths().data_dir)):  # SQLite's WAL reports a full disk so
        return (f"{source.title}: the disk is full (writing in {paths().data_dir}); nothing of this source was "
                "changed; free some space and run the refresh again")
    if getattr(root, "errno", None) in (errno.EROFS, errno.EACCES) or "readonly database" in text:
        return (f"{source.title}: cannot write in {paths().data_dir} (read-only or not yours); run the refresh as "
                "the user who owns the data folder")
    return f"{source.title}: {exc.__class__.__name__}: {exc}"


class _ChunkStats:
    """Counts and period range over the chunks of one run."""

    def __init__(self) -> None:
        self.read = self.rejected = self.unmapped = 0
        self.problems: dict[str, dict] = {"rejected": {}, "unmapped": {}, "skipped": {}}
        self.latest_end = None
        self.period_min = self.period_max = None
        self._min_start = self._max_end = None

    def add_skipped(self, skipped: dict[str, int]) -> None:
        for reason, n in skipped.items():
            self.problems["skipped"][reason] = self.problems["skipped"].get(reason, 0) + n

    def add(self, frame: pd.DataFrame, clean: pd.DataFrame, problems) -> None:
        self.read += len(frame)
        self.rejected += problems.rejected_count
        self.unmapped += problems.unmapped_count
        self.add_skipped(problems.skipped)
        for kind in ("rejected", "unmapped"):
            for reason, bucket in getattr(problems, kind).items():
                mine = self.problems[kind].setdefault(reason, {"count": 0, "examples": []})
                mine["count"] += bucket["count"]
                mine["examples"] = (mine["examples"] + bucket["examples"])[:5]
        starts, ends = pd.to_datetime(clean["period_start"]), pd.to_datetime(clean["period_end"])
        if starts.notna().any():
            first = starts.idxmin()
            if self._min_start is None or starts[first] < self._min_start:
                self._min_start, self.period_min = starts[first], clean.at[first, "period"]
        if ends.notna().any():
            last = ends.idxmax()
            if self._max_end is None or ends[last] > self._max_end:
                self._max_end, self.period_max = ends[last], clean.at[last, "period"]
                self.latest_end = ends[last].date()


def _finish(engine: Engine, run_id: int, status: str, error: str, locations, checksums, metas) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status=status, finished_at=utcnow(), error=error, locations=locations, checksums=checksums,
                    payload_meta=metas)
        )


def lock_held() -> bool:
    """Whether a refresh holds the lock now, asked without writing anything (the lock file is opened read-only
    and never created): a run shown as running is only really running while its refresh holds the lock."""
    lock_path = paths().lock_file
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no refresh ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # filelock takes an exclusive flock on the same file
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextmanager
def refresh_lock(wait: float = 0):
    """One writer at a time, across processes. Raises RefreshLocked when another holds the lock for longer
    than `wait` seconds."""
    lock_path = paths().lock_file
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=wait)
    except Timeout as exc:
        raise RefreshLocked(
            f"another refresh is running (lock {lock_path}); wait for it to finish or use --wait SECONDS"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def refresh(
    engine: Engine,
    source_names: list[str] | None = None,
    offline: bool = False,
    if_older_than: timedelta | None = None,
    progress: Progress | None = None,
    wait: float = 0,
    http=None,
    allow_shrink: bool = False,
    initialise_first: bool = False,
    analysis_follows: bool = False,
) -> list[RunSummary]:
    """Run the named sources (all by default) under the refresh lock. Raises RefreshLocked when another
    refresh holds the lock for longer than `wait` seconds (checked before anything is written).
    `initialise_first`: create or upgrade the database (tracker.store.initialise) once the lock is held.
    `analysis_follows`: as run_source's."""
    from pipelines.registry import all_sources
    from tracker.geography import AreaMapper

    sources = all_sources()
    names = source_names or list(sources)
    specs = load_catalog()
    with refresh_lock(wait):
        if initialise_first:
            from tracker.store import initialise

            initialise(engine)
        mark_interrupted(engine)
        mapper = AreaMapper.from_engine(engine)
        summaries = []
        for name in names:
            source = sources[name]
            if if_older_than is not None:
                last = last_success(engine, name)
                if last is not None and utcnow() - last < if_older_than:
                    summaries.append(RunSummary(source=name, status="skipped", error=f"refreshed {last:%Y-%m-%d %H:%M} UTC, within --if-older-than"))
                    continue
            source_specs = [s for s in specs if s.source == name]
            summaries.append(run_source(engine, source, source_specs, offline, mapper, http=http, progress=progress,
                                        allow_shrink=allow_shrink, analysis_follows=analysis_follows))
        return summaries


def archived_payloads(engine: Engine, run_id: int) -> tuple[str, list[Payload]]:
    """The source name and the raw payloads of an earlier run, read back from the archive by checksum."""
    with engine.connect() as conn:
        run = conn.execute(select(Run).where(Run.id == run_id)).first()
    if run is None:
        raise SourceError(f"there is no run {run_id}; see `tracker status` or the dashboard's Data page")
    if not run.locations:
        raise SourceError(f"run {run_id} ({run.source}, {run.status}) read no payload, so there is nothing to replay")
    if run.payload_meta is None:  # recorded before migration 0003: a parse needs what the fetch knew besides the bytes
        raise SourceError(
            f"run {run_id} ({run.source}) was recorded before the tracker kept payload details (migration 0003), so "
            f"its archive lacks what replay needs and a replay would load only part of it; refresh {run.source} instead"
        )
    payloads = []
    for location in run.locations:
        checksum = run.checksums[location]
        path = paths().archive_dir / checksum[:2] / f"{checksum}.gz"
        if not path.exists():
            raise SourceError(f"run {run_id}: the archived payload of {location} ({checksum[:12]}…) is not in {paths().archive_dir}")
        content = gzip.decompress(path.read_bytes())
        payloads.append(Payload(location=location, content=content, meta=(run.payload_meta or {}).get(location, {})))
    return run.source, payloads


def replay(engine: Engine, run_id: int, progress: Progress | None = None, wait: float = 0,
           allow_shrink: bool = False, initialise_first: bool = False, analysis_follows: bool = False) -> RunSummary:
    """Parse, validate and load again the archived raw payloads of run `run_id` (for instance after a parser fix),
    under the refresh lock, as a new run with mode "replay"."""
    from pipelines.registry import all_sources
    from tracker.geography import AreaMapper

    with refresh_lock(wait):
        if initialise_first:
            from tracker.store import initialise

            initialise(engine)
        name, payloads = archived_payloads(engine, run_id)
        source = all_sources()[name]
        specs = [s for s in load_catalog() if s.source == name]
        mark_interrupted(engine)
        return run_source(engine, source, specs, offline=True, mapper=AreaMapper.from_engine(engine),
                          progress=progress, replay=(run_id, payloads), allow_shrink=allow_shrink,
                          analysis_follows=analysis_follows)


def has_observations(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(Observation.indicator_id).limit(1)).first() is not None
