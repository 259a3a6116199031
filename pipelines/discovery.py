"""Finding a publisher's newest file when its address changes with every release.

The GOV.UK Content API (`<TRACKER_GOVUK_BASE_URL>api/content/<page path>`) describes a page as JSON;
`details.attachments[]` lists its files (url, title, filename, content_type). Old pages have no such list, only
links in the body HTML (`details.body`), so links ending .ods/.xlsx/.xls/.csv there are used instead.

Each source then picks its file by a rule on the title or file name (documented in the source), never by a fixed
address: file names change from one release to the next (and MHCLG alternates xlsx and ods).

The ONS website: a dataset page's `/data` JSON (`<TRACKER_ONS_BASE_URL><page path>/data`) lists its editions
(`datasets[].uri`, newest first); an edition's `/data` lists its files (`downloads[].file`), downloaded from
`<TRACKER_ONS_BASE_URL>file?uri=<edition uri>/<file>`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from pipelines.base import Payload, SourceError, SourceFormatError
from tracker.config import setting

SPREADSHEET_SUFFIXES = (".ods", ".xlsx", ".xls", ".csv")


@dataclass(frozen=True)
class Attachment:
    title: str
    url: str
    filename: str
    content_type: str = ""


def _json(payload: Payload, source: str, what: str) -> dict:
    # parsed whatever the Content-Type says (some publishers serve JSON as text/plain)
    try:
        data = json.loads(payload.text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceFormatError(
            f"{source}: {payload.location} is not the {what} JSON (the page may have moved): {payload.content[:80]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise SourceFormatError(f"{source}: {payload.location} is not the {what} JSON (expected an object)")
    return data


# --- GOV.UK ---------------------------------------------------------------------------------------------------

def govuk_page_url(page_path: str) -> str:
    return urljoin(setting("TRACKER_GOVUK_BASE_URL"), "api/content/" + page_path.strip("/"))


def govuk_attachments(http, source: str, page_path: str) -> tuple[Payload, list[Attachment]]:
    """The page's Content API item and its file attachments (structured list, else links in the body HTML)."""
    page = http.get(source, govuk_page_url(page_path), kind="page")
    item = _json(page, source, "GOV.UK Content API")
    details = item.get("details") or {}
    found = []
    for a in details.get("attachments") or []:
        if not isinstance(a, dict) or not a.get("url") or a.get("attachment_type", "file") != "file":
            continue
        filename = a.get("filename") or unquote(urlsplit(a["url"]).path.rsplit("/", 1)[-1])
        found.append(Attachment(a.get("title") or filename, a["url"], filename, a.get("content_type") or ""))
    if not found:
        found = _body_links(details.get("body") or "", page.location)
    return page, found


def govuk_page_released(page: Payload) -> str | None:
    """When the page was last updated (`public_updated_at`), as a London date: for a statistics page, the release
    of its newest file. Shown by `tracker status` as the release date of what the run loaded."""
    try:
        return london_date(json.loads(page.text()).get("public_updated_at"))
    except (ValueError, AttributeError, SourceFormatError):
        return None


