"""Shared validation of parsed tidy frames: suppression markers, numbers, area codes, duplicates and
impossible values. Nothing is dropped silently: every row not loaded is counted by reason, with examples,
in the run's `problems`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.base import NUMERIC_COLUMNS, TIDY_COLUMNS, SourceFormatError
from tracker.catalog import IndicatorSpec

KEY = ["indicator_id", "area_code", "period", "sex", "age", "category_type", "category"]
EXAMPLES = 5


@dataclass
class Problems:
    rejected: dict[str, dict] = field(default_factory=dict)
    unmapped: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # left out by rule, not an error: reason -> count

    def add(self, kind: str, reason: str, rows: pd.DataFrame, describe) -> None:
        if rows.empty:
            return
        bucket = getattr(self, kind).setdefault(reason, {"count": 0, "examples": []})
        bucket["count"] += len(rows)
        room = EXAMPLES - len(bucket["examples"])
        if room > 0:
            bucket["examples"].extend(describe(r) for r in rows.head(room).itertuples(index=False))

    @property
    def rejected_count(self) -> int:
        return sum(b["count"] for b in self.rejected.values())

    @property
    def unmapped_count(self) -> int:
        return sum(b["count"] for b in self.unmapped.values())

    def as_dict(self) -> dict:
        return {"rejected": self.rejected, "unmapped": self.unmapped, "skipped": self.skipped}


def _describe(row) -> str:
    return f"{row.indicator_id} {row.area_code} {row.period}"


def to_numbers(frame: pd.DataFrame, markers: dict[str, str], problems: Problems) -> pd.DataFrame:
    """Numbers stay numbers; a known marker becomes NULL with its meaning in the note; an empty field is
    NULL (its note, if the source gave one, is kept); anything else rejects the row, with the reason."""
    out = frame.copy()
    bad = pd.Series(False, index=out.index)
    notes = out["note"].astype(object).where(out["note"].notna() & (out["note"].astype(str) != ""), None)
    lower_markers = {k.strip().lower(): v for k, v in markers.items()}
    for col in NUMERIC_COLUMNS:
        raw = out[col]
        if pd.api.types.is_numeric_dtype(raw):
            out[col] = raw.astype(float)
            continue
        text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip().str.replace(",", "", regex=False)
        numbers = pd.to_numeric(text, errors="coerce")
        blank = text.eq("")
        is_marker = text.str.lower().isin(lower_markers)
        if col == "value" and is_marker.any():
            marker_note = text[is_marker].str.lower().map(lower_markers)
            notes = notes.astype(object)
            notes[is_marker] = [
                f"{n}; {m}" if n else m for n, m in zip(notes[is_marker], marker_note)
            ]
        unknown = numbers.isna() & ~blank & ~is_marker & ~text.str.lower().isin({"nan", "na"})
        bad |= unknown
        if unknown.any():
            problems.add(
                "rejected",
                f"non-numeric {col}",
                out[unknown].assign(area_code=out.loc[unknown, "area_code"] + " (" + raw[unknown].astype(str) + ")"),
                _describe,
            )
        out[col] = numbers.astype(float)
    out["note"] = notes
    return out[~bad]


def harmonise_areas(frame: pd.DataFrame, mapper, problems: Problems) -> pd.DataFrame:
    """Map each area code to the current code; rows that cannot be mapped are counted with the reason."""
    mapped = mapper.map_series(frame["area_code"])
    unmapped = mapped.isna()
    if unmapped.any():
        for code, rows in frame[unmapped].groupby("area_code"):
            problems.add("unmapped", mapper.why_unmapped(code), rows, _describe)
    out = frame[~unmapped].copy()
    recoded = out["area_code"] != mapped[~unmapped]
    out["area_code"] = mapped[~unmapped].astype(str)
    # An old code recoded to a current one, where the source also publishes the current code's own row for
    # the same key (e.g. Buckinghamshire county and the unitary): the current code's own row wins.
    dup = out.duplicated(KEY, keep=False) & recoded.any()
    if dup.any():
        part = out[dup].assign(_recoded=recoded[dup])
        has_own = ~part.groupby(KEY, dropna=False)["_recoded"].transform("all")
        drop = part.index[part["_recoded"] & has_own]
        if len(drop):
            reason = "old area code superseded by the current code's own row for the same period"
            problems.skipped[reason] = problems.skipped.get(reason, 0) + len(drop)
            out = out.drop(index=drop)
    return out


def check_values(frame: pd.DataFrame, specs: dict[str, IndicatorSpec], problems: Problems) -> pd.DataFrame:
    """Reject impossible values (a negative rate, a percentage over 100) and duplicated keys."""
    bad = pd.Series(False, index=frame.index)
    for indicator_id, rows in frame.groupby("indicator_id"):
        spec = specs[indicator_id]
        v = rows["value"]
        if spec.value_type == "proportion":
            top = spec.multiplier or 100.0
            over = v > top
            problems.add("rejected", f"percentage over {top:g}", rows[over], _describe)
            bad[rows.index[over]] = True
        if spec.value_type != "score" and not spec.options.get("allow_negative"):
            neg = v < 0
            problems.add("rejected", f"negative {spec.value_type}", rows[neg], _describe)
            bad[rows.index[neg]] = True
    ci_wrong = (frame["lci95"] > frame["value"] + 1e-9) | (frame["uci95"] < frame["value"] - 1e-9)
    problems.add("rejected", "value outside its own 95% confidence interval", frame[ci_wrong & ~bad], _describe)
    bad |= ci_wrong
    out = frame[~bad]
    # identical duplicates are the same fact published twice (e.g. Fingertips' England rows); drop quietly
    out = out.drop_duplicates()
    dup = out.duplicated(KEY, keep=False)
    problems.add("rejected", "duplicated key with different values", out[dup], _describe)
    return out[~dup]


def prepare(frame: pd.DataFrame, specs: list[IndicatorSpec], markers: dict[str, str], mapper) -> tuple[pd.DataFrame, Problems]:
    """Parsed tidy frame -> rows ready to load, and the problems found on the way."""
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceFormatError(f"parser returned no {', '.join(missing)} column(s)")
    by_id = {s.id: s for s in specs}
    unknown = sorted(set(frame["indicator_id"]) - set(by_id))
    if unknown:
        raise SourceFormatError(f"parser returned indicator(s) not in the catalog: {', '.join(unknown[:5])}")
    problems = Problems()
    out = to_numbers(frame[list(TIDY_COLUMNS)], markers, problems)
    out = harmonise_areas(out, mapper, problems)
    for col in ("sex", "age", "category_type", "category"):
        out[col] = out[col].fillna("").astype(str)
    out["period_start"] = pd.to_datetime(out["period_start"]).dt.date
    out["period_end"] = pd.to_datetime(out["period_end"]).dt.date
    out = check_values(out, by_id, problems)
    out = out.replace({np.nan: None})
    return out.reset_index(drop=True), problems
