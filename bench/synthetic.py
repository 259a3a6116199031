"""The benchmark's inputs: SYNTHETIC England-wide LSOA observations (real LSOA 2021 codes, invented values) and
the real snapshot's tidy rows, both as one tidy CSV payload per indicator; and the bench-only Source that feeds
those payloads through the tracker's own refresh (parse -> validate -> load).

Synthetic indicators have ids "synthetic-bench-NN" and titles starting "SYNTHETIC benchmark"; they are written
only into the benchmark's databases, never the tracker's."""

from __future__ import annotations

import csv
import json
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select

from db.models import Indicator, Observation
from pipelines.base import TIDY_COLUMNS, Payload, Source, read_csv_strict, tidy
from tracker.catalog import IndicatorSpec

SOURCE = "bench_synthetic"
MARKER = "x"
# value_type, unit, multiplier: proportions and rates carry counts and CIs (as most real indicators do), scores not
KINDS = (("proportion", "%", 100.0), ("rate", "per 1,000", 1000.0), ("score", "score", None))
DEPARTMENTS = ("department-for-education", "department-for-work-pensions", "home-office", "department-for-transport",
               "ministry-of-housing-communities-local-government", "department-for-energy-security-and-net-zero")


def synthetic_specs(n: int) -> list[IndicatorSpec]:
    specs = []
    for i in range(1, n + 1):
        value_type, unit, multiplier = KINDS[(i - 1) % len(KINDS)]
        specs.append(IndicatorSpec(
            id=f"synthetic-bench-{i:02d}", title=f"SYNTHETIC benchmark indicator {i:02d} (invented values)",
            domain="communities", unit=unit, value_type=value_type, polarity="no_judgement",
            department=DEPARTMENTS[(i - 1) % len(DEPARTMENTS)], producer="SYNTHETIC (benchmark only)",
            rationale="SYNTHETIC: exists only in benchmark databases.", definition="SYNTHETIC values for benchmarking.",
            licence="none (synthetic)", source=SOURCE, source_id=f"bench-{i:02d}", area_types=("lsoa",),
            multiplier=multiplier))
    return specs


def add_indicators(engine: Engine, specs: list[IndicatorSpec]) -> None:
    """Register indicators in a benchmark database (the observation table's foreign key needs them)."""
    with engine.begin() as conn:
        have = set(conn.execute(select(Indicator.id)).scalars())
        rows = [dict(id=s.id, title=s.title, domain=s.domain, unit=s.unit, value_type=s.value_type, polarity=s.polarity,
                     department_slug=s.department, secondary_departments=[], producer=s.producer, rationale=s.rationale,
                     definition=s.definition, licence=s.licence, source=s.source, source_id=s.source_id,
                     area_types=list(s.area_types), headline_outcome=False, multiplier=s.multiplier,
                     default_sex=s.default_sex) for s in specs if s.id not in have]
        if rows:
            conn.execute(insert(Indicator), rows)


def lsoa_codes(limit: int | None = None) -> list[str]:
    """Real LSOA 2021 codes from the tracker's bundled geography."""
    from tracker.geography import build_geography

    area = build_geography()["area"]
    codes = sorted(area.loc[area["type"] == "lsoa", "code"])
    return codes[:limit] if limit else codes


def synthetic_frame(spec: IndicatorSpec, index: int, codes: list[str], periods: int) -> pd.DataFrame:
    """One indicator's SYNTHETIC tidy rows: every LSOA x `periods` calendar years ending 2022. About 1% of values
    are blank and 0.5% carry the suppression marker, as in real files."""
    rng = np.random.default_rng(1000 + index)
    n = len(codes)
    parts = []
    for p in range(periods):
        year = 2022 - periods + 1 + p
        frame = {"indicator_id": spec.id, "area_code": codes, "period": str(year),
                 "period_start": date(year, 1, 1).isoformat(), "period_end": date(year, 12, 31).isoformat(),
                 "sex": "Persons", "age": "All ages", "category_type": "", "category": ""}
        if spec.multiplier:
            denominator = rng.integers(200, 4000, n).astype(float)
            share = rng.beta(2, 8, n) if spec.value_type == "proportion" else rng.beta(1, 30, n)
            count = np.round(denominator * share)
            value = count / denominator * spec.multiplier
            half = 1.96 * np.sqrt(np.maximum(count, 1)) / denominator * spec.multiplier
            ci = {"lci95": np.maximum(value - half, 0), "uci95": value + half,
                  "lci998": np.maximum(value - 1.58 * half, 0), "uci998": value + 1.58 * half}
            if spec.value_type == "proportion":
                ci = {k: np.minimum(v, 100.0) for k, v in ci.items()}
            frame.update({k: np.round(v, 3) for k, v in ci.items()}, count=count.astype(int), denominator=denominator.astype(int))
        else:
            value = rng.normal(20, 8, n)
        values = np.round(value, 3).astype(object)
        roll = rng.random(n)
        values[roll < 0.01] = ""
        values[(roll >= 0.01) & (roll < 0.015)] = MARKER
        frame["value"] = values
        out = pd.DataFrame(frame)
        for col in ("lci95", "uci95", "lci998", "uci998"):
            if col in out:
                out.loc[roll < 0.015, col] = np.nan  # written as blanks
        parts.append(out)
    # area by area, periods in order within each: how most publishers lay out a long file
    return tidy(pd.concat(parts, ignore_index=True).sort_values(["area_code", "period"], kind="mergesort"))


