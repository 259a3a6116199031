"""Reading publishers' spreadsheets (xlsx, xls, ods) with python-calamine (Rust; streams the XML, so MHCLG's
ODS workbooks, whose content.xml unpacks to ~42 MB, read in about a second), and failing clearly when the layout
is not the one the parser was written for: the message names the file, the sheet and what was expected, so a
publisher's change of layout stops that source's run (its previous data stays) instead of loading wrong columns."""

from __future__ import annotations

import io
import re

from python_calamine import CalamineWorkbook

from pipelines.base import Payload, SourceFormatError


def _name(payload: Payload) -> str:
    return payload.meta.get("filename") or payload.location


def open_workbook(payload: Payload, source: str) -> CalamineWorkbook:
    data = payload.content
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head or b"<head" in head:
        raise SourceFormatError(
            f"{source}: {_name(payload)} ({payload.location}) is an HTML page, not a spreadsheet (the file may have "
            f"moved, or the service is down): {data.strip()[:80]!r}"
        )
    if not data:
        raise SourceFormatError(f"{source}: {_name(payload)} ({payload.location}) is empty")
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own error types for a zip or XML it cannot read
        raise SourceFormatError(
            f"{source}: {_name(payload)} ({payload.location}) is not a readable spreadsheet; the download may be "
            f"truncated ({len(data):,} bytes): {str(exc)[:160]}"
        ) from exc


def sheet_rows(book: CalamineWorkbook, payload: Payload, sheet: str, source: str) -> list[list]:
    """The sheet's cells as rows of Python values ('' for empty), or an error naming the sheets the file has."""
    if sheet not in book.sheet_names:
        raise SourceFormatError(
            f"{source}: {_name(payload)} has no sheet {sheet!r}; it has {', '.join(book.sheet_names[:40])}. "
            "The publisher changed the layout: the parser needs updating"
        )
    try:
        return book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except Exception as exc:
        raise SourceFormatError(
            f"{source}: {_name(payload)}, sheet {sheet!r}, could not be read (truncated download?): {str(exc)[:160]}"
        ) from exc


def cell_text(value) -> str:
    """A header cell as one lowercase line ('Number of households\\n in area5  (000s)' -> 'number of households in
    area5 (000s)')."""
    return " ".join(str(value).split()).lower() if value not in (None, "") else ""


def find_row(rows: list[list], test, payload: Payload, sheet: str, source: str, expected: str, limit: int = 40) -> int:
    for i, row in enumerate(rows[:limit]):
        if test(row):
            return i
    raise SourceFormatError(
        f"{source}: {_name(payload)}, sheet {sheet!r}: expected {expected} in the first {limit} rows; not found. "
        "The publisher changed the layout: the parser needs updating"
    )


def find_columns(
    header_rows: list[list], wanted: dict[str, str], payload: Payload, sheet: str, source: str,
) -> dict[str, int]:
    """Column index of each wanted field: exactly one column must have a header cell (in any of `header_rows`)
    matching the field's regular expression (matched from the start of the cell's text, see cell_text)."""
    out = {}
    for key, pattern in wanted.items():
        rx = re.compile(pattern)
        cols = sorted({j for row in header_rows for j, v in enumerate(row) if rx.match(cell_text(v))})
        if len(cols) != 1:
            found = "no column" if not cols else f"{len(cols)} columns"
            raise SourceFormatError(
                f"{source}: {_name(payload)}, sheet {sheet!r}: expected one column headed like {pattern!r} "
                f"(for {key}); found {found}. The publisher changed the layout: the parser needs updating"
            )
        out[key] = cols[0]
    return out


def as_text(value) -> str:
    """A data cell as the text the CSV parsers expect: numbers without a trailing '.0', empty as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()
