"""The precomputed analysis of one data version, saved in the tracker's own database (tables analysis_save and
analysis_part, migration 0004), so every dashboard process on every host reads the same result and none computes it
again. No pickle: frames are stored as Parquet (data, never code) and the structure around them as JSON.

A save is written in one transaction, so a reader sees all of it or none of it. It is keyed by the data version and
by a digest of the analysis code (tracker.analysis.data.CODE_DIGEST): new code never reads an old save."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Boolean, Date, Engine, Float, Integer, String, cast, delete, insert, select, tuple_

from db.columns import per_distinct, text_column
from db.models import AnalysisPart, AnalysisRow, AnalysisSave, Meta, Run
from tracker.memory import give_back_freed_memory

log = logging.getLogger("tracker.analysis")

STRUCTURE = 0  # part 0 holds the JSON structure; parts 1.. hold one Parquet frame each


class SaveReplaced(LookupError):
    """A newer save replaced the one being read: the caller builds what it wanted from the data instead."""


class NotStorable(TypeError):
    """A value with no faithful Parquet/JSON form: that memo entry is not saved (it is rebuilt when first used)."""


JSON_COLUMNS = "_saved_json_columns"
OBJECT_COLUMNS = "_saved_object_columns"  # text kept in object columns (the analysis filters those fastest)
OBJECT_INDEX = "_saved_object_index"
NAN_MARK = "\x00nan:"  # a saved frame's extra column: where an object column held NaN, not None


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet. Object columns that are not plain text (lists from JSON fields, mixed numbers and text)
    are stored as JSON text and named in the frame's attrs, so reading gives back the same Python values."""
    if not all(isinstance(c, str) for c in frame.columns):
        raise NotStorable("column names must be text")
    as_json = [c for c in frame.columns if frame[c].dtype == object
               and pd.api.types.infer_dtype(frame[c], skipna=True) not in ("string", "empty", "boolean")]
    # text in object columns, and which missing values were NaN rather than None (both mean "no value" to pandas,
    # but a reader comparing with `is None` would see the difference)
    as_object = [c for c in frame.columns if frame[c].dtype == object and c not in as_json]
    frame = frame.copy(deep=False)
    for c in as_object:
        missing = frame[c].isna().to_numpy()
        if missing.any():  # the type of the missing values only (of every value, this took 4 s of a save)
            nan = np.zeros(len(frame), bool)
            nan[missing] = [isinstance(v, float) for v in frame[c].to_numpy()[missing]]
            if nan.any():
                frame[NAN_MARK + c] = nan
    for c in as_json:
        frame[c] = [None if _missing(v) else _json(v) for v in frame[c]]
    # Parquet gives text back in pandas' own string dtype: the attrs say which columns to turn back into objects
    frame.attrs = {**frame.attrs, JSON_COLUMNS: as_json, OBJECT_COLUMNS: as_object,
                   OBJECT_INDEX: [i for i, level in enumerate(_levels(frame.index)) if level.dtype == object]}
    buffer = io.BytesIO()
    try:
        # as pandas' to_parquet writes it (its attrs in the schema's metadata), but converted to Arrow a slice of rows
        # at a time: Arrow's copy of the largest frame (every area's rows) was the peak of a refresh's memory
        schema = _schema(frame)
        schema = schema.with_metadata({**schema.metadata, b"PANDAS_ATTRS": json.dumps(frame.attrs).encode()})
        with pq.ParquetWriter(buffer, schema, compression="zstd") as writer:
            for at in range(0, max(len(frame), 1), ROWS_PER_SLICE):
                writer.write_table(pa.Table.from_pandas(frame.iloc[at:at + ROWS_PER_SLICE], schema=schema,
                                                        preserve_index=None))
    except (ValueError, TypeError) as exc:  # pyarrow's own type errors are ValueError/TypeError
        raise NotStorable(str(exc)) from exc
    if len(frame) >= 10_000:  # its Arrow copies, given back (1-3 ms): the next frame's are not put on top of them
        give_back_freed_memory()
    return buffer.getvalue()


ROWS_PER_SLICE = 20_000


