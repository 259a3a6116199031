"""Shared validation of parsed tidy frames: suppression markers, numbers, area codes, duplicates and
impossible values. Nothing is dropped silently: every row not loaded is counted by reason, with examples,
in the run's `problems`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.base import NUMERIC_COLUMNS, TIDY_COLUMNS, SourceFormatError
from tracker.catalog import IndicatorSpec

KEY = ["indicator_id", "area_code", "period", "sex", "age", "category_type", "category"]
EXAMPLES = 5


@dataclass
class Problems:
    rejected: dict[str, dict] = field(default_factory=dict)
    unmapped: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # left out by rule, not an error: reason -> count
    keys: list[pd.DataFrame] = field(default_factory=list)  # KEY columns of every rejected or unmapped row

    def add(self, kind: str, reason: str, rows: pd.DataFrame, keys: pd.DataFrame | None = None) -> None:
        """Count `rows` under `reason`; the first few become examples ("indicator area period"). `keys`: the rows
        as they were, where `rows` were decorated for the examples."""
        if rows.empty:
            return
        self.keys.append((rows if keys is None else keys)[[c for c in KEY if c in rows.columns]])
        bucket = getattr(self, kind).setdefault(reason, {"count": 0, "examples": []})
        bucket["count"] += len(rows)
        room = EXAMPLES - len(bucket["examples"])
        if room > 0:
            bucket["examples"].extend(f"{i} {a} {p}" for i, a, p in zip(
                *(rows[c].iloc[:room].tolist() for c in ("indicator_id", "area_code", "period"))))

    @property
    def rejected_count(self) -> int:
        return sum(b["count"] for b in self.rejected.values())

    @property
    def unmapped_count(self) -> int:
        return sum(b["count"] for b in self.unmapped.values())

    def as_dict(self) -> dict:
        return {"rejected": self.rejected, "unmapped": self.unmapped, "skipped": self.skipped}


# A plain number as publishers write it; anything else (blank, marker, "1,234", " 5 ") takes the careful path.
PLAIN_NUMBER = r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"


def _plain_numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse the cells that are plain numbers in C (pyarrow): (numbers, which cells were plain or empty: those
    need nothing more). None when the column holds something other than text and missing values, for the careful
    path to handle."""
    try:
        arr = pa.array(raw, from_pandas=True)  # zero-copy for pandas' Arrow-backed text columns
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    plain = pc.fill_null(pc.match_substring_regex(arr, PLAIN_NUMBER), False)
    numbers = pc.cast(pc.if_else(plain, arr, pa.scalar(None, pa.string())), pa.float64())
    done = pc.or_(plain, pc.fill_null(pc.equal(arr, ""), False))  # an empty field is NULL, its note kept
    return numbers.to_numpy(zero_copy_only=False).copy(), done.to_numpy(zero_copy_only=False)


def to_numbers(frame: pd.DataFrame, markers: dict[str, str], problems: Problems) -> pd.DataFrame:
    """Numbers stay numbers; a known marker becomes NULL with its meaning in the note; an empty field is
    NULL (its note, if the source gave one, is kept); anything else rejects the row, with the reason.
    Plain numbers (nearly every cell) are parsed in bulk; only the other cells are cleaned one by one."""
    out = frame.copy()
    bad = np.zeros(len(out), dtype=bool)
    notes = out["note"].astype(object).where(out["note"].notna() & (out["note"].astype(str) != ""), None).to_numpy(copy=True)
    lower_markers = {k.strip().lower(): v for k, v in markers.items()}
    # a marker that looks like a number (e.g. "-1") must not be read as one
    numeric_markers = [k for k in markers if pd.notna(pd.to_numeric(k.strip(), errors="coerce"))]
    for col in NUMERIC_COLUMNS:
        raw = out[col]
        present = raw.notna().to_numpy()
        bulk = None if pd.api.types.is_numeric_dtype(raw) else _plain_numbers(raw)
        if pd.api.types.is_numeric_dtype(raw):
            numbers, careful = raw.to_numpy(dtype=float, na_value=np.nan).copy(), np.zeros(len(raw), dtype=bool)
        elif bulk is None:
            numbers, careful = np.full(len(raw), np.nan), present
        else:
            numbers, done = bulk
            careful = ~done & present
            if numeric_markers:
                careful |= raw.isin(numeric_markers).to_numpy()
        if careful.any():
            odd = raw[careful]
            text = odd.astype(str).str.strip()
            # a comma only as a thousands separator ("1,234.5"); "12,5" or "1,2,3" is ambiguous, never guessed
            thousands = text.str.fullmatch(THOUSANDS).to_numpy(dtype=bool)
            text = text.where(~thousands, text.str.replace(",", "", regex=False))
            lower = text.str.lower()
            is_marker = lower.isin(lower_markers).to_numpy()
            parsed = pd.to_numeric(text.where(~is_marker & ~text.str.contains(",", regex=False)), errors="coerce")
            parsed = parsed.astype(float).to_numpy()
            numbers[careful] = parsed
            if col == "value" and is_marker.any():
                at = careful.nonzero()[0][is_marker]
                marker_note = lower[is_marker].map(lower_markers)
                notes[at] = [f"{n}; {m}" if n else m for n, m in zip(notes[at], marker_note)]
            unknown = np.isnan(parsed) & text.ne("").to_numpy() & ~is_marker
            comma = text.str.contains(",", regex=False).to_numpy()
            nan_text = lower.isin({"nan", "-nan", "+nan"}).to_numpy()  # NaN spelt out is not a number nor a marker
            for reason, which in ((f"ambiguous separator in {col} (a comma that is not a thousands separator)", unknown & comma),
                                  (f"non-finite {col} (NaN)", unknown & nan_text),
                                  (f"non-numeric {col}", unknown & ~comma & ~nan_text)):
                if which.any():
                    rows = np.zeros(len(raw), dtype=bool)
                    rows[careful.nonzero()[0][which]] = True
                    bad |= rows
                    _reject_with_cell(problems, reason, out, raw, rows)
        # 1e309, inf, Infinity: parse to ±inf, which no statistic can use (and Excel cannot hold)
        infinite = np.isinf(numbers)
        if infinite.any():
            bad |= infinite
            _reject_with_cell(problems, f"non-finite {col} (infinity or overflow)", out, raw, infinite)
        out[col] = numbers
    out["note"] = pd.Series(notes, index=out.index, dtype=object)  # None, not NaN, where no note
    return out[~bad]


