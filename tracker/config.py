"""Every setting the tracker reads, in one place. Each is an environment variable with a default;
the README's "Settings" table lists them and a test fails when one is missing from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
SNAPSHOT_DIR = PACKAGE_DATA / "snapshot"
GEOGRAPHY_DIR = PACKAGE_DATA / "geography"
CATALOG_DIR = PACKAGE_DATA / "catalog"

USER_AGENT = "wider-determinants-tracker/0.1 (+https://github.com/; ICS strategy evidence)"

# name -> (default, description). The README documents each one.
SETTINGS: dict[str, tuple[str, str]] = {
    "TRACKER_DATA_DIR": (str(PROJECT_ROOT / "var"), "Folder for the database, the raw-payload archive and the refresh lock."),
    "TRACKER_DATABASE_URL": ("", "SQLAlchemy URL of the database; default a SQLite file in TRACKER_DATA_DIR."),
    "TRACKER_FINGERTIPS_BASE_URL": ("https://fingertips.phe.org.uk/api/", "OHID Fingertips API."),
    "TRACKER_NOMIS_BASE_URL": ("https://www.nomisweb.co.uk/api/v01/", "NOMIS API (ONS labour market)."),
    "TRACKER_NOMIS_UID": ("", "Optional NOMIS API key (raises the row limit from 25,000)."),
    "TRACKER_EES_BASE_URL": ("https://api.education.gov.uk/statistics/v1/", "DfE Explore Education Statistics API."),
    "TRACKER_STATXPLORE_BASE_URL": ("https://stat-xplore.dwp.gov.uk/webapi/rest/v1/", "DWP Stat-Xplore Open Data API."),
    "TRACKER_STATXPLORE_API_KEY": ("", "DWP Stat-Xplore API key (free registration); without it DWP is not fetched live."),
    "TRACKER_ELS_BASE_URL": (
        "https://raw.githubusercontent.com/ONSdigital/explore-local-statistics-data/main/",
        "ONS Explore Local Statistics published data files.",
    ),
    "TRACKER_MHCLG_DEPRIVATION_URL": (
        "https://assets.publishing.service.gov.uk/media/68ff5daabcb10f6bf9bef911/"
        "File_7_IoD2025_All_Ranks_Scores_Deciles_Population_Denominators.csv",
        "MHCLG English Indices of Deprivation 2025, File 7 (LSOA scores, ranks and deciles).",
    ),
    "TRACKER_GOVUK_BASE_URL": (
        "https://www.gov.uk/",
        "GOV.UK, whose Content API (api/content/<page>) lists the newest MHCLG and DESNZ spreadsheets.",
    ),
    "TRACKER_ONS_BASE_URL": (
        "https://www.ons.gov.uk/",
        "ONS website, whose dataset pages' /data JSON lists the newest files (Health Index underlying data).",
    ),
    "TRACKER_RENDER_SLOTS": ("1", "Pages a dashboard process draws at once (0: no limit); later visitors wait their "
                             "turn, told so, instead of every page slowing down together."),
    "TRACKER_HTTP_TIMEOUT": ("30", "Seconds before an HTTP request times out."),
    "TRACKER_HTTP_RETRIES": ("4", "Retries on 5xx, 429 and connection errors (with backoff, honouring Retry-After)."),
    "TRACKER_HTTP_BACKOFF": ("1.0", "Backoff factor in seconds between retries (doubles each time)."),
    "TRACKER_SHRINK_LIMIT": ("10", "A refresh that would remove more than this percentage of a source's stored rows "
                             "(or every row of an area type) is refused unless run with --allow-shrink."),
    "TRACKER_HTTP_MAX_MB": ("512", "Largest response accepted, in MB after decompression; a bigger one fails the source."),
    "TRACKER_SOURCE_DEADLINE": ("1800", "Seconds one source's fetches may take in all (retries and waits included)."),
    "TRACKER_MAX_PAGES": ("200", "Most pages a paged API (NOMIS, DfE EES) is asked for per data set."),
}


def read_yaml(path: Path):
    """A bundled YAML file (catalog, releases, departments), parsed safely, with libyaml where PyYAML has it (the
    pure-Python parser is several times slower)."""
    import yaml

    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def setting(name: str) -> str:
    default, _ = SETTINGS[name]
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def database_file(self) -> Path:
        return self.data_dir / "tracker.sqlite"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "refresh.lock"


def paths() -> Paths:
    return Paths(Path(setting("TRACKER_DATA_DIR")))


def database_url() -> str:
    url = setting("TRACKER_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{paths().database_file}"