def _schema(frame: pd.DataFrame) -> pa.Schema:
    """frame's Arrow schema, with pandas' metadata, as pa.Schema.from_pandas gives it. Arrow infers an object column's
    type by converting all of it (for every area's rows, a copy of all their text at once, on top of the slices
    written): a frame with a plain row index gets it from a one-row stand-in holding each object column's first
    value, with the index's length set back in the metadata."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.empty:
        return pa.Schema.from_pandas(frame, preserve_index=None)
    head = frame.iloc[:1].copy()
    for c in head.columns:
        if head[c].dtype == object:
            values = frame[c].to_numpy()
            present = np.flatnonzero(pd.notna(values))
            head[c] = pd.Series(values[present[:1]] if len(present) else [None], index=head.index, dtype=object)
    schema = pa.Schema.from_pandas(head, preserve_index=None)
    pandas_meta = schema.pandas_metadata
    pandas_meta["index_columns"][0]["stop"] = frame.index.stop
    return schema.with_metadata({**schema.metadata, b"pandas": json.dumps(pandas_meta).encode()})


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _json(value) -> str:
    try:
        return json.dumps(value.item() if isinstance(value, np.generic) else value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NotStorable(f"{type(value).__name__} in a column") from exc


def _read_frame(payload: bytes, columns=None) -> pd.DataFrame:
    """A frame _frame_bytes wrote; columns: only those (the others are not decoded)."""
    schema = pq.read_schema(io.BytesIO(payload))
    text_columns = json.loads((schema.metadata or {}).get(b"PANDAS_ATTRS", b"{}")).get(OBJECT_COLUMNS) or []
    if columns is not None:
        text_columns = [c for c in text_columns if c in columns]
    wanted = None if columns is None else {*columns, *(NAN_MARK + c for c in text_columns)}
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}  # stored index
    kept = [n for n in schema.names if n not in text_columns and n not in index and (wanted is None or n in wanted)]
    frame = pd.read_parquet(io.BytesIO(payload), engine="pyarrow", columns=kept)
    frame.attrs.pop(OBJECT_COLUMNS, None)
    # text kept in object columns: read dictionary-encoded, so each distinct value becomes one Python object. A
    # string per row took most of a process's memory: a new process showing one place's profile and departments
    # held 742 MB over its imports, now 356 MB, and it reads faster (frames derived by merges share the objects)
    text = pq.read_table(io.BytesIO(payload), columns=text_columns, read_dictionary=text_columns)
    for c in text_columns:
        values = _objects(text.column(c))
        if NAN_MARK + c in frame.columns:
            values[frame.pop(NAN_MARK + c).to_numpy()] = np.nan
        frame[c] = pd.Series(values, index=frame.index, dtype=object)
    if text_columns:
        frame = frame[[n for n in schema.names if n in frame.columns]]  # the saved column order
    for c in [c for c in frame.attrs.pop(JSON_COLUMNS, None) or () if c in frame.columns]:
        frame[c] = pd.Series([None if v is None else json.loads(v) for v in frame[c]], index=frame.index, dtype=object)
    objects = frame.attrs.pop(OBJECT_INDEX, None) or ()
    if objects:
        levels = [level.astype(object) if i in objects else level for i, level in enumerate(_levels(frame.index))]
        frame.index = pd.MultiIndex.from_arrays(levels) if isinstance(frame.index, pd.MultiIndex) else levels[0]
    return frame


def _objects_shared(frame: pd.DataFrame) -> pd.DataFrame:
    """frame with equal values of each object column one Python object, missing values as they were (None or NaN):
    parts decoded apart each have their own objects (_objects), a few hundred per part, kept once instead."""
    for c in frame.columns:
        if frame[c].dtype == object:
            values = frame[c].to_numpy()
            try:
                shared = per_distinct(values, lambda distinct: distinct.tolist())
            except TypeError:  # unhashable values (lists from JSON): left as they are
                continue
            missing = pd.isna(values)
            shared[missing] = values[missing]
            frame[c] = pd.Series(shared, index=frame.index, dtype=object)
    return frame


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A saved text (or boolean) column as an object array, None where missing; each distinct text one object."""
    if not pa.types.is_dictionary(column.type):  # booleans, or no value at all
        return np.asarray(column.to_pylist(), dtype=object).reshape(-1)
    if column.num_chunks == 0:
        return np.empty(0, dtype=object)
    column = column.unify_dictionaries()  # the file is read in batches: one dictionary for all of them
    words = np.asarray(column.chunk(0).dictionary.to_pylist() + [None], dtype=object)
    return np.concatenate([words[chunk.indices.fill_null(len(words) - 1).to_numpy(zero_copy_only=False)]
                           for chunk in column.chunks])


