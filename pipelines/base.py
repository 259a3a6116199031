"""The contract every source follows: fetch raw -> parse -> validate -> load.

A source only knows how to get its raw payloads (live over HTTP, or the bundled snapshot files) and how
to parse one payload into the tidy frame below. Validation, area harmonisation, provenance and loading
are shared (pipelines.validate, tracker.refresh, db.load), so every source behaves the same way."""

from __future__ import annotations

import csv
import hashlib
import io
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from tracker.catalog import IndicatorSpec
from tracker.config import SNAPSHOT_DIR

# The tidy frame every parse() returns. Numeric columns may still hold text (a suppression marker);
# pipelines.validate turns markers into NULL plus a note, and rejects anything else with its reason.
TIDY_COLUMNS = (
    "indicator_id", "area_code", "period", "period_start", "period_end", "sex", "age", "category_type",
    "category", "value", "lci95", "uci95", "lci998", "uci998", "count", "denominator", "note",
    "published_comparison",
)
NUMERIC_COLUMNS = ("value", "lci95", "uci95", "lci998", "uci998", "count", "denominator")


class SourceError(Exception):
    """A source could not be read. The message says which source, where, and what to do."""


class SourceSkipped(SourceError):
    """Nothing to do in this mode (e.g. no indicator of the source can be fetched live): the run is recorded
    as skipped, not failed, and the source's data stays as it is."""


class SourceFormatError(SourceError):
    """The payload is not in the format the source publishes (missing or renamed columns, HTML instead of
    CSV, a truncated file)."""


@dataclass
class Payload:
    location: str  # the URL fetched, or the bundled file's path relative to the snapshot folder
    content: bytes
    meta: dict = field(default_factory=dict)  # source-specific (e.g. which indicator ids were asked for)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def text(self) -> str:
        data = self.content
        if data[:2] == b"\x1f\x8b":
            data = gunzip_bounded(data, self.location)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceFormatError(
                f"{self.location} is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start:,}); the "
                "publisher may have changed the file's encoding or sent a binary file"
            ) from None


def gunzip_bounded(data: bytes, location: str) -> bytes:
    """gzip.decompress that stops at TRACKER_HTTP_MAX_MB (a few KB of nested gzip can unpack to gigabytes)."""
    from tracker.config import setting

    limit = int(float(setting("TRACKER_HTTP_MAX_MB")) * 1024 * 1024)
    out, rest = [], data
    size = 0
    while rest:
        unpack = zlib.decompressobj(wbits=31)
        try:
            while True:
                piece = unpack.decompress(rest, limit + 1 - size)
                size += len(piece)
                out.append(piece)
                if size > limit:
                    raise SourceFormatError(
                        f"{location} unpacks to more than the {limit / 1048576:g} MB cap (TRACKER_HTTP_MAX_MB); "
                        "stopped. If the file really is that big, raise the setting")
                rest = unpack.unconsumed_tail
                if unpack.eof or not rest:
                    break
        except zlib.error as exc:
            raise SourceFormatError(f"{location} is a damaged gzip file ({exc})") from None
        rest = unpack.unused_data if unpack.eof else b""  # concatenated gzip members, as gzip.decompress reads
    return b"".join(out)


class Source(ABC):
    name: str  # pipeline name used in the catalog's `source` field and on the command line
    title: str  # what users see
    producer: str
    # Notes for suppression / missing markers found in this source's numeric fields.
    markers: dict[str, str] = {}
    has_live = True
    has_offline = True
    publisher_url: str | None = None  # where the publisher puts the data (shown when there is no live client)
    no_live_reason = "the publisher has no machine-readable service the tracker can read"

    def fetch(self, http, specs: list[IndicatorSpec]) -> Iterable[Payload]:
        """Live mode: raw payloads from the source's API. `http` is a pipelines.http.HttpClient."""
        where = f" ({self.publisher_url})" if self.publisher_url else ""
        raise SourceSkipped(
            f"{self.title} has no live client: {self.no_live_reason}{where}; refresh it offline from the bundled snapshot"
        )

    def read_offline(self, specs: list[IndicatorSpec]) -> Iterable[Payload]:
        """Offline mode: the bundled snapshot files, in the format the source publishes."""
        raise SourceError(f"{self.title} has no bundled snapshot")

    @abstractmethod
    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        """One payload -> tidy rows (TIDY_COLUMNS) for the catalog indicators in `specs`."""