def write_synthetic(folder: Path, lsoas: int | None, indicators: int, periods: int) -> list[Path]:
    """Write (once) one SYNTHETIC CSV payload per indicator; reused while the parameters are unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    params = {"lsoas": lsoas, "indicators": indicators, "periods": periods, "version": 2}
    files = [folder / f"synthetic-bench-{i:02d}.csv" for i in range(1, indicators + 1)]
    if manifest.exists() and json.loads(manifest.read_text()) == params and all(f.exists() for f in files):
        return files
    codes = lsoa_codes(lsoas)
    jobs = [(spec, i, codes, periods, path) for i, (spec, path) in enumerate(zip(synthetic_specs(indicators), files), 1)]
    with ProcessPoolExecutor(max_workers=2) as pool:  # both cores: half the wait on a fresh clone
        list(pool.map(_write_one, jobs))
    manifest.write_text(json.dumps(params))
    return files


def _write_one(job: tuple) -> None:
    spec, index, codes, periods, path = job
    synthetic_frame(spec, index, codes, periods).to_csv(path, index=False, lineterminator="\n")


def export_observations(engine: Engine, folder: Path) -> tuple[list[Path], list[str]]:
    """The real snapshot's loaded (parsed and validated) rows, written as one tidy CSV payload per indicator."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    cols = [Observation.__table__.c[c] for c in TIDY_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).order_by(Observation.indicator_id)).fetchall()
    files, ids, current, writer, handle = [], [], None, None, None
    for row in rows:
        if row[0] != current:
            if handle:
                handle.close()
            current = row[0]
            path = folder / f"{current}.csv"
            handle = path.open("w", newline="", encoding="utf-8")
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(TIDY_COLUMNS)
            files.append(path)
            ids.append(current)
        writer.writerow(["" if v is None else v for v in row])
    if handle:
        handle.close()
    return files, ids


class PayloadSource(Source):
    """Bench-only source: read_offline yields one tidy CSV payload per file; parse reads it the way the real
    parsers read CSV (read_csv_strict) and returns the rows of the catalog indicators asked for."""

    title = "Benchmark payloads"
    producer = "benchmark"
    markers = {MARKER: "suppressed (synthetic marker)"}
    has_live = False

    def __init__(self, files: list[Path], name: str = SOURCE):
        self.files = [Path(f) for f in files]
        self.name = name

    def read_offline(self, specs):
        for path in self.files:
            yield Payload(location=f"bench/{path.name}", content=path.read_bytes())

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        frame = read_csv_strict(payload, TIDY_COLUMNS, self.name, final_newline=True)
        return tidy(frame[frame["indicator_id"].isin({s.id for s in specs})])


def make_template(path: Path, specs: list[IndicatorSpec]) -> Path:
    """An initialised, empty database (tracker.store.initialise: schema, departments, geography, catalog) plus
    the given benchmark indicators and one `run` row the non-tracker contenders attribute their rows to."""
    from datetime import datetime

    from db.engine import make_engine
    from db.models import Run
    from tracker.store import initialise

    from bench.common import checkpoint

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    initialise(engine)
    add_indicators(engine, specs)
    with engine.begin() as conn:
        now = datetime.now()
        conn.execute(insert(Run).values(id=1, source="bench_other_tools", mode="offline", status="succeeded",
                                        started_at=now, finished_at=now, locations=[], checksums={}, problems={}))
    engine.dispose()
    checkpoint(path)
    return path