def _levels(index: pd.Index) -> list[pd.Index]:
    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


def encode(value, parts: list[bytes]):
    """`value` as JSON-able structure; frames and series are appended to `parts` and referred to by number."""
    if isinstance(value, Encoded):  # encoded already: its parts as they are
        offset = len(parts)
        parts.extend(value.parts)
        return _renumbered(value.node, offset)
    if isinstance(value, pd.DataFrame):
        parts.append(_frame_bytes(value))
        return {"frame": len(parts)}
    if isinstance(value, pd.Series):
        parts.append(_frame_bytes(value.to_frame(name="values")))
        return {"series": len(parts), "name": encode(value.name, parts)}
    if isinstance(value, (set, frozenset)):
        return {"frozenset" if isinstance(value, frozenset) else "set": [encode(v, parts) for v in sorted(value, key=repr)]}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, parts) for v in value]}
    if isinstance(value, list):
        return {"list": [encode(v, parts) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, parts), encode(v, parts)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (str, bool, int, float)):
        return {"v": value}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    raise NotStorable(f"{type(value).__name__} values are not saved")


def decode(node, parts: dict[int, bytes]):
    (kind, content), = ((k, v) for k, v in node.items() if k != "name")
    if kind == "frame":
        return _read_frame(parts[content])
    if kind == "series":
        series = _read_frame(parts[content])["values"]
        series.name = decode(node["name"], parts)
        return series
    if kind == "batches":  # a frame saved a batch of indicators per part (Encoded.batches)
        return _objects_shared(joined([decode(frame, parts) for _ids, frame in content]))
    if kind in ("set", "frozenset", "tuple", "list"):
        items = [decode(v, parts) for v in content]
        return {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list}[kind](items)
    if kind == "dict":
        return {decode(k, parts): decode(v, parts) for k, v in content}
    if kind == "float":
        return float(content)
    if kind == "timestamp":
        return pd.Timestamp(content)
    return content


def encode_state(state: dict, memo: dict) -> tuple[dict, list[bytes]]:
    """The Store's fields and its memo as (structure, parts). Memo entries that cannot be stored are left out."""
    parts: list[bytes] = []
    structure = {"fields": {name: encode(value, parts) for name, value in state.items()}, "memo": []}
    for key, value in memo.items():
        mark = len(parts)
        try:
            structure["memo"].append([encode(key, parts), encode(value, parts)])
        except NotStorable as exc:
            del parts[mark:]
            log.debug("not saving %r: %s", key, exc)
    return structure, parts


def append_encoded(structure: dict, parts: list[bytes], entries: list, extra: list[bytes]) -> None:
    """Add memo entries encoded elsewhere (encode_state's memo entries and their own parts, numbered from 1) to
    `structure` and `parts`, numbering their parts after these; an entry whose key is already there is left out."""
    have = {json.dumps(key, sort_keys=True) for key, _value in structure["memo"]}
    offset = len(parts)
    used: set[int] = set()
    for key, value in entries:
        if json.dumps(key, sort_keys=True) not in have:
            structure["memo"].append([key, _renumbered(value, offset)])
            used |= part_numbers(value)
    # parts of entries left out stay as empty placeholders, so the numbering holds
    parts.extend(part if number in used else b"" for number, part in enumerate(extra, start=1))


def _renumbered(node, offset: int):
    """A structure node whose parts are numbered `offset` further on."""
    if isinstance(node, dict):
        return {kind: content + offset if kind in ("frame", "series") else _renumbered(content, offset)
                for kind, content in node.items()}
    if isinstance(node, list):
        return [_renumbered(item, offset) for item in node]
    return node


