"""Helpers shared by the dashboard's pages: the database, analysis calls cached on the data version, the place /
indicator / outcome chosen (kept in the URL's query parameters), display formats, colours and the common charts.

Numbers come only from tracker.analysis (and tracker.exports / tracker.status / tracker.geography); what is here
only fetches, formats and draws them."""

from __future__ import annotations

import base64
import json
import re
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from tracker.config import database_url, setting
from tracker.memory import give_back_freed_memory, leave_long_lived_out_of_collections
from tracker.store import get_engine

ENGLAND = "E92000001"
APP_DIR = Path(__file__).resolve().parent
PAGE_FILES = {name: APP_DIR / "pages" / f"{name}.py" for name in ("overview", "place", "department", "indicator", "data")}
# The four headline outcomes, in the order users expect them.
OUTCOMES = ["life-expectancy", "healthy-life-expectancy", "preventable-mortality-u75", "life-expectancy-inequality"]
GEOGRAPHIES = {"ltla": "Districts and unitaries (LTLA)", "utla": "Counties and unitaries (UTLA)", "icb": "ICBs"}
KIND_BY_PREFIX = {"E92": "country", "E12": "region", "E54": "ICB", "E10": "county", "E06": "unitary authority",
                  "E07": "district", "E08": "metropolitan borough", "E09": "London borough"}

# Comparison colours: Fingertips' colour-blind-safe scheme (blue better / orange worse) for significance, and a
# grey-purple ramp for the position among areas (fifths), which is not a judgement against England. The word is
# always shown too.
COMPARISON_COLOURS = {
    "Better": "#0072B2", "Similar": "#F0E442", "Worse": "#D55E00", "Higher": "#56B4E9", "Lower": "#CC79A7",
    "Not compared": "#DDDDDD",
}
POSITION_COLOURS = {
    "Best fifth": "#f2f0f7", "Second-best fifth": "#cbc9e2", "Middle fifth": "#9e9ac8", "Second-worst fifth": "#756bb1",
    "Worst fifth": "#54278f", "Lowest fifth": "#f2f0f7", "Second-lowest fifth": "#cbc9e2",
    "Second-highest fifth": "#756bb1", "Highest fifth": "#54278f",
}
DARK_TEXT = {"Similar", "Not compared", "Higher", "Best fifth", "Second-best fifth", "Middle fifth", "Lowest fifth",
             "Second-lowest fifth"}
LEGEND = ("**Compared with England** is a test of significance: Better, Similar or Worse than England at 95% (or "
          "99.8%) confidence, Higher / Lower / Similar where higher is neither better nor worse, or Not compared "
          "(no confidence interval to test, or a figure that supports none, such as a modelled estimate). Where the "
          "publisher (OHID Fingertips) gives its own judgement, it is shown as published. **Position among areas** "
          "is where the value falls among areas of the same type, in fifths (Best fifth … Worst fifth): a position, "
          "not a test — the worst fifth is not necessarily worse than England.")
DHSC_COLOUR, OTHER_COLOUR = "#CC79A7", "#0072B2"  # Okabe-Ito: DHSC stands apart from the other departments
# Plotly's geo charts fetch a world topojson from cdn.plot.ly even when the base map is hidden, and draw nothing if
# that fails (as it does offline). The maps use only the bundled boundaries, so point it at an empty topology held
# in a data: URL (the file name plotly appends lands in the fragment, which is ignored).
EMPTY_TOPOJSON = "data:application/json,%7B%22type%22%3A%22Topology%22%2C%22objects%22%3A%7B%7D%2C%22arcs%22%3A%5B%5D%7D#"
PLOT_CONFIG = {"displayModeBar": False, "topojsonURL": EMPTY_TOPOJSON}


def engine():
    return get_engine()


# Pages drawn at once by this process. Python runs one thread at a time, so N pages drawn together all finish after
# about N pages' time; drawn in turn, the first visitor waits one page's time and the median half as long.
def _render_slots() -> threading.BoundedSemaphore | None:
    value = setting("TRACKER_RENDER_SLOTS")
    if not value.strip().isdigit():
        raise ValueError(f"TRACKER_RENDER_SLOTS must be a whole number of pages (0: no limit), not {value!r}")
    return threading.BoundedSemaphore(int(value)) if int(value) > 0 else None