def govuk_collection_documents(http, source: str, collection_path: str) -> list[tuple[str, str]]:
    """(title, page path) of each document in a GOV.UK collection (`links.documents[]`), e.g. one statistics
    publication per year."""
    page = http.get(source, govuk_page_url(collection_path), kind="page")
    item = _json(page, source, "GOV.UK Content API")
    docs = [(d.get("title") or "", d.get("base_path") or "") for d in (item.get("links") or {}).get("documents") or []
            if isinstance(d, dict) and d.get("base_path")]
    if not docs:
        raise SourceError(f"{source}: the GOV.UK collection {collection_path} lists no documents (links.documents)")
    return docs


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[list[str]] = []  # [href, text]
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = [dict(attrs).get("href") or "", ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._open is not None:
            self.links.append(self._open)
            self._open = None


def _body_links(body: str, base: str) -> list[Attachment]:
    parser = _Links()
    parser.feed(body if isinstance(body, str) else "")
    out = []
    for href, text in parser.links:
        path = urlsplit(href).path.lower()
        if path.endswith(SPREADSHEET_SUFFIXES):
            filename = unquote(urlsplit(href).path.rsplit("/", 1)[-1])
            out.append(Attachment(" ".join(text.split()) or filename, urljoin(base, href), filename))
    return out


def pick(attachments: list[Attachment], rule: re.Pattern, source: str, page: str, expected: str) -> list[tuple[Attachment, re.Match]]:
    """Attachments whose title or file name matches `rule` (a spreadsheet); an error naming the page and the rule
    when none does (the file was withdrawn or renamed beyond the rule)."""
    matched = []
    for a in attachments:
        if not a.filename.lower().endswith(SPREADSHEET_SUFFIXES):
            continue
        m = rule.search(a.filename) or rule.search(a.title)
        if m:
            matched.append((a, m))
    if not matched:
        listed = "; ".join(f"{a.title} ({a.filename})" for a in attachments[:8]) or "none"
        raise SourceError(
            f"{source}: no attachment on {page} matches {expected}; the page lists: {listed}. The file may have been "
            "withdrawn or renamed: check the page, and keep the previous data until then"
        )
    return matched


# --- ONS website --------------------------------------------------------------------------------------------------

def ons_url(path: str) -> str:
    return urljoin(setting("TRACKER_ONS_BASE_URL"), path.lstrip("/"))


def ons_latest_downloads(http, source: str, page_path: str) -> tuple[str, dict, list[str]]:
    """(edition uri, edition description, file names) of the first (newest) edition of an ONS dataset page."""
    landing = _json(http.get(source, ons_url(page_path.rstrip("/") + "/data"), kind="page"), source, "ONS dataset page")
    editions = [d.get("uri") for d in landing.get("datasets") or [] if isinstance(d, dict) and d.get("uri")]
    if not editions:
        raise SourceError(f"{source}: the ONS page {page_path} lists no dataset editions (datasets[].uri)")
    edition = editions[0]
    data = _json(http.get(source, ons_url(edition.rstrip("/") + "/data"), kind="page"), source, "ONS dataset edition")
    files = [d.get("file") for d in data.get("downloads") or [] if isinstance(d, dict) and d.get("file")]
    return edition, data.get("description") or {}, files


def ons_newest_workbook(http, source: str, page_path: str, rule: re.Pattern, expected: str) -> Payload:
    """The newest edition's first download whose file name matches `rule` (`expected` describes it in the error),
    fetched as a workbook payload carrying the edition's release date."""
    edition, description, files = ons_latest_downloads(http, source, page_path)
    wanted = [f for f in files if rule.match(f)]
    if not wanted:
        raise SourceError(f"{source}: the newest edition {edition} lists no download named like {expected}; "
                          f"it lists {', '.join(files) or 'none'}")
    return http.get(source, ons_file_url(edition, wanted[0]), kind="workbook", filename=wanted[0],
                    released=ons_release_date(description))


def ons_release_date(description: dict) -> str | None:
    """The edition's release date (`description.releaseDate`, e.g. "2023-07-19T23:00:00.000Z": midnight in London)
    as a London calendar date, YYYY-MM-DD; None when absent or unreadable."""
    return london_date((description or {}).get("releaseDate"))


def london_date(value) -> str | None:
    """An ISO 8601 timestamp as the calendar date in London (publishers release at 9:30 or midnight UK time)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.date().isoformat()
    return moment.astimezone(ZoneInfo("Europe/London")).date().isoformat()


def ons_file_url(edition_uri: str, filename: str) -> str:
    return ons_url("file?uri=" + quote(f"{edition_uri.rstrip('/')}/{filename}", safe="/"))