def part_numbers(node) -> set[int]:
    """The parts (Parquet frames) a structure node refers to."""
    found: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for kind, content in item.items():
                if kind in ("frame", "series"):
                    found.add(content)
                else:
                    stack.append(content)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames built a batch of indicators at a time, in one frame with the dtypes one build of every row gives (their
    labels are object columns, db.columns.text_column, whether a batch has any or not)."""
    parts = [p for p in parts if len(p)] or parts[:1]  # an empty part's dtypes (object) would count in the concat
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


class Encoded:
    """A memoised value held as a save holds it (its structure and Parquet parts, a fraction of the memory) until it
    is used again: the precompute keeps every area's rows, and what it has finished with, this way rather than as
    frames (tracker.analysis.warm), and saves them as they are. Store.derived decodes it when it is next used; a frame
    encoded a batch of indicators per part (Encoded.batches) also gives a few indicators' rows alone (rows_of),
    decoding only their parts."""

    def __init__(self, node, parts: list[bytes]):
        self.node, self.parts = node, parts  # parts numbered from 1, as in a save

    @classmethod
    def of(cls, value) -> Encoded:
        parts: list[bytes] = []
        return cls(encode(value, parts), parts)

    @classmethod
    def batches(cls, frames: Iterable[tuple[list[str], pd.DataFrame]]) -> Encoded:
        """(indicator ids, their rows) for each batch, encoded as each comes: one frame (decode() gives the frames
        joined), a part per batch."""
        parts: list[bytes] = []
        return cls({"batches": [[list(ids), encode(frame.reset_index(drop=True), parts)] for ids, frame in frames]},
                   parts)

    def _parts(self, numbers) -> dict[int, bytes]:
        return {n: self.parts[n - 1] for n in numbers}

    def decode(self):
        return decode(self.node, self._parts(part_numbers(self.node)))

    def rows_of(self, indicator_ids, columns=None) -> pd.DataFrame:
        """The rows of these indicators (only `columns`, if given): of a frame encoded by batches, only the batches
        holding them are decoded, one at a time."""
        wanted = set(indicator_ids)
        batches = self.node.get("batches")
        nodes = [self.node] if batches is None else [frame for ids, frame in batches if wanted & set(ids)] or [
            batches[0][1]]
        read = None if columns is None else list(dict.fromkeys(["indicator_id", *columns]))
        parts = []
        for node in nodes:
            frame = decode(node, self._parts(part_numbers(node))) if read is None else _read_frame(
                self.parts[node["frame"] - 1], read)
            parts.append(frame.loc[frame["indicator_id"].isin(wanted), list(frame.columns if columns is None else columns)])
            del frame
        return joined(parts)


class SavedMemo(MutableMapping):
    """The memo of a saved analysis, read lazily: each entry's frames are fetched from the database and decoded the
    first time it is used, so a process (an export, a dashboard showing one page) holds only what it uses. An entry
    whose parts are gone (a newer save replaced this one) or unreadable is dropped: the caller computes it again."""

    def __init__(self, fetch, entries: dict):
        self._fetch = fetch  # part numbers -> {part number: bytes}
        self._pending = entries  # memo key -> its structure node, not decoded yet
        self._values: dict = {}

    def __getitem__(self, key):
        if key in self._values:
            return self._values[key]
        node = self._pending.pop(key)  # KeyError: not in the save
        try:
            value = decode(node, self._fetch(part_numbers(node)))
        except Exception as exc:  # noqa: BLE001 - a damaged or replaced save is computed again, never an error
            log.warning("could not read %r from the saved analysis (%s): computing it again", key, exc)
            raise KeyError(key) from exc
        self._values[key] = value
        give_back_freed_memory()
        return value

    def __setitem__(self, key, value):
        self._pending.pop(key, None)
        self._values[key] = value

    def __delitem__(self, key):
        if self._pending.pop(key, None) is None:
            del self._values[key]

    def __contains__(self, key):  # without reading it (Mapping's own would)
        return key in self._values or key in self._pending

    def __iter__(self):
        return iter([*self._values, *self._pending])

    def __len__(self):
        return len(self._values) + len(self._pending)

    def held(self) -> set:
        """The keys held in memory: read from the save, or computed, since."""
        return set(self._values)

    def pending_node(self, key):
        """The structure node of an entry not read yet (its parts: part_numbers(node))."""
        return self._pending[key]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def write(engine: Engine, version: str, digest: str, encoded, rows: pd.DataFrame | Iterable[pd.DataFrame] = ()) -> int:
    """Save one version in one transaction, replacing any older save: `encoded` is (structure, parts) as encode_state
    gives them, or a function giving them once the rows are written (part of the analysis may still be finishing in
    another process meanwhile), and `rows` (the analysis_row table's columns: a frame, or frames in order, written as
    they come) go to analysis_row. Returns the bytes written."""
    with engine.begin() as conn:
        _delete_save(conn, version, digest)
        seq = 0
        for frame in [rows] if isinstance(rows, pd.DataFrame) else rows:
            _write_rows(conn, version, digest, frame, seq)
            seq += len(frame)
        structure, parts = encoded() if callable(encoded) else encoded
        payloads = [json.dumps(structure).encode()] + parts
        records = [{"data_version": version, "code_digest": digest, "seq": i, "payload": p} for i, p in enumerate(payloads)]
        size = sum(len(p) for p in payloads)
        del structure, parts
        for row in records:  # one at a time: a driver must not hold every part twice over in one statement
            conn.execute(insert(AnalysisPart).values(**row))
        conn.execute(insert(AnalysisSave).values(data_version=version, code_digest=digest, parts=len(records), bytes=size,
                                                 saved_at=_now()))
        conn.execute(delete(Meta).where(Meta.key == BUILDING))
    with engine.begin() as conn:
        # The save this one replaces is kept until the next: a dashboard answering from it reads its area rows a few
        # at a time, and notices the newer version only at its next check (seconds later). Older saves of this code
        # are of no use; other code's saves are kept a day, for the hosts of a rolling upgrade still running it.
        s = AnalysisSave
        replaced = conn.execute(select(s.data_version, s.code_digest).where(s.code_digest == digest,
                                                                            s.data_version != version)
                                .order_by(s.saved_at.desc())).all()[1:]
        other_code = conn.execute(select(s.data_version, s.code_digest).where(
            s.code_digest != digest, s.saved_at < _now() - timedelta(days=1))).all()
        for old_version, old_digest in [*replaced, *other_code]:
            _delete_save(conn, old_version, old_digest)
    return size


def _delete_save(conn, version: str, digest: str) -> None:
    for table in (AnalysisRow, AnalysisPart, AnalysisSave):
        conn.execute(delete(table).where(table.data_version == version, table.code_digest == digest))


ROW_COLUMNS = [c for c in AnalysisRow.__table__.columns if c.name not in ("data_version", "code_digest", "seq")]
ROWS_PER_STATEMENT = 5000


def _write_rows(conn, version: str, digest: str, frame: pd.DataFrame, first_seq: int = 0) -> None:
    """Area rows of a save, in the frame's order (seq from first_seq), missing values as NULL; a chunk at a time, so
    the rows are never all held again as Python values."""
    names = [c.name for c in ROW_COLUMNS]
    dates = [c.name for c in ROW_COLUMNS if isinstance(c.type, Date)]
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # the driver's own executemany: SQLAlchemy's per-row parameter handling took most of the time
        sql = (f"INSERT INTO {AnalysisRow.__tablename__} (data_version, code_digest, seq, {', '.join(names)}) "
               f"VALUES ({', '.join(['?'] * (len(names) + 3))})")
    for start in range(0, len(frame), ROWS_PER_STATEMENT):
        chunk = frame.iloc[start:start + ROWS_PER_STATEMENT]
        columns = []
        for name in names:
            values = chunk[name]
            if name in dates:  # as SQLAlchemy's Date stores them in SQLite (ISO text); date objects elsewhere
                values = values.dt.strftime("%Y-%m-%d") if sqlite else values.dt.date
            columns.append(values.to_numpy(dtype=object, na_value=None))
        rows = zip(range(first_seq + start, first_seq + start + len(chunk)), *columns)
        if sqlite:
            conn.exec_driver_sql(sql, [(version, digest, *row) for row in rows])
        else:
            conn.execute(insert(AnalysisRow), [{"data_version": version, "code_digest": digest, "seq": row[0],
                                                **dict(zip(names, row[1:]))} for row in rows])


def typed_rows(frame: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Area rows with the types the analysis_row table gives back, whether read from it or built in memory: numbers
    float, run_id a nullable integer, dates datetime64, text object (None where missing), a yes/no column bool
    (object with None where the column allows no answer), in the table's column order."""
    out = {}
    for c in ROW_COLUMNS if columns is None else [c for c in ROW_COLUMNS if c.name in columns]:
        values = frame[c.name]
        if isinstance(c.type, Float):
            values = pd.to_numeric(values, errors="coerce").astype(float)
        elif isinstance(c.type, Integer):
            values = pd.to_numeric(values, errors="coerce").astype("Int64")
        elif isinstance(c.type, Date):
            values = values if values.dtype.kind == "M" else pd.to_datetime(values, format="%Y-%m-%d")
            values = values.astype("datetime64[us]")
        elif isinstance(c.type, Boolean) and not c.nullable:
            values = values.fillna(False).astype(bool)
        elif isinstance(c.type, Boolean):  # yes, no or no answer
            values = values.astype(object).where(values.notna(), None)
            values = values.map(lambda v: None if v is None else bool(v)).astype(object)
        else:  # text: one Python object per distinct value, not per row (a few MB instead of tens per 40 areas)
            values = text_column(values, values.index)
        # a Series of its own dtype: built from a bare array, text would be inferred as pandas' str only when some is
        # present, so a slice could differ from the whole
        out[c.name] = pd.Series(values.to_numpy(), index=frame.index, dtype=values.dtype)
    return pd.DataFrame(out, index=frame.index)