_RENDER_SLOTS = _render_slots()

# a dashboard process is long-lived: what a page freed goes back to the system (tracker.memory; Arrow is on the system
# allocator in every tracker process). The launchers (make run, deploy/) also set MALLOC_ARENA_MAX=2, which has to be set
# before the process starts.
BUSY_NOTE = "Other visitors' pages are being drawn; yours starts in a moment."


@contextmanager
def render_slot():
    """Hold one of the process's TRACKER_RENDER_SLOTS while the page is drawn; while none is free, say so. Once the
    page is drawn, give back the memory it freed (and, after the first, keep the long-lived objects out of the
    garbage collection Streamlit runs after every page)."""
    slots = _RENDER_SLOTS
    if slots is not None and not slots.acquire(blocking=False):
        note = st.empty()
        note.info(BUSY_NOTE, icon=":material/hourglass_top:")
        while not slots.acquire(timeout=0.5):
            # an element call is where Streamlit stops this run if the visitor has moved on meanwhile
            note.info(BUSY_NOTE, icon=":material/hourglass_top:")
        note.empty()
    try:
        yield
    finally:
        if slots is not None:
            slots.release()
        leave_long_lived_out_of_collections()
        give_back_freed_memory()  # what the page freed (1-3 ms)


def ensure_database() -> None:
    """On first start, prepare the database from the bundled real snapshot, with a progress bar (one step per
    source); after an upgrade of the tracker, bring an older database's schema up to date. Apart from this, the
    app only reads."""
    if st.session_state.get("_database_ready"):
        return
    from db.engine import has_schema, is_current
    from pipelines.registry import all_sources
    from tracker.refresh import has_observations
    from tracker.analysis.data import serve_previous
    from tracker.store import initialise, prepare

    eng = engine()
    if has_schema(eng) and not is_current(eng):
        with st.spinner("Upgrading the database to this version of the tracker…"):
            initialise(eng)
    if not (has_schema(eng) and has_observations(eng)):
        with st.status("Preparing the database from the bundled real snapshot (first start only, about a minute)…",
                       expanded=True) as box:
            total, done = len(all_sources()), set()
            bar = box.progress(0.0, text="Creating the database…")

            def progress(source: str, stage: str) -> None:
                if stage in ("succeeded", "failed", "skipped"):
                    done.add(source)
                bar.progress(len(done) / total, text=f"{len(done)} of {total} sources loaded · {source}: {stage}")

            summaries = prepare(eng, progress=progress)
            failed = [s for s in summaries if s.status == "failed"]
            box.update(label="Database ready" if not failed else "Database ready, with problems",
                       state="complete" if not failed else "error", expanded=bool(failed))
            for s in failed:
                box.error(f"{s.source}: {s.error}")
    serve_previous(eng)  # after a refresh lands, answer from the previous analysis until the new one is ready
    st.session_state["_database_ready"] = True


# ---------------------------------------------------------------------------------------------------------------
# Data: every call goes through one cache keyed on the data version, so a refresh that lands invalidates it.


def version() -> str:
    """The database and its data version (tracker.analysis.data_version): the key of every cached call."""
    url = database_url()
    return f"{url}#{_data_version(url)}"


@st.cache_data(ttl=5, show_spinner=False)
def _data_version(url: str) -> str:
    """Asked of the database at most every 5 seconds: a page makes dozens of cached calls, and a refresh that
    lands is still seen within seconds. It is the version of the analysis being served: while the analysis of new
    data is built (tracker.analysis.data.serve_previous), the previous one's, so nothing computed from the previous
    analysis is cached under the new data's key."""
    from tracker.analysis.data import get_store

    return get_store(engine()).version


# Functions that are not in tracker.analysis, and where they live.
ELSEWHERE = {"list_areas": "tracker.geography"}


def _function(name: str):
    from importlib import import_module

    return getattr(import_module(ELSEWHERE.get(name, "tracker.analysis")), name)