def snapshot_payload(relative_path: str, **meta) -> Payload:
    path = SNAPSHOT_DIR / relative_path
    if not path.exists():
        raise SourceError(f"bundled snapshot file {relative_path} is missing from {SNAPSHOT_DIR}")
    return Payload(location=f"snapshot/{relative_path}", content=path.read_bytes(), meta=meta)


def read_csv_strict(
    payload: Payload, required: Iterable[str], source: str, final_newline: bool = False
) -> pd.DataFrame:
    """Read a CSV payload as text columns, failing clearly when it is not the CSV we expect: an HTML page,
    a missing or renamed column, or a truncated last record. `final_newline`: the publisher always ends
    the file with a line break (true of the APIs), so a file without one was cut short."""
    text = payload.text()
    head = text.lstrip()[:200].lower()
    if head.startswith("<!doctype html") or head.startswith("<html") or "<body" in head:
        raise SourceFormatError(
            f"{source}: {payload.location} returned an HTML page instead of CSV "
            f"(the service may be down or the address may have changed): {text.strip()[:80]!r}"
        )
    if not text.strip():
        raise SourceFormatError(f"{source}: {payload.location} is empty")
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0].rstrip("\r"))))
    names = _dedupe(header)  # a repeated column name becomes "name.1", as pandas does
    bad_records = []

    def bad_record(row) -> str:  # a record with more or fewer fields than the header: remember, fail below
        bad_records.append(row)
        return "skip"

    try:
        # pyarrow's CSV reader (C++): every column as text, an empty field stays ""
        table = pacsv.read_csv(
            pa.BufferReader(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=bad_record),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:  # e.g. a quoted field never closed: the file was cut short
        raise SourceFormatError(f"{source}: {payload.location} looks truncated or malformed: {exc}") from exc
    expected = list(required)
    missing = [c for c in expected if c not in header]
    if missing:
        raise SourceFormatError(
            f"{source}: {payload.location} is missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(expected)}; found {', '.join(header)}"
        )
    if bad_records:
        first = bad_records[0]
        raise SourceFormatError(
            f"{source}: {payload.location} looks truncated or malformed: record {first.number or '?'} has "
            f"{first.actual_columns} fields, the header has {first.expected_columns}"
        )
    frame = table.to_pandas()
    if final_newline and len(frame) and not text.endswith(("\n", "\r")):
        raise SourceFormatError(f"{source}: {payload.location} looks truncated: it does not end with a line break")
    return frame


def _dedupe(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in header:
        if h in seen:
            seen[h] += 1
            out.append(f"{h}.{seen[h]}")
        else:
            seen[h] = 0
            out.append(h)
    return out


def with_skipped(frame: pd.DataFrame, skipped: dict[str, int]) -> pd.DataFrame:
    """Record rows a parser left out by rule (reason -> count), so the run report shows them."""
    frame.attrs["skipped"] = {k: v for k, v in skipped.items() if v}
    return frame


def empty_tidy() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in TIDY_COLUMNS})


def tidy(frame: pd.DataFrame, **defaults) -> pd.DataFrame:
    """Complete a parsed frame to TIDY_COLUMNS: sex Persons, age All ages, blank categories by default."""
    base = {"sex": "Persons", "age": "All ages", "category_type": "", "category": "", "note": None,
            "published_comparison": None}
    base.update(defaults)
    out = frame.copy()
    for col in TIDY_COLUMNS:
        if col not in out.columns:
            out[col] = base.get(col)
    for col in ("note", "published_comparison"):  # none is None, not NaN
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out[list(TIDY_COLUMNS)].reset_index(drop=True)