def read_rows(engine: Engine, version: str, digest: str, area_codes, indicator_ids=None, latest_only: bool = False,
              columns=None, periods=None) -> pd.DataFrame:
    """The saved area rows of these areas (and indicators), in the analysis' order; latest_only: each series' latest
    period alone; columns: only these (a caller reading many areas needs a few); periods: (indicator_id, period)
    pairs, only those."""
    t = AnalysisRow.__table__
    wanted = [c.name for c in ROW_COLUMNS if columns is None or c.name in columns]
    # dates as ISO text, parsed in one go by typed_rows: much faster than a date object per row
    query = select(*[cast(t.c[c], String).label(c) if isinstance(t.c[c].type, Date) else t.c[c] for c in wanted]).where(
        t.c.data_version == version, t.c.code_digest == digest, t.c.area_code.in_(list(area_codes)))
    if indicator_ids is not None:
        query = query.where(t.c.indicator_id.in_(list(indicator_ids)))
    if periods is not None:
        query = query.where(tuple_(t.c.indicator_id, t.c.period).in_(list(periods)))
    if latest_only:
        query = query.where(t.c.latest.is_(True))
    with engine.connect() as conn:
        # seq orders an area's rows (they are written a batch of indicators at a time, every area's in each batch)
        rows = conn.execute(query.order_by(t.c.area_code, t.c.seq)).fetchall()
    # a save's rows are written and deleted in one transaction with it: still there after the read, they were whole
    if not exists(engine, version, digest):
        raise SaveReplaced(f"the saved analysis of data version {version} was replaced since it was read")
    # column by column from the rows (DataFrame.from_records on result rows took most of a read)
    columns = list(zip(*rows)) if rows else [()] * len(wanted)
    return typed_rows(pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(wanted, columns)}), wanted)