@st.cache_data(show_spinner="Loading the figures…", max_entries=512)
def _cached(version_key: str, name: str, args: tuple, kwargs: tuple):
    return _function(name)(engine(), *args, **dict(kwargs))


def fetch(name: str, *args, **kwargs):
    """tracker.analysis.<name>(engine, *args, **kwargs) (or a tracker.geography / status / exports function),
    cached until the data version changes. Lists become tuples so they can be cache keys."""
    args = tuple(tuple(a) if isinstance(a, list) else a for a in args)
    kwargs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
    return _cached(version(), name, args, kwargs)


def freshness() -> pd.DataFrame:
    """tracker.status.source_status, cached for 30 seconds only: a newer release falls overdue with the days, and a
    run that failed changes no data version, so it is not cached on the data version like the figures."""
    return _freshness(database_url())


@st.cache_data(ttl=30, show_spinner=False, max_entries=4)
def _freshness(url: str) -> pd.DataFrame:
    from tracker.status import source_status

    return source_status(engine())


def catalog() -> pd.DataFrame:
    """indicator_catalog, plus `decimals`: the decimal places each indicator's figures are shown with."""
    cat = fetch("indicator_catalog").set_index("id", drop=False)
    return cat.assign(decimals=cat["id"].map(_decimals()))


@st.cache_resource(show_spinner=False)
def _decimals() -> dict[str, int]:
    from tracker.catalog import display_decimals

    return display_decimals()


def decimals(indicator_id) -> int | None:
    """The indicator's own decimal places (catalog `decimals`), None for an unknown id."""
    return _decimals().get(indicator_id)


def areas() -> pd.DataFrame:
    """Every place a user can pick: England, regions, the ICBs, counties and unitaries, districts (code, name, kind,
    label)."""
    return _areas(version())


@st.cache_data(show_spinner=False, max_entries=4)
def _areas(version_key: str) -> pd.DataFrame:
    frames = [fetch("list_areas", t) for t in ("england", "region", "icb", "utla", "ltla")]  # every type the CLI lists
    out = pd.concat(frames, ignore_index=True).drop_duplicates("code")[["code", "name"]]
    out["kind"] = out["code"].str[:3].map(KIND_BY_PREFIX).fillna("area")
    out["label"] = out["name"] + " · " + out["kind"] + " · " + out["code"]
    return out.set_index("code", drop=False)


def area_codes(geography: str) -> list[str]:
    return fetch("list_areas", geography)["code"].tolist()


# ---------------------------------------------------------------------------------------------------------------
# The view chosen: query parameters first (a shared link), then the last choice in this session, then a default.


def choose(param: str, options: dict[str, str], default: str, label: str, *, where=None, strict: bool = True,
           widget: str = "selectbox") -> str:
    """A selectbox (or radio) over options (value -> label) bound to the URL query parameter `param`.

    A value in the URL that is not an option: strict -> a friendly message with a way back, and the page stops;
    not strict -> the default is used (e.g. a sex the newly chosen outcome is not published for)."""
    where = where or st
    value = chosen(param, options, default, strict=strict)
    key = f"_widget_{param}"
    # set on every run, even when it already holds the value: another page's widget of the same key left it there,
    # and only a value set in this run is sent to the browser (else the box shows its first option, e.g. England)
    st.session_state[key] = value
    make = where.radio if widget == "radio" else where.selectbox
    extra = {"horizontal": True} if widget == "radio" else {}
    shown = (lambda v: plain(options.get(v))) if widget == "radio" else options.get  # radio labels are markdown
    make(label, list(options), format_func=shown, key=key, on_change=_to_url, args=(param, key), **extra)
    st.query_params[param] = value
    st.session_state[f"_last_{param}"] = value
    return value


def chosen(param: str, options: dict[str, str], default: str, *, strict: bool = False) -> str:
    """The value `choose` would show for param (link, then this session's last choice, then the default), for a
    part of the page drawn while the control itself is not (it sits in a closed tab)."""
    value = st.query_params.get(param) or st.session_state.get(f"_last_{param}") or default
    if value not in options:
        value = resolve(param, value, options)
    if value not in options:
        if strict:
            unknown(param, value, default)
        value = default
    return value