THOUSANDS = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?"


def _reject_with_cell(problems: Problems, reason: str, frame: pd.DataFrame, raw: pd.Series, rows: np.ndarray) -> None:
    """Reject `rows`, the offending cell shown in each example."""
    problems.add("rejected", reason,
                 frame[rows].assign(area_code=frame.loc[rows, "area_code"] + " (" + raw[rows].astype(str) + ")"),
                 keys=frame[rows])


def harmonise_areas(frame: pd.DataFrame, mapper, problems: Problems) -> pd.DataFrame:
    """Map each area code to the current code; rows that cannot be mapped are counted with the reason."""
    # worked out once per distinct code (a payload repeats each area many times), then spread over the rows
    positions, distinct = pd.factorize(frame["area_code"])  # position -1: a missing code
    current = mapper.map_series(pd.Series(distinct, dtype=object)).tolist()
    mapped = np.array([*current, None], dtype=object).take(positions)
    unmapped = pd.isna(mapped)
    if unmapped.any():
        rows = frame.loc[unmapped, [c for c in KEY if c in frame.columns]]  # what the problems keep of each row
        codes = rows["area_code"]
        why = codes.map({code: mapper.why_unmapped(code) for code in codes.unique()})  # once per code
        for reason, part in rows.groupby(why, sort=False):
            problems.add("unmapped", reason, part)
    # a new frame either way: assigning a column below leaves `frame` as it was (copy-on-write)
    out = frame[~unmapped] if unmapped.any() else frame.copy(deep=False)
    changed = np.array([c is not None and c != d for d, c in zip(distinct.tolist(), current)] + [False])
    recoded = pd.Series(changed.take(positions)[~unmapped], index=out.index)
    if recoded.any():  # else every code is already the current one, as written
        out["area_code"] = pd.Series(mapped[~unmapped], index=out.index).astype(str)
    # An old code recoded to a current one, where the source also publishes the current code's own row for
    # the same key (e.g. Buckinghamshire county and the unitary): the current code's own row wins.
    dup = out.duplicated(KEY, keep=False) if recoded.any() else None
    if dup is not None and dup.any():
        part = out[dup].assign(_recoded=recoded[dup])
        has_own = ~part.groupby(KEY, dropna=False)["_recoded"].transform("all")
        drop = part.index[part["_recoded"] & has_own]
        if len(drop):
            reason = "old area code superseded by the current code's own row for the same period"
            problems.skipped[reason] = problems.skipped.get(reason, 0) + len(drop)
            out = out.drop(index=drop)
    return out


def check_values(frame: pd.DataFrame, specs: dict[str, IndicatorSpec], problems: Problems) -> pd.DataFrame:
    """Reject implausible values (outside the indicator's catalog `limits`: a negative rate, a percentage over 100,
    a life expectancy of 300 years) and duplicated keys."""
    v = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    # each row's limits from its indicator's spec: worked out per indicator, compared in bulk
    positions, ids = pd.factorize(frame["indicator_id"])
    low = np.array([-np.inf if specs[i].limits[0] is None else specs[i].limits[0] for i in ids], dtype=float)
    high = np.array([np.inf if specs[i].limits[1] is None else specs[i].limits[1] for i in ids], dtype=float)
    over = v > high[positions] if len(ids) else np.zeros(len(v), dtype=bool)
    under = v < low[positions] if len(ids) else np.zeros(len(v), dtype=bool)
    for which, word in ((over, "above"), (under, "below")):
        if which.any():
            for indicator_id, rows in frame[which].groupby("indicator_id"):
                spec = specs[indicator_id]
                limit = spec.limits[1] if word == "above" else spec.limits[0]
                problems.add("rejected", f"{spec.value_type} {word} its plausible limit {limit:g} ({spec.unit})", rows)
    bad = over | under
    ci_wrong = ((frame["lci95"] > frame["value"] + 1e-9) | (frame["uci95"] < frame["value"] - 1e-9)).to_numpy()
    problems.add("rejected", "value outside its own 95% confidence interval", frame[ci_wrong & ~bad])
    bad |= ci_wrong
    out = frame[~bad]
    dup = out.duplicated(KEY, keep=False)
    if not dup.any():
        return out
    # identical duplicates are the same fact published twice (e.g. Fingertips' England rows); drop quietly
    repeat = np.zeros(len(out), dtype=bool)
    repeat[dup.to_numpy().nonzero()[0]] = out[dup].duplicated().to_numpy()
    out = out[~repeat]
    dup = out.duplicated(KEY, keep=False)
    problems.add("rejected", "duplicated key with different values", out[dup])
    return out[~dup]