def read(engine: Engine, version: str, digest: str, later=()) -> tuple[dict, dict] | None:
    """(state, memo) of the saved version, or None when there is none. The state is read at once, except the fields
    named in `later`: each is a function that reads it; the memo is a SavedMemo, each entry read from the database
    when first used."""
    with engine.connect() as conn:
        found = conn.execute(select(AnalysisSave.parts, AnalysisSave.saved_at).where(
            AnalysisSave.data_version == version, AnalysisSave.code_digest == digest)).first()
    if found is None:
        return None
    saved, saved_at = found
    # parts of this very save only: the same version saved again meanwhile (or replaced by a newer one) gives none.
    # One statement, so every database sees one committed state (a save is written in one transaction).
    this_save = (select(AnalysisPart.seq, AnalysisPart.payload)
                 .join(AnalysisSave, (AnalysisSave.data_version == AnalysisPart.data_version)
                       & (AnalysisSave.code_digest == AnalysisPart.code_digest))
                 .where(AnalysisPart.data_version == version, AnalysisPart.code_digest == digest,
                        AnalysisSave.saved_at == saved_at))

    def fetch(numbers) -> dict[int, bytes]:
        numbers = sorted(numbers)
        with engine.connect() as conn:
            parts = dict(conn.execute(this_save.where(AnalysisPart.seq.in_(numbers))).all()) if numbers else {}
        if len(parts) != len(numbers):
            raise ValueError(f"the saved analysis of data version {version} was replaced since it was read")
        return parts

    structure = json.loads(fetch([STRUCTURE])[STRUCTURE])
    if len(part_numbers([structure["fields"], structure["memo"]])) + 1 != saved:
        raise ValueError(f"the saved analysis should have {saved} parts, its structure refers to others")
    now = {name: node for name, node in structure["fields"].items() if name not in later}
    state_parts = fetch(part_numbers(now))
    state = {name: decode(node, state_parts) for name, node in now.items()}
    del state_parts
    give_back_freed_memory()  # Arrow keeps freed buffers for reuse: ~50 MB after a save's fields
    for name in set(later) & set(structure["fields"]):
        state[name] = _reader(structure["fields"][name], fetch, version)
    entries = {decode(k, {}): v for k, v in structure["memo"]}  # keys are plain values (no frames)
    return state, SavedMemo(fetch, entries)