def resolve(param: str, value: str, options) -> str:
    """The option a value from a link means, accepting what the command line accepts: any letter case for codes
    and ids (e06000001, Male), and for a department any current or historical name, abbreviation or slug (DLUHC,
    dclg). Unchanged when nothing matches."""
    text = str(value).strip()
    folded = {str(o).casefold(): o for o in options}
    if text.casefold() in folded:
        return folded[text.casefold()]
    if param == "department":
        from tracker import departments

        try:
            return departments.resolve(text).slug
        except ValueError:
            return value
    return value


MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=:$])")


def plain(text) -> str:
    """Text from the data, escaped so Streamlit's markdown shows it as written (never a link, an image or HTML)."""
    return MARKDOWN.sub(r"\\\1", str(text))


def _to_url(param: str, key: str) -> None:
    st.query_params[param] = st.session_state[key]


WHAT = {"area": "place", "indicator": "indicator", "outcome": "health outcome", "department": "department",
        "geography": "geography", "sex": "sex"}


def unknown(param: str, value: str, default: str) -> None:
    """The friendly answer to a code the tracker does not know (a mistyped or old link): say so, offer a way back."""
    shown = "".join(ch for ch in str(value)[:40] if ch.isalnum() or ch in "-_ .")
    st.warning(f"The link asks for the {WHAT.get(param, param)} “{shown}”, which the tracker does not know. "
               "It may be mistyped, or a code that has been replaced. Use the button below to go back.")
    st.button(f"Show {'England' if param == 'area' else 'the default'} instead", on_click=_reset, args=(param, default),
              type="primary")
    st.page_link(str(PAGE_FILES["overview"]), label="Go to the overview", icon=":material/map:")
    st.stop()


def _reset(param: str, default: str) -> None:
    st.query_params[param] = default
    st.session_state[f"_last_{param}"] = default
    st.session_state.pop(f"_widget_{param}", None)


def choose_area(where=None, label: str = "Place (England, a region, an ICB or a local authority; type to search)") -> str:
    table = areas()
    return choose("area", dict(zip(table["code"], table["label"])), ENGLAND, label, where=where)


def choose_outcome(outcome_where=None, sex_where=None) -> tuple[str, str]:
    """The headline outcome and its sex (Male/Female/Persons as published), each in its own container."""
    cat = catalog()
    options = {i: cat.at[i, "title"] for i in OUTCOMES if i in cat.index}
    outcome = choose("outcome", options, OUTCOMES[0], "Health outcome", where=outcome_where)
    sexes = outcome_sexes(outcome)
    default = cat.at[outcome, "default_sex"] if cat.at[outcome, "default_sex"] in sexes else sexes[0]
    sex = choose("sex", {s: s for s in sexes}, default, "Sex", where=sex_where or outcome_where, strict=False,
                 widget="radio")
    return outcome, sex


def outcome_sexes(indicator_id: str) -> list[str]:
    rows = fetch("latest_observations", [ENGLAND], [indicator_id], sex="all")
    order = {"Persons": 0, "Male": 1, "Female": 2}
    return sorted(rows["sex"].dropna().unique(), key=lambda s: order.get(s, 3)) or ["Persons"]


def link(page: str, label: str, icon: str | None = None, **params) -> None:
    """A link to another page that carries the chosen place/indicator/outcome in its query parameters."""
    st.page_link(str(PAGE_FILES[page]), label=label, icon=icon, query_params={k: v for k, v in params.items() if v})


# ---------------------------------------------------------------------------------------------------------------
# Display formats


def number(value, digits: int | None = None) -> str:
    if value is None or pd.isna(value):
        return "–"
    v = float(value)
    digits = None if digits is None or pd.isna(digits) else int(digits)  # a catalog column may hold floats
    if digits is None:  # no indicator to take decimal places from (pass decimals(indicator_id) where there is)
        digits = 0 if abs(v) >= 1000 or v.is_integer() else 1 if abs(v) >= 1 else 3
    return f"{round(v, digits) + 0.0:,.{digits}f}"  # + 0.0: a small negative that rounds to zero is "0.00", not "-0.00"