def _dates(values: pd.Series) -> pd.Series:
    """pd.to_datetime once per distinct value (a payload has few distinct period dates)."""
    positions, distinct = pd.factorize(values)  # position -1: a missing date, NaT (appended last)
    parsed = pd.to_datetime(pd.Series(distinct, dtype=object)).to_numpy()
    return pd.Series(np.append(parsed, np.array(["NaT"], dtype=parsed.dtype)).take(positions), index=values.index)


KNOWN_SEXES = ("Persons", "Male", "Female")
# the longest text each key column holds (db.models): checked here so SQLite and PostgreSQL refuse the same rows
TEXT_LIMITS = {"period": 40, "sex": 20, "age": 40, "category_type": 120, "category": 200}
# text that is markup or a spreadsheet formula, not a label a publisher writes: an HTML tag, a markdown link,
# a leading =, @ or control character
NOT_A_LABEL = r"<\s*[A-Za-z/!]|\]\(|^[=@]|[\x00-\x08\x0b-\x1f\x7f]"


def check_labels(frame: pd.DataFrame, problems: Problems) -> pd.DataFrame:
    """Only known sexes, and ages, periods and categories that are plain labels of a length both databases hold;
    anything else is rejected with the reason (it would become a page option, an export cell, a key)."""
    bad = ~frame["sex"].isin(KNOWN_SEXES).to_numpy()
    if bad.any():
        _reject_with_cell(problems, f"unknown sex (valid: {', '.join(KNOWN_SEXES)})", frame, frame["sex"], bad)
    for col, longest in TEXT_LIMITS.items():
        values = frame[col].astype(str)
        positions, distinct = pd.factorize(values)  # each check once per distinct label; -1 (missing) passes
        labels = pd.Series(distinct, dtype=object)
        too_long = np.append(labels.str.len().to_numpy() > longest, False).take(positions) & ~bad
        if too_long.any():
            _reject_with_cell(problems, f"{col} longer than {longest} characters", frame, values.str[:40] + "…", too_long)
        bad |= too_long
        odd = np.append(labels.str.contains(NOT_A_LABEL, regex=True).to_numpy(dtype=bool), False).take(positions) & ~bad
        if odd.any():
            _reject_with_cell(problems, f"{col} is markup or a formula, not a label", frame, values, odd)
        bad |= odd
    return frame[~bad]


def prepare(frame: pd.DataFrame, specs: list[IndicatorSpec], markers: dict[str, str], mapper) -> tuple[pd.DataFrame, Problems]:
    """Parsed tidy frame -> rows ready to load, and the problems found on the way."""
    missing = [c for c in TIDY_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceFormatError(f"parser returned no {', '.join(missing)} column(s)")
    by_id = {s.id: s for s in specs}
    unknown = sorted(set(frame["indicator_id"].unique()) - set(by_id))
    if unknown:
        raise SourceFormatError(f"parser returned indicator(s) not in the catalog: {', '.join(unknown[:5])}")
    problems = Problems()
    out = to_numbers(frame[list(TIDY_COLUMNS)], markers, problems)
    out = harmonise_areas(out, mapper, problems)
    for col in ("sex", "age", "category_type", "category"):
        out[col] = out[col].fillna("").astype(str)
    out = check_labels(out, problems)
    # dates as datetime64 and missing numbers as NaN: db.load turns them into what the database stores
    out["period_start"] = _dates(out["period_start"])
    out["period_end"] = _dates(out["period_end"])
    out = check_values(out, by_id, problems)
    problems.keys = [_stored_keys(problems.keys, mapper)] if problems.keys else []
    return out.reset_index(drop=True), problems


def _stored_keys(keys: list[pd.DataFrame], mapper) -> pd.DataFrame:
    """Rejected rows' keys as the database stores them (current area codes, text labels): the loader keeps the
    stored value of each."""
    out = pd.concat(keys, ignore_index=True)
    out["area_code"] = mapper.map_series(out["area_code"]).fillna(out["area_code"]).astype(str)
    for col in ("period", "sex", "age", "category_type", "category"):
        out[col] = out[col].fillna("").astype(str)
    return out.drop_duplicates()