def _reader(node, fetch, version: str):
    """A function reading one saved field when called (SaveReplaced when the save is gone by then)."""
    def read_field():
        try:
            value = decode(node, fetch(part_numbers(node)))
        except ValueError as exc:
            raise SaveReplaced(f"the saved analysis of data version {version} was replaced since it was read") from exc
        give_back_freed_memory()
        return value
    return read_field


def exists(engine: Engine, version: str, digest: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(AnalysisSave.parts).where(AnalysisSave.data_version == version,
                                                              AnalysisSave.code_digest == digest)).first() is not None


BUILDING = "analysis_building"  # meta key: "<code digest> <ISO time>" while a refresh computes the analysis to save
RUN_HOURS = 6  # a run or a build started longer ago than this is taken to have died (its process was killed)


def mark_building(engine: Engine, digest: str) -> None:
    """Say, in the database, that this process is computing the analysis to save (warm), so dashboards on every host
    keep answering from the previous save meanwhile instead of each computing it too. write() clears it with the save
    (warm() too, if it fails)."""
    try:
        with engine.begin() as conn:
            mark_building_in(conn, digest)
    except Exception:  # noqa: BLE001 - a read-only database: the save fails later and says so
        log.debug("could not set the analysis-building mark", exc_info=True)


def mark_building_in(conn, digest: str) -> None:
    """mark_building in the caller's transaction: a refresh writes it with the data it changes, so no dashboard ever
    sees the new data version without the mark and starts computing what the refresh is about to save."""
    conn.execute(delete(Meta).where(Meta.key == BUILDING))
    conn.execute(insert(Meta).values(key=BUILDING, value=f"{digest} {_now().isoformat()}"))


def clear_building(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(delete(Meta).where(Meta.key == BUILDING))
    except Exception:  # noqa: BLE001 - a read-only database never had the mark
        log.debug("could not clear the analysis-building mark", exc_info=True)


def in_progress(engine: Engine, digest: str) -> bool:
    """A refresh is loading sources, or computing the analysis this code will save: a newer save is coming."""
    since = _now() - timedelta(hours=RUN_HOURS)
    with engine.connect() as conn:
        if conn.execute(select(Run.id).where(Run.status == "running", Run.started_at >= since)).first():
            return True
        mark = conn.execute(select(Meta.value).where(Meta.key == BUILDING)).scalar()
    if not mark:
        return False
    mark_digest, _, when = mark.partition(" ")
    return mark_digest == digest and datetime.fromisoformat(when) >= since


def saved_versions(engine: Engine) -> list[tuple[str, str]]:
    """(data version, code digest) of every complete save, newest first."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(AnalysisSave.data_version, AnalysisSave.code_digest)
                                               .order_by(AnalysisSave.saved_at.desc())).all()]
