"""NOMIS (ONS labour-market statistics, hosted by Durham University): live only.

Each catalog entry names a NOMIS dataset and its dimension selections in `options`:
  dataset   e.g. NM_17_5 (Annual Population Survey) or NM_162_1 (claimant count)
  params    the dataset's dimension selections, e.g. {variable: 45, measures: "20599,21001,21002,21003"}
  date      NOMIS date selection (default the last ten years of periods: "latestMINUS39-latest" suits quarterly APS)
  annual    true: keep only the January-December rows of a rolling 12-month series (APS), labelled by the year
The response is CSV, paged: every row carries RECORD_OFFSET and RECORD_COUNT, and the client asks again with
recordOffset until it has them all (25,000 rows a page without TRACKER_NOMIS_UID, which is sent as uid when set).

There is no bundled NOMIS snapshot: offline, the ONS Explore Local Statistics files (source "ons_els") supply
the employment rate and the claimant count."""

from __future__ import annotations

import calendar
import re
from datetime import date

import pandas as pd

from pipelines.base import Payload, Source, SourceError, SourceFormatError, empty_tidy, read_csv_strict, tidy
from pipelines.http import check_page, redact_url
from tracker.catalog import IndicatorSpec
from tracker.config import setting

# England's districts/unitaries and counties/unitaries (April 2023 types), its regions, and England itself
GEOGRAPHY = "2092957699TYPE424,2092957699TYPE423,2092957699TYPE480,2092957699"
DEFAULT_DATE = "latestMINUS39-latest"
REQUIRED = ("DATE", "DATE_NAME", "GEOGRAPHY_CODE", "MEASURES", "OBS_VALUE", "OBS_STATUS", "OBS_STATUS_NAME",
            "RECORD_OFFSET", "RECORD_COUNT")
# what each NOMIS `measures` code holds
ROLES = {"20599": "value", "20100": "value", "21001": "ci", "21002": "count", "21003": "denominator"}
MISSING = {"Q", "!", "-"}  # OBS_VALUE is empty; OBS_STATUS_NAME says why
FLAGGED = {"*", "~"}  # value kept, OBS_STATUS_NAME goes in the note
APS_YEAR = re.compile(r"Jan (\d{4})-Dec (\d{4})")


