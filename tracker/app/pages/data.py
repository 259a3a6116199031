"""Data and methods: the place's evidence pack as CSV or Excel (the same code as `tracker export`), how fresh each
source is (from the run log), and the methods and caveats."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import streamlit as st

from tracker.app import common as c
from tracker.config import PROJECT_ROOT

METHODS_FILE = PROJECT_ROOT / "docs" / "methods.md"


def pack(area: str, fmt: str, departments: tuple[str, ...], all_periods: bool) -> bytes:
    """The evidence pack: tracker.exports.export_bytes, which `tracker export` also writes through, so the same
    choice gives the same bytes. Called only when a download button is clicked (it takes a few seconds)."""
    from tracker.exports import export_bytes

    return export_bytes(c.engine(), [area], departments=list(departments) or None, all_periods=all_periods, fmt=fmt)


@st.cache_data(show_spinner="Making the Excel file…", max_entries=16)
def _workbook(version: str, area: str, departments: tuple[str, ...], all_periods: bool) -> bytes:
    # `version` (database and data version) is part of the cache key: a refresh must not serve the old workbook.
    # (Streamlit leaves arguments whose names start with "_" out of the key.)
    return pack(area, "xlsx", departments, all_periods)


def render() -> None:
    st.title("Data and methods")
    area = c.choose_area()
    name = c.areas().at[area, "name"]

    st.subheader(f"Download the evidence pack for {name}")
    cat = c.catalog()
    depts = cat.drop_duplicates("department_slug").sort_values("department_name")
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Only these departments (leave empty for all)", list(depts["department_slug"]),
                              format_func=dict(zip(depts["department_slug"], depts["department_name"])).get)
    all_periods = right.checkbox("Every period (not only the latest)")
    choice = (area, tuple(chosen), all_periods)
    from tracker.exports import default_filename, dictionary_bytes

    b1, b2, b3 = st.columns(3)
    b1.download_button("Download CSV", data=lambda: pack(choice[0], "csv", choice[1], choice[2]),
                       file_name=default_filename([area], "csv", date.today()), mime="text/csv", type="primary",
                       icon=":material/download:", on_click="ignore")
    try:  # made now (a second or so, cached), so a failure is said here rather than a button that does nothing
        workbook = _workbook(c.version(), *choice)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the user must see why there is no file
        b2.error(f"The Excel file could not be made: {exc}. The CSV download holds the same figures.",
                 icon=":material/error:")
    else:
        b2.download_button("Download Excel (xlsx)", data=workbook,
                           file_name=default_filename([area], "xlsx", date.today()),
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           icon=":material/table_view:", on_click="ignore")
    b3.download_button("Data dictionary (CSV)", data=dictionary_bytes(), file_name="pack-dictionary.csv",
                       mime="text/csv", icon=":material/menu_book:", on_click="ignore")
    kind = c.areas().at[area, "kind"]
    st.caption(f"One row per area × indicator × period × sex, with the England value, comparison, trend, red-red flag, "
               f"the association with each headline outcome, the responsible department, producer, source link and "
               f"licence. {'An ICB pack also holds its local authorities and the counties of its two-tier districts. ' if kind == 'ICB' else ''}"
               f"The same file as `tracker export --area {area}` on the command line. Open Government Licence v3.0.")

    st.subheader("How fresh the data are")
    _freshness()

    st.subheader("Methods and caveats")
    c.caveat()
    if METHODS_FILE.exists():
        # two heading levels down, so the note sits under this page's own headings
        st.markdown(re.sub(r"^(#{1,4}) ", r"##\1 ", METHODS_FILE.read_text(encoding="utf-8"), flags=re.M))
    else:
        st.info("The methods note (docs/methods.md) is not in this installation.")


def _freshness() -> None:
    status = c.freshness()
    overdue = status[status["overdue"]]
    if len(overdue):
        names = "; ".join(f"{t} (latest {p}; expected by {d:%d %b %Y})"
                          for t, p, d in zip(overdue["title"], overdue["latest_period"], overdue["next_release_due"]))
        st.warning(f"A newer release is overdue for {len(overdue)} source(s): {names}. The figures are the latest the "
                   "tracker holds; `tracker refresh` fetches newer ones where the publisher has released them.",
                   icon=":material/schedule:")
    else:
        st.success("No source is overdue for a newer release.")
    never = "– where the source has never been loaded (e.g. one with no bundled snapshot before its first live refresh)."
    table = pd.DataFrame({  # all text: a missing figure shows as a dash (the column's help says why), never "None"
        "Source": status["title"], "Latest period": _text(status["latest_period"]),
        "Released by the publisher": ["–" if pd.isna(d) else f"{pd.Timestamp(d):%Y-%m-%d}" for d in status["released"]],
        "Cadence": _text(status["cadence"]), "Freshness": _text(status["freshness"]),
        "Last checked": _when(status["last_checked"]), "Last run": _text(status["last_status"]),
        "Mode": _text(status["last_mode"]), "Rows loaded": [c.number(n, 0) for n in status["rows_loaded"]],
        "Message": _text(status["last_error"], ""),
    })
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Latest period": st.column_config.TextColumn(help="The latest period held; – where the source has no rows."),
        "Released by the publisher": st.column_config.TextColumn(
            help="The date the publisher gave for the release held; – where it is not known."),
        "Cadence": st.column_config.TextColumn(help="How often the publisher releases (tracker/data/releases.yaml)."),
        "Last checked": st.column_config.TextColumn(help="UTC: the last successful run; " + never),
        "Last run": st.column_config.TextColumn(help="The last run's status; " + never),
        "Mode": st.column_config.TextColumn(help=never),
        "Rows loaded": st.column_config.TextColumn(help="Rows the last successful run loaded."),
        "Message": st.column_config.TextColumn(help="The last run's error, if it failed; empty otherwise.")})
    st.caption("Freshness is the age of the figures, not when they were loaded: a newer release is overdue when the "
               "end of the latest period held, plus the publisher's release cadence, plus its usual publication delay "
               "(tracker/data/releases.yaml) has passed. Released: the date the publisher gave, where known. Last "
               "checked: the last successful run (`tracker status`). Mode: live = fetched from the publisher, offline "
               "= the bundled snapshot. Times are UTC.")


def _text(values: pd.Series, missing: str = "–") -> list[str]:
    return [missing if v is None or v != v else str(v) for v in values]


def _when(values: pd.Series) -> list[str]:
    return ["–" if pd.isna(t) else f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in values]


if __name__ == "__main__":
    render()