def value_parts(value, unit: str | None, digits: int | None = None) -> tuple[str, str]:
    """(number, rest of the unit): ("3.5%", ""), ("£587", "per week"), ("77.3", "years")."""
    text = number(value, digits)
    unit = str(unit or "")
    if text == "–":
        return text, ""
    if unit.startswith("%"):
        return text + "%", unit[1:].strip()
    if unit.startswith("£"):
        return "£" + text, unit[1:].strip()
    return text, unit


def with_unit(value, unit: str | None, digits: int | None = None) -> str:
    """77.3 years, 3.5%, 14.1% of households, £587 per week."""
    num, rest = value_parts(value, unit, digits)
    return f"{num} {rest}".strip()


def comparison_word(label) -> str:
    """The comparison with England in words: "Worse (99.8%)", "Similar", "Not compared"."""
    if not isinstance(label, str) or not label:
        return "Not compared"
    return label


def position_word(position) -> str:
    """The position among areas in words: "Worst fifth" ... "Best fifth", or "–" where there is none."""
    return position if isinstance(position, str) and position else "–"


def comparison_colour(comparison) -> str:
    key = comparison if isinstance(comparison, str) else ""
    return COMPARISON_COLOURS.get(key) or POSITION_COLOURS.get(key) or COMPARISON_COLOURS["Not compared"]


def style_comparison(frame: pd.DataFrame, column: str, comparisons: pd.Series):
    """A Styler colouring `column` by the comparison (the word stays in the cell)."""
    comps = comparisons.reindex(frame.index)

    def colour(col):
        return [f"background-color: {comparison_colour(c)}; color: {'#000' if c in DARK_TEXT or c not in COMPARISON_COLOURS | POSITION_COLOURS else '#fff'}"
                for c in comps]
    return frame.style.apply(colour, subset=[column])


def badge(comparison, label) -> str:
    """The comparison as a coloured word (HTML), for markdown with unsafe_allow_html."""
    word = comparison_word(label)
    dark = comparison in DARK_TEXT or comparison not in COMPARISON_COLOURS | POSITION_COLOURS
    return (f"<span style='background:{comparison_colour(comparison)};color:{'#000' if dark else '#fff'};"
            f"padding:1px 7px;border-radius:4px;font-size:0.85em'>{word}</span>")


def department_label(abbr: str, is_dhsc) -> str:
    return f"{abbr} (health)" if bool(is_dhsc) else abbr


def caveat(text: str | None = None) -> None:
    from tracker.analysis import CAVEAT

    st.info(text or CAVEAT, icon=":material/warning:")


# ---------------------------------------------------------------------------------------------------------------
# Charts