class NomisSource(Source):
    name = "nomis"
    title = "NOMIS (ONS labour market statistics)"
    producer = "Office for National Statistics"
    has_offline = False

    def read_offline(self, specs: list[IndicatorSpec]):
        raise SourceError(
            "nomis: there is no bundled NOMIS snapshot; offline, the ONS Explore Local Statistics series supply the "
            "employment rate and claimant count (source ons_els)"
        )

    def fetch(self, http, specs: list[IndicatorSpec]):
        url_base = setting("TRACKER_NOMIS_BASE_URL").rstrip("/") + "/"
        uid = setting("TRACKER_NOMIS_UID")
        for spec in specs:
            dataset = spec.options["dataset"]
            params = {"geography": GEOGRAPHY, "date": spec.options.get("date", DEFAULT_DATE),
                      **{k: str(v) for k, v in spec.options.get("params", {}).items()}}
            if uid:
                params["uid"] = uid
            offset, pages = 0, []
            while True:
                check_page(self.name, len(pages) + 1, f"{url_base}dataset/{dataset}.data.csv")
                page = http.get(self.name, f"{url_base}dataset/{dataset}.data.csv", {**params, "recordOffset": offset})
                frame = self._read(page)
                pages.append(page)
                if frame.empty:
                    break
                total, following = _record_number(page, frame, "RECORD_COUNT"), _record_number(page, frame, "RECORD_OFFSET") + 1
                if following >= total:
                    break
                if following <= offset:
                    raise SourceFormatError(
                        f"nomis: {page.location}: RECORD_OFFSET does not advance ({following} after {offset})"
                    )
                offset = following
            yield _join(pages, spec.id)

    def _read(self, payload: Payload) -> pd.DataFrame:
        return read_csv_strict(payload, REQUIRED, self.name, final_newline=True)

    def parse(self, payload: Payload, specs: list[IndicatorSpec]) -> pd.DataFrame:
        spec = {s.id: s for s in specs}.get(payload.meta.get("indicator_id"))
        if spec is None:
            return empty_tidy()
        frame = self._read(payload)
        if frame.empty:
            return empty_tidy()
        unknown = sorted(set(frame["MEASURES"]) - set(ROLES))
        if unknown:
            raise SourceFormatError(
                f"nomis: {payload.location} has measures {', '.join(unknown)} the tracker does not know"
            )
        # a unitary authority is in both TYPE424 and TYPE423: the same row twice
        frame = frame.drop_duplicates(["DATE", "GEOGRAPHY_CODE", "MEASURES"])
        if spec.options.get("annual"):
            frame = frame[frame["DATE_NAME"].str.fullmatch(APS_YEAR.pattern)]
        frame = frame.assign(role=frame["MEASURES"].map(ROLES))
        main = frame[frame["role"] == "value"].set_index(["DATE", "GEOGRAPHY_CODE"])
        if main.empty:
            return empty_tidy()
        out = pd.DataFrame(index=main.index)
        out["value"] = main["OBS_VALUE"].where(~main["OBS_STATUS"].isin(MISSING), "")
        out["note"] = main["OBS_STATUS_NAME"].where(main["OBS_STATUS"].isin(MISSING | FLAGGED), None)
        for role in ("ci", "count", "denominator"):
            part = frame[frame["role"] == role].set_index(["DATE", "GEOGRAPHY_CODE"])
            usable = part["OBS_VALUE"].where(~part["OBS_STATUS"].isin(MISSING), "")
            out[role] = usable.reindex(out.index).fillna("")
        half = pd.to_numeric(out["ci"], errors="coerce")
        value = pd.to_numeric(out["value"], errors="coerce")
        out["lci95"], out["uci95"] = (value - half).round(6), (value + half).round(6)
        periods = {d: _period(d, n, spec) for d, n in zip(main.index.get_level_values(0), main["DATE_NAME"])}
        out = out.reset_index()
        out[["period", "period_start", "period_end"]] = [periods[d] for d in out["DATE"]]
        out = out.rename(columns={"GEOGRAPHY_CODE": "area_code"}).drop(columns=["DATE", "ci"])
        out["indicator_id"] = spec.id
        return tidy(out)


def _record_number(page: Payload, frame: pd.DataFrame, column: str) -> int:
    value = frame[column].iloc[-1]
    try:
        return int(value)
    except ValueError:
        raise SourceFormatError(
            f"nomis: {page.location}: {column} is {value!r}, not a whole number, so the pages cannot be followed; "
            "the API's response format may have changed"
        ) from None


def _join(pages: list[Payload], indicator_id: str) -> Payload:
    """One payload for all pages: the value, confidence, numerator and denominator rows of an area can fall
    on different pages, and parse() needs them together. The header is kept once."""
    texts = [p.text() for p in pages]
    header = texts[0].split("\n", 1)[0]
    body = []
    for page, text in zip(pages, texts):
        first, _, rest = text.partition("\n")
        if first != header:
            raise SourceFormatError(f"nomis: {page.location} has different columns from the first page")
        body.append(rest)
    return Payload(location=redact_url(pages[0].location), content=(header + "\n" + "".join(body)).encode("utf-8"),
                   meta={"indicator_id": indicator_id, "pages": [redact_url(p.location) for p in pages]})


def _period(code: str, name: str, spec: IndicatorSpec) -> tuple[str, date, date]:
    """APS annual rows ("Jan 2023-Dec 2023") become "2023"; a monthly row ("2025-03", "March 2025") keeps its name."""
    if spec.options.get("annual"):
        year = int(APS_YEAR.fullmatch(name).group(1))
        return str(year), date(year, 1, 1), date(year, 12, 31)
    m = re.fullmatch(r"(\d{4})-(\d{2})", code)
    if not m:
        raise SourceFormatError(f"nomis: date {code!r} ({name}) is not a month the tracker knows")
    y, mo = int(m.group(1)), int(m.group(2))
    return name, date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])