@st.cache_resource(show_spinner=False)
def map_shapes(geography: str) -> tuple[str, tuple[str, ...], dict[str, str]]:
    """The bundled boundaries for the maps, once per process: (a data: URL holding the GeoJSON, the area codes,
    {code: that area's GeoJSON feature as JSON text}, for maps of some areas alone: features_url).

    Coordinates are rounded to 3 decimals (about 100 m, finer than the boundaries' 200 m generalisation), a third
    of the size. Plotly validates and deep-copies a GeoJSON dict on every draw (about a second for the districts);
    a URL string costs nothing to validate, and plotly.js loads it in the browser like any GeoJSON file. Text is
    also a fifth of the memory the same shapes take as Python lists, and this is held for the process's life."""
    from tracker.geography import boundaries

    def rnd(c):
        return [rnd(x) for x in c] if isinstance(c[0], list) else [round(c[0], 3), round(c[1], 3)]

    features = {f["properties"]["code"]: _compact_json(
                    {"type": "Feature", "id": f["properties"]["code"], "properties": {"name": f["properties"]["name"]},
                     "geometry": {"type": f["geometry"]["type"], "coordinates": rnd(f["geometry"]["coordinates"])}})
                for f in boundaries(geography)["features"]}
    return features_url(features.values()), tuple(features), features


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def features_url(features) -> str:
    """A data: URL holding a FeatureCollection of these features, each given as JSON text (map_shapes')."""
    return _data_url('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}")


def geojson_url(geojson: dict) -> str:
    """GeoJSON as a data: URL for a plotly map (see map_shapes: a string plotly need not validate or copy)."""
    return _data_url(_compact_json(geojson))


def _data_url(text: str) -> str:
    return "data:application/json;base64," + base64.b64encode(text.encode()).decode()


def choropleth(frame: pd.DataFrame, geography: str, title: str, unit: str, *, highlight: str | None = None,
               reverse: bool = False) -> go.Figure:
    """England map of frame's area_code/value from the bundled boundaries (no tile server, works offline): grey
    where there is no figure, hover with name, value, period and comparison; `highlight` outlined in black."""
    url, codes, one = map_shapes(geography)
    have = frame.dropna(subset=["value"])
    digits = [decimals(i) for i in have["indicator_id"]] if "indicator_id" in have else [None] * len(have)
    hover = [f"<b>{n}</b> ({c})<br>{with_unit(v, unit, d)} · {p}<br>{comparison_word(cmp)}"
             for n, c, v, p, cmp, d in zip(have["area_name"], have["area_code"], have["value"], have["period"],
                                           have["comparison_label"], digits)]
    # grey only for the areas with no figure, from their own shapes: drawing every area twice (grey beneath, then
    # coloured) doubled the browser's work for this map, and the message carried every shape twice
    missing = sorted(set(codes) - set(have["area_code"]))
    fig = go.Figure(([
        go.Choropleth(geojson=features_url(one[m] for m in missing), locations=missing, z=[0] * len(missing),
                      showscale=False, hoverinfo="skip", colorscale=[[0, "#eeeeee"], [1, "#eeeeee"]],
                      marker_line_color="#bbbbbb", marker_line_width=0.3),
    ] if missing else []) + [
        go.Choropleth(geojson=url, locations=have["area_code"], z=have["value"], text=hover,
                      hovertemplate="%{text}<extra></extra>", colorscale="Viridis", reversescale=reverse,
                      marker_line_color="white", marker_line_width=0.3,
                      colorbar={"title": {"text": "<br>".join(textwrap.wrap(unit, 16)[:3])}, "thickness": 12, "len": 0.7}),
    ])
    if highlight in one:
        fig.add_trace(go.Choropleth(geojson=features_url([one[highlight]]), locations=[highlight], z=[1],
                                    showscale=False, colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
                                    marker_line_color="black", marker_line_width=2.5, hoverinfo="skip"))
    fig.update_geos(fitbounds="locations", visible=False, projection_type="mercator")
    title = wrap(title)
    fig.update_layout(title={"text": title, "font": {"size": 15}}, height=620,
                      margin={"l": 0, "r": 0, "t": title_room(title), "b": 0})
    return fig


def wrap(title: str, width: int = 48) -> str:
    """A chart title broken into lines of at most `width` characters (plotly does not wrap titles, and cuts off what
    does not fit); lines already broken with <br> are each wrapped. 48 characters fit a chart in half the page."""
    return "<br>".join(part for line in title.split("<br>") for part in textwrap.wrap(line, width))


def title_room(title: str) -> int:
    """The top margin (pixels) a chart needs for its title's lines, so a wrapped title never covers the plot."""
    return 30 + 20 * (title.count("<br>") + 1)


def plural(n: int, word: str, many: str | None = None) -> str:
    """1 period, 2 periods."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def department_bars(frame: pd.DataFrame, value: str, title: str, axis: str, *, lci: str | None = None,
                    uci: str | None = None, note: str | None = None) -> go.Figure:
    """Horizontal bars, one per department, largest on top; DHSC in its own colour and labelled. `note`: a column
    of short text added to each department's label (e.g. "12/14 indicators")."""
    f = frame.iloc[::-1]
    labels = [department_label(a, d) + (f" · {n}" if note else "")
              for a, d, n in zip(f["department_abbr"], f["is_dhsc"], f[note] if note else [None] * len(f))]
    colours = [DHSC_COLOUR if bool(d) else OTHER_COLOUR for d in f["is_dhsc"]]
    error = None
    if lci and uci:
        error = {"type": "data", "symmetric": False, "array": (f[uci] - f[value]).tolist(),
                 "arrayminus": (f[value] - f[lci]).tolist(), "color": "#444", "thickness": 1.2, "width": 3}
    fig = go.Figure(go.Bar(x=f[value], y=labels, orientation="h", marker_color=colours, error_x=error,
                           customdata=f["department_name"], hovertemplate="%{customdata}<br>" + axis + ": %{x:.2f}<extra></extra>"))
    title = wrap(title)
    top = title_room(title)
    fig.update_layout(title={"text": title, "font": {"size": 15}}, height=60 + top + 28 * len(f),
                      margin={"l": 10, "r": 20, "t": top, "b": 40}, xaxis_title=axis, yaxis={"automargin": True},
                      showlegend=False)
    return fig


def spine(rows: pd.DataFrame, place_name: str, title: str) -> go.Figure:
    """Fingertips-style spine chart: per indicator a grey bar for the range across areas of the same type (worst
    end on the left where the indicator has a polarity, else lowest), England as a black tick (not for counts, whose
    England figure is a total) and the place as a dot coloured by its comparison with England, with that comparison
    and the position among areas in words. The
    position along the bar is only the value's place between the two ends. (numpy, not pandas: one chart per
    department is drawn on every view of a place.)"""
    lo, hi = rows["min_of_type"].to_numpy(float), rows["max_of_type"].to_numpy(float)
    flip = (rows["polarity"] == "lower_is_better").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        span = np.where(hi > lo, hi - lo, np.nan)

        def position(v):
            p = (np.asarray(v, float) - lo) / span
            return np.clip(np.where(flip, 1 - p, p), 0, 1)

        dot = position(rows["value"])
        eng = position(rows["england_value"].where(rows["value_type"] != "count"))
    units = rows["unit"].tolist()
    words = [comparison_word(x) + (f" · {p}" if isinstance(p, str) else "")
             for x, p in zip(rows["comparison_label"], rows["position"])]
    digits = [decimals(i) for i in rows["indicator_id"]]
    y = list(range(len(rows)))  # positions, not titles: two indicators may share a shortened title
    england = [with_unit(v, u, d) for v, u, d in zip(rows["england_value"], units, digits)]
    hover = [f"{place_name}: {with_unit(v, u, d)} ({p})<br>England: {e}<br>Range across areas: {number(a, d)} to {number(b, d)}<br>{w}"
             for v, u, p, e, a, b, w, d in zip(rows["value"], units, rows["period"], england, lo, hi, words, digits)]
    fig = go.Figure([
        go.Bar(x=[1] * len(y), y=y, orientation="h", marker_color="#e6e6e6", hoverinfo="skip", width=0.55),
        go.Scatter(x=eng, y=y, mode="markers", customdata=england, hovertemplate="England: %{customdata}<extra></extra>",
                   marker={"symbol": "line-ns-open", "size": 18, "color": "black", "line": {"width": 3, "color": "black"}}),
        go.Scatter(x=dot, y=y, mode="markers", text=hover, hovertemplate="%{text}<extra></extra>",
                   marker={"size": 13, "color": [comparison_colour(x) for x in rows["comparison"]],
                           "line": {"width": 1, "color": "#333"}}),
        go.Scatter(x=[1.03] * len(y), y=y, mode="text", text=words, textposition="middle right", hoverinfo="skip"),
    ], layout={"title": {"text": wrap(title, 90), "font": {"size": 14}}, "height": 70 + 26 * len(y),
               "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "barmode": "overlay",
               "showlegend": False, "xaxis": {"range": [-0.02, 1.75], "visible": False},
               "yaxis": {"autorange": "reversed", "automargin": True, "tickvals": y,
                         "ticktext": [t if len(t) <= 58 else t[:56] + "…" for t in rows["title"]]}})
    return fig
