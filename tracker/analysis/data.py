"""What the analysis reads from the database, loaded once per data version and kept in memory.

A handful of queries (SQLAlchemy Core, bound parameters only) fill a Store; every public function then works
on pandas frames. The Store is rebuilt when data_version() changes, i.e. when a refresh lands. After a refresh,
warm() builds it with the results every first view needs and saves it in the database, so a new process (the dashboard's
first visitor, `tracker export`, a dashboard on another host) reads it back from the database instead of computing
it again."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, String, and_, cast, func, or_, select

from db.columns import per_distinct, text_column
from db.models import Area, AreaCodeHistory, AreaLink, Department, Indicator, Observation, Run
from tracker.analysis import saved
from tracker.analysis.stats import NOT_COMPARED, SIMILAR, compare, position_words, quintile_labels, rate_ci, wilson_ci
from tracker.catalog import catalog_fields
from tracker.config import CATALOG_DIR, SNAPSHOT_DIR
from tracker.memory import give_back_freed_memory

log = logging.getLogger("tracker.analysis")

ENGLAND = "E92000001"
POPULATION_FILE = SNAPSHOT_DIR / "population" / "ons_mid2020_population_single_year_of_age_lad21.csv"
POPULATION_NOTE = "ONS mid-2020 population estimates (2021 districts, merged into 2024 local authorities)"
OBS_COLUMNS = ["indicator_id", "area_code", "period", "period_start", "period_end", "sex", "age", "value", "lci95",
               "uci95", "lci998", "uci998", "count", "denominator", "note", "published_comparison", "run_id"]
# A saved Store is read back only by the code that wrote it: the key includes a digest of this package's source and
# of the catalog it was computed with (a changed ci_method or polarity changes the analysis without new data).
CODE_DIGEST = hashlib.sha256(b"".join(p.read_bytes() for p in [*sorted(Path(__file__).parent.glob("*.py")),
                                                               *sorted(CATALOG_DIR.glob("*.yaml"))])).hexdigest()[:12]
# memoised results not saved as frames: every area's rows are saved as the analysis_row table instead
NOT_SAVED = {("area_rows",)}


def data_version(engine: Engine) -> str:
    """A token that changes whenever a refresh changes data: "<highest run id that changed rows>-<number of such
    runs>-<when the last one finished>" (the time tells a database built again from scratch from the one it
    replaced). A run that changed nothing (the same figures fetched again) leaves it as it was, so the analysis saved
    for it stays valid. Use it as a cache key (the analysis itself does)."""
    changed = or_(Run.rows_changed.is_(None), Run.rows_changed != 0)
    with engine.connect() as conn:
        top, n, last = conn.execute(select(func.max(Run.id), func.count(Run.id), func.max(Run.finished_at))
                                    .where(Run.status == "succeeded", changed)).one()
    when = pd.Timestamp(last).strftime("%Y%m%dT%H%M%S%f") if last is not None else "never"
    return f"{top or 0}-{n}-{when}"


def query_frame(conn, query) -> pd.DataFrame:
    result = conn.execute(query)
    keys, rows = list(result.keys()), result.fetchall()
    columns = list(zip(*rows)) if rows else [()] * len(keys)
    return pd.DataFrame({k: list(c) for k, c in zip(keys, columns)}, columns=keys)


class ReadWhenUsed:
    """A Store field that may be given a function instead of its value: the function is called, once, when the field
    is first used (a dataclass field whose default is a descriptor: its __set__ receives the constructor's value)."""

    def __set_name__(self, owner, name):
        self.slot = f"_{name}"

    def __get__(self, store, owner=None):
        if store is None:
            raise AttributeError(self.slot)  # no default: the field must be given
        with store.lock:
            value = store.__dict__[self.slot]
            if callable(value):
                value = store.__dict__[self.slot] = value()
            return value

    def __set__(self, store, value):
        store.__dict__[self.slot] = value

    def is_read(self, store) -> bool:
        return not callable(store.__dict__[self.slot])


@dataclass
class Store:
    """Everything the analysis needs, for one data version. Derived results are memoised in `memo`."""

    version: str
    indicators: pd.DataFrame  # index id; catalog fields plus department name/abbreviation/is_dhsc, la_level
    areas: pd.DataFrame  # index code; name, type, nhs_code (no LSOAs)
    links: pd.DataFrame  # child_code, parent_code, parent_type, share, share_basis (no LSOA children)
    utla_codes: frozenset  # the 153 upper-tier authorities (E10 counties and the unitaries)
    population: pd.Series  # ltla code -> mid-2020 population
    # headline observations (no breakdowns, one age per indicator), CIs filled from counts. Read from a save only
    # when first used: pages read their places' rows from analysis_row, and most never need every observation
    obs: pd.DataFrame = ReadWhenUsed()
    headline_ages: pd.Series  # indicator id -> the age group kept in obs
    run_finished: pd.Series  # run id -> when it finished (an observation's run_id says which run loaded it)
    engine: Engine
    memo: MutableMapping = field(default_factory=dict)  # a SavedMemo when read from a save
    rows_saved: bool = False  # its area rows are in the analysis_row table (read in slices, not held)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def held(self, key, build):
        """The memoised value as it is held (maybe saved.Encoded), built first if it is not there."""
        with self.lock:
            try:
                return self.memo[key]  # computed, or read from the save (tracker.analysis.saved.SavedMemo)
            except KeyError:
                value = self.memo[key] = build()
                return value

    def derived(self, key, build):
        with self.lock:
            value = self.held(key, build)
            if isinstance(value, saved.Encoded):  # held encoded until used again (tracker.analysis.warm)
                value = self.memo[key] = value.decode()
            return value

    def rows_of(self, key, build, indicator_ids, columns=None) -> pd.DataFrame:
        """The rows of these indicators (only `columns`, if given) of a memoised frame with an indicator_id column
        (derived's key and build). A frame held encoded a batch of indicators per part stays encoded: only the batches
        holding them are decoded."""
        value = self.held(key, build)
        if isinstance(value, saved.Encoded):
            return value.rows_of(indicator_ids, columns)
        rows = value.loc[value["indicator_id"].isin(list(indicator_ids)), list(value.columns if columns is None else columns)]
        return rows.reset_index(drop=True)

    def seal(self, keys) -> None:
        """Hold these memoised values encoded (saved.Encoded) until they are used again: what the precompute has
        finished with but saves (derived() decodes them if anything asks for them again)."""
        with self.lock:
            for key in keys:
                value = self.memo.get(key)
                if value is not None and not isinstance(value, saved.Encoded):
                    self.memo[key] = saved.Encoded.of(value)

    def holds_observations(self) -> bool:
        """Whether obs is in memory (a Store read from a save reads it only when first used)."""
        return vars(Store)["obs"].is_read(self)

    def parent(self, parent_type: str) -> pd.Series:
        """child code -> parent code of that type (the largest share for a split LA's ICB). Memoised."""
        def build():
            links = self.links[self.links["parent_type"] == parent_type].sort_values(
                ["child_code", "share", "parent_code"], ascending=[True, False, True])
            return links.drop_duplicates("child_code").set_index("child_code")["parent_code"]
        return self.derived(("parent", parent_type), build)

    def indicator(self, indicator_id: str) -> pd.Series:
        if indicator_id not in self.indicators.index:
            raise KeyError(f"unknown indicator {indicator_id!r}")
        return self.indicators.loc[indicator_id]


_CACHE: OrderedDict[tuple[str, str], Store] = OrderedDict()
_CACHE_LOCK = threading.Lock()
MAX_STORES = 3  # databases kept in memory at once (a Store with its derived frames is a few hundred MB)
# Databases the dashboard serves (serve_previous()): when the data changed and the analysis of the new data is not
# built yet, keep answering from the previous analysis (in memory, or saved) while the new one is built and saved in a
# background thread; swap when it is complete. `tracker export` and the CLI do not: they always read the current data.
SERVE_PREVIOUS: set[str] = set()
_BUILDING: dict[str, threading.Thread] = {}
_local = threading.local()  # in a background build: the Stores being built, kept out of _CACHE until complete


def serve_previous(engine: Engine) -> None:
    """For the dashboard: answer from the previous analysis of this database while the new one is built (above)."""
    SERVE_PREVIOUS.add(engine.url.render_as_string(hide_password=False))


def get_store(engine: Engine) -> Store:
    """The Store for the database's current data version (built on first use, then reused). With SERVE_PREVIOUS,
    for a database the dashboard serves, the previous data version's Store while the current one is built in the
    background (see SERVE_PREVIOUS)."""
    version = data_version(engine)
    url = engine.url.render_as_string(hide_password=False)
    key = (url, version)
    building = getattr(_local, "stores", None)
    if building is not None:  # the background build's own thread
        if key not in building:
            building[key] = _read_saved(engine, version) or _computed(engine, version)
        return building[key]
    with _CACHE_LOCK:
        store = _CACHE.get(key)
        if store is None and url in SERVE_PREVIOUS and not saved.exists(engine, version, CODE_DIGEST):  # else read it
            previous = next((s for k, s in reversed(_CACHE.items()) if k[0] == url), None)
            if previous is None:
                previous = _read_newest_saved(engine)
                if previous is not None:
                    _CACHE[(url, previous.version)] = previous
            if previous is not None:
                if not saved.in_progress(engine, CODE_DIGEST):  # else a refresh (maybe on another host) will save it
                    _build_in_background(engine, url)
                return previous
        if store is None:
            for old in [k for k in _CACHE if k[0] == url]:
                del _CACHE[old]
            store = _CACHE[key] = _read_saved(engine, version) or _computed(engine, version)
            while len(_CACHE) > MAX_STORES:
                _CACHE.popitem(last=False)
        _CACHE.move_to_end(key)
    return store


def _build_in_background(engine: Engine, url: str) -> None:
    """Build, precompute (warm) and save the current data version's Store in a thread; publish it in _CACHE only when
    complete, replacing the previous one. One build per database at a time. Called with _CACHE_LOCK held."""
    running = _BUILDING.get(url)
    if running is not None and running.is_alive():
        return

    def build():
        from tracker.analysis.warm import warm

        _local.stores = {}
        try:
            warm(engine)  # get_store() in this thread builds into _local.stores
        except Exception:  # noqa: BLE001 - a failed save is not fatal: the built Store is still published below
            log.exception("could not build or save the analysis of the new data")
        built = _local.stores
        del _local.stores
        with _CACHE_LOCK:
            for (store_url, version), store in built.items():
                for old in [k for k in _CACHE if k[0] == store_url]:
                    del _CACHE[old]
                _CACHE[(store_url, version)] = store

    thread = _BUILDING[url] = threading.Thread(target=build, name="analysis-build", daemon=True)
    thread.start()


def _computed(engine: Engine, version: str) -> Store:
    log.info("no saved analysis of data version %s: computing it in this process", version)
    return _load(engine, version)


def _load(engine: Engine, version: str) -> Store:
    a, lk, o, i, d, h = (Area.__table__, AreaLink.__table__, Observation.__table__, Indicator.__table__,
                         Department.__table__, AreaCodeHistory.__table__)
    with engine.connect() as conn:
        indicators = query_frame(conn, select(i, d.c.name.label("department_name"),
                                              d.c.abbreviation.label("department_abbr"), d.c.is_dhsc)
                                 .join(d, d.c.slug == i.c.department_slug))
        areas = query_frame(conn, select(a.c.code, a.c.name, a.c.type, a.c.nhs_code).where(a.c.type != "lsoa"))
        links = query_frame(conn, select(lk).join(a, a.c.code == lk.c.child_code).where(a.c.type != "lsoa"))
        history = query_frame(conn, select(h.c.old_code, h.c.current_code))
        runs = query_frame(conn, select(Run.__table__.c.id, Run.__table__.c.finished_at))
        # dates as ISO text: much faster than date objects, and parsed in one go below
        cols = [cast(o.c[c], String).label(c) if c.startswith("period_") else o.c[c] for c in OBS_COLUMNS]
        obs = read_observations(conn, select(*cols, a.c.type.label("area_type"))
                                 .join(a, a.c.code == o.c.area_code)
                                 .where(and_(a.c.type != "lsoa", o.c.category_type == "")))
    indicators = indicators.set_index("id", drop=False).sort_index()
    areas = areas.set_index("code", drop=False).sort_index()
    links = links.sort_values(["child_code", "parent_code"]).reset_index(drop=True)
    utla_codes = frozenset(links.loc[links["parent_type"] == "utla", "parent_code"])
    ages = _headline_ages(obs)
    obs = _keep_ages(obs, ages)
    obs = fill_cis(obs, indicators)
    indicators["la_level"] = _la_levels(obs, indicators.index)
    return Store(version=version, indicators=indicators, areas=areas, links=links, utla_codes=utla_codes,
                 population=_population(history, set(areas.index[areas["type"] == "ltla"])), obs=obs,
                 headline_ages=ages, run_finished=runs.set_index("id")["finished_at"], engine=engine)


def save_store(store: Store, finish=None) -> int:
    """Save the Store and what it has memoised in the database (tracker.analysis.saved), for every process on every
    host that reads this database. finish: called once every area's rows are written; it gives memo entries another
    process computed meanwhile, already encoded as (entries, parts) (saved.encode_state's memo and parts), saved
    beside this Store's own (not decoded here: they are not added to this Store's memo). Returns the bytes written."""
    from tracker.analysis.place import area_row_chunks

    with store.lock:
        state = {f.name: getattr(store, f.name) for f in fields(store)
                 if f.name not in ("engine", "lock", "memo", "rows_saved")}

        def encoded():
            give_back_freed_memory()  # what writing the area rows freed
            entries, extra = finish() if finish is not None else ([], [])
            memo = {}
            for key in [k for k in store.memo if k not in NOT_SAVED]:
                try:
                    memo[key] = store.memo[key]
                except KeyError:  # read from a save that is now unreadable: computed again when first used
                    continue
            structure, parts = saved.encode_state(state, memo)
            saved.append_encoded(structure, parts, entries, extra)
            return structure, parts

        # every area's rows are put together and written a batch of indicators and some areas at a time, never held whole
        size = saved.write(store.engine, store.version, CODE_DIGEST, encoded, area_row_chunks(store))
        # from now on read in slices from the table, like any other process
        store.rows_saved = True
        store.memo.pop(("area_rows",), None)
    return size


def _read_newest_saved(engine: Engine) -> Store | None:
    """The analysis saved for an earlier data version by this code (the newest), or None."""
    versions = [v for v, digest in saved.saved_versions(engine) if digest == CODE_DIGEST]
    return _read_saved(engine, versions[0]) if versions else None


def _read_saved(engine: Engine, version: str) -> Store | None:
    """The saved Store of this data version, or None (none saved, or unreadable: then it is simply rebuilt)."""
    try:
        found = saved.read(engine, version, CODE_DIGEST, later=("obs",))
    except Exception as exc:  # a damaged save, or a database from before migration 0004, must never stop the analysis
        log.warning("could not read the saved analysis of data version %s (%s); rebuilding it", version, exc)
        return None
    if found is None:
        return None
    state, memo = found
    log.info("read the saved analysis of data version %s from the database", version)
    state["obs"] = _observations_when_used(engine, version, state["obs"])
    return Store(**state, memo=memo, engine=engine, rows_saved=True)


def _observations_when_used(engine: Engine, version: str, read_saved):
    """Store.obs of a save, read when first used; if the save is gone by then (replaced by a newer one) and the data
    is still that version, read from the data itself, as a new Store would be."""
    def read() -> pd.DataFrame:
        try:
            return read_saved()
        except saved.SaveReplaced:
            if data_version(engine) != version:
                raise
            log.warning("the saved analysis of data version %s was replaced: reading its observations", version)
            return _load(engine, version).obs
    return read


def _one_object_per_value(values: np.ndarray) -> np.ndarray:
    """The object array with equal values as one Python object, None where missing: 300k rows hold a few hundred
    distinct codes and labels, and a string per row took most of the Store's memory (as saved.py reads). Each distinct
    text is a new object, not one the database driver made for some row: those few hundred, scattered among the rows'
    freed objects, kept 60 MB of the interpreter's otherwise empty memory arenas from being freed."""
    return per_distinct(values, lambda distinct: [v.encode().decode() if isinstance(v, str) else v  # a new str
                                                  for v in distinct.tolist()])


OBS_NUMBERS = ("value", "lci95", "uci95", "lci998", "uci998", "count", "denominator")
OBS_ROWS_AT_ONCE = 50_000


def read_observations(conn, query) -> pd.DataFrame:
    """The observations as typed columns, read OBS_ROWS_AT_ONCE rows at a time: every row as a Python tuple at once
    (650k rows) was most of a prepare's memory before its analysis, and text went through Arrow strings and back."""
    result = conn.execution_options(yield_per=OBS_ROWS_AT_ONCE).execute(query)
    keys = list(result.keys())
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for rows in result.partitions():
        for key, values in zip(keys, zip(*rows)):
            if key in OBS_NUMBERS:
                pieces[key].append(np.array(values, dtype=float))  # None becomes NaN
            else:  # equal texts one object within the slice (memory); across slices below
                pieces[key].append(_one_object_per_value(np.array(values, dtype=object)))
    # a column at a time, each slice let go of once joined: the slices, the columns and the frame were all held at once
    columns = {}
    for k in keys:
        v = pieces.pop(k)
        columns[k] = np.concatenate(v) if v else np.empty(0, dtype=float if k in OBS_NUMBERS else object)
        if columns[k].dtype == object:  # text as numpy objects, not Arrow strings: filtered and merged much faster
            columns[k] = pd.Series(_one_object_per_value(columns[k]), dtype=object)
        del v
    obs = pd.DataFrame(columns, columns=keys)
    del columns
    if "run_id" in obs:
        obs["run_id"] = pd.to_numeric(obs["run_id"])
    for c in ("period_start", "period_end"):
        obs[c] = pd.to_datetime(obs[c].astype("string").str.slice(0, 10), format="%Y-%m-%d")
    return obs


def _headline_ages(obs: pd.DataFrame) -> pd.Series:
    """One age per indicator: "All ages" when published, otherwise the age with most rows (e.g. "19+ yrs")."""
    counts = obs.groupby(["indicator_id", "age"]).size().rename("n").reset_index()
    counts["all"] = counts["age"] == "All ages"
    chosen = counts.sort_values(["indicator_id", "all", "n", "age"], ascending=[True, False, False, True])
    return chosen.drop_duplicates("indicator_id").set_index("indicator_id")["age"]


def _keep_ages(obs: pd.DataFrame, ages: pd.Series) -> pd.DataFrame:
    keep = obs["age"] == obs["indicator_id"].map(ages)
    return obs[keep].drop(columns="age").sort_values(
        ["indicator_id", "sex", "area_code", "period_end", "period"], kind="mergesort").reset_index(drop=True)


def _la_levels(obs: pd.DataFrame, ids) -> pd.Series:
    """'ltla' when an indicator has district (E07) figures, 'utla' when only upper-tier ones, else None."""
    la = obs[obs["area_type"].isin(["ltla", "utla"])]
    districts = set(la.loc[la["area_code"].str.startswith("E07"), "indicator_id"].unique())
    any_la = set(la["indicator_id"].unique())
    return pd.Series([("ltla" if x in districts else "utla" if x in any_la else None) for x in ids], index=ids,
                     dtype=object)


CI_COMPUTED = {"wilson": "Wilson score", "byar": "Byar / exact Poisson"}


def fill_cis(obs: pd.DataFrame, indicators: pd.DataFrame) -> pd.DataFrame:
    """Add 95% and 99.8% CIs where a row has a count and denominator but no CI, only for indicators whose catalog
    ci_method says the figure is a directly counted proportion (wilson: Wilson score) or crude rate (byar: Byar's
    method, exact Poisson below 10), and only when the published value is count/denominator x multiplier (to
    rounding), so a standardised rate is never given a crude rate's CI. ci_source says which."""
    out = obs.copy()
    method = out["indicator_id"].map(indicators["ci_method"])
    vt = method.map({"wilson": "proportion", "byar": "rate"})  # the only kinds the tracker computes a CI for
    mult = out["indicator_id"].map(indicators["multiplier"]).astype(float)
    # object, not pandas' str (Arrow memory a process holds apart from its Python objects)
    out["ci_source"] = pd.Series(np.where(out["lci95"].notna() & out["uci95"].notna(), "published", None),
                                 index=out.index, dtype=object)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = out["count"] / out["denominator"] * mult
    consistent = (out["value"] - implied).abs() <= 0.05 + 0.005 * out["value"].abs()
    standardised = out["indicator_id"].map(catalog_fields()["standardised"]).eq(True)  # a DSR: never a crude CI
    todo = (out["ci_source"].isna() & out["count"].ge(0) & out["denominator"].gt(0) & mult.notna() & consistent
            & vt.isin(["proportion", "rate"]) & ~standardised)
    for kind, method in (("proportion", "Wilson score"), ("rate", "Byar / exact Poisson")):
        rows = todo & (vt == kind)
        if not rows.any():
            continue
        x, n, m = out.loc[rows, "count"], out.loc[rows, "denominator"], mult[rows]
        for conf, lo_col, hi_col in ((0.95, "lci95", "uci95"), (0.998, "lci998", "uci998")):
            if kind == "proportion":
                lo, hi = wilson_ci(x, n, conf, multiplier=1)
            else:
                lo, hi = rate_ci(x, n, multiplier=1, confidence=conf)
            out.loc[rows, lo_col], out.loc[rows, hi_col] = lo * m, hi * m
        out.loc[rows, "ci_source"] = f"computed from counts ({method})"
    return out


def _population(history: pd.DataFrame, current: set[str]) -> pd.Series:
    """Mid-2020 population per current (2024) local authority: 2021 districts merged since are summed."""
    pop = pd.read_csv(POPULATION_FILE, usecols=["LAD21CD", "total_population"], dtype={"LAD21CD": str})
    pop = pop[pop["LAD21CD"].str.startswith("E")]
    single = history.groupby("old_code")["current_code"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
    code = pop["LAD21CD"].where(pop["LAD21CD"].isin(current), pop["LAD21CD"].map(single))
    return pop.assign(code=code).dropna(subset=["code"]).groupby("code")["total_population"].sum().astype(float)


# ---------------------------------------------------------------------------------------------------------------
# Choosing rows


def headline_sex(store: Store, indicator_id: str, sex: str | None = None) -> str | None:
    """The sex used for an indicator: `sex` if it has rows for it, else its default_sex, else Persons, Female,
    Male in that order. None when the indicator has no rows."""
    sexes = store.derived(("sexes",), lambda: store.obs.groupby("indicator_id")["sex"].agg(lambda s: set(s)).to_dict())
    have = sexes.get(indicator_id, set())
    default = store.indicators.at[indicator_id, "default_sex"] if indicator_id in store.indicators.index else None
    for candidate in (sex, default, "Persons", "Female", "Male"):
        if candidate in have:
            return candidate
    return next(iter(sorted(have)), None)


def indicators_with_ci(store: Store) -> set[str]:
    """The indicators with a confidence interval on any row (memoised, so saved: a reader need not hold obs)."""
    return store.derived(("with_ci",), lambda: set(store.obs.loc[store.obs["lci95"].notna(), "indicator_id"].unique()))


INDICATORS_AT_A_TIME = 10  # about 25,000 of every area's rows (snapshot): no more CPU than one batch of all


def indicator_batches(ids) -> list[list[str]]:
    """The indicators a few at a time, in order. Frames whose every group, benchmark and trend lies within one
    indicator (every area's rows, the ICB figures) are built a batch at a time: built all at once, their working
    copies needed hundreds of MB more than the Store itself (the snapshot)."""
    ids = sorted(ids)
    return [ids[at:at + INDICATORS_AT_A_TIME] for at in range(0, len(ids), INDICATORS_AT_A_TIME)]


def la_rows(store: Store, frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """The local-authority rows of `frame` at `level`: 'ltla' = the 296 districts and unitaries, 'utla' = the 153
    counties and unitaries."""
    if level == "ltla":
        return frame[frame["area_type"] == "ltla"]
    return frame[(frame["area_type"] == "utla") | frame["area_code"].isin(store.utla_codes)]


def population_weighted_utla(store: Store, frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """District (ltla) values -> upper tier: each county gets the mid-2020-population-weighted mean of its districts'
    values (only when every district has a value); unitaries keep their own value. Returns keys + area_code, value."""
    to_utla = store.parent("utla")
    rows = frame[frame["area_type"] == "ltla"].copy()
    rows["utla"] = rows["area_code"].map(to_utla)
    rows["w"] = rows["area_code"].map(store.population)
    rows = rows.dropna(subset=["utla", "value", "w"])
    n_districts = store.links[store.links["parent_type"] == "utla"].groupby("parent_code").size()
    rows["wv"] = rows["w"] * rows["value"]
    g = rows.groupby(keys + ["utla"], as_index=False).agg(wv=("wv", "sum"), w=("w", "sum"), n=("value", "size"))
    g = g[g["n"] == g["utla"].map(n_districts)]
    g["value"] = g["wv"] / g["w"]
    return g.rename(columns={"utla": "area_code"})[keys + ["area_code", "value"]]


# ---------------------------------------------------------------------------------------------------------------
# Benchmark comparison of whole frames


JUDGEMENT_SOURCES = {"fingertips": "OHID Fingertips"}  # sources that publish their own comparison with England


def judge(frame: pd.DataFrame, store: Store, benchmark: pd.Series, group_keys: list[str],
          by_row: bool = False, published_judgement: bool = True) -> pd.DataFrame:
    """Add the comparison with `benchmark` (aligned with frame's index) and the position among areas to `frame`
    (rows with indicator_id, value, CIs, area_code and a group given by group_keys: areas of the same type,
    period and sex). Two separate statements:

    * comparison, comparison_level, comparison_label, comparison_basis: a significance judgement only. The
      publisher's own judgement where it gives one and the benchmark is England (`published_judgement`), else by
      the CIs the Fingertips way, else "Not compared". An indicator whose catalog ci_method is "none" is never
      compared by significance. comparison_basis says which ("published judgement (OHID)", "published CI",
      "CI computed from counts (...)"), None when not compared.
    * quintile (Lowest .. Highest) and position (the same fifth in polarity words: "Best fifth" .. "Worst fifth",
      "Highest fifth" .. "Lowest fifth" without polarity) for every row with a value, among its group.

    position_only is True where the indicator (by_row: the row) has no CI to be tested on, the rows the department
    ranking judges by their fifth. by_row: decide by each row's own CI (ICB figures: exact ones have a CI,
    approximate ones none)."""
    out = frame.copy()
    ind = store.indicators
    polarity = out["indicator_id"].map(ind["polarity"])
    no_test = out["indicator_id"].map(ind["ci_method"]).eq("none").to_numpy()
    if by_row:
        has_ci = out["lci95"].notna() & out["uci95"].notna()
    else:
        has_ci = out["indicator_id"].isin(indicators_with_ci(store))
    res = compare(out["value"], out["lci95"], out["uci95"], benchmark, polarity, out["lci998"], out["uci998"])
    comparison, level, label = (res[c].to_numpy(dtype=object, copy=True) for c in ("comparison", "level", "label"))
    ci_source = out["ci_source"] if "ci_source" in out else pd.Series(None, index=out.index, dtype=object)
    basis = np.where(comparison != NOT_COMPARED,
                     np.where(ci_source.fillna("").str.startswith("computed"), "CI " + ci_source.fillna("").astype(str),
                              "published CI"), None).astype(object)
    if "method" in out:  # ICB figures: the CI was computed from the summed counts
        basis = np.where((comparison != NOT_COMPARED) & (out["method"] == "recomputed from counts"),
                         "CI computed from summed counts", basis).astype(object)
    published = out["published_comparison"] if (published_judgement and "published_comparison" in out) else None
    if published is not None:
        # the publisher's word as published; a difference Fingertips reports is at least a 95% one (it tests at
        # 95% or 99.8%), so Better/Worse/Higher/Lower read "(95%)", "at least at 95%"
        use = published.notna().to_numpy() & ~no_test
        word = published.to_numpy(dtype=object)
        publisher = out["indicator_id"].map(ind["source"]).map(lambda x: JUDGEMENT_SOURCES.get(x, x)).to_numpy(dtype=object)
        comparison[use] = word[use]
        level[use] = np.where(word[use] == SIMILAR, None, "95%")
        label[use] = np.where(word[use] == SIMILAR, word[use], word[use].astype(str) + " (95%)")
        basis[use] = np.array([f"published judgement ({p})" for p in publisher[use]], dtype=object)
    comparison[no_test], level[no_test], label[no_test], basis[no_test] = NOT_COMPARED, None, NOT_COMPARED, None
    for name, values in (("comparison", comparison), ("comparison_level", level), ("comparison_label", label),
                         ("comparison_basis", basis)):
        out[name] = text_column(values, out.index)
    q = quintile_labels(out["value"], [out[k] for k in group_keys])
    out["quintile"] = q.where(q != NOT_COMPARED, None)
    out["position"] = position_words(out["quintile"], polarity)
    out["position_only"] = (~has_ci.to_numpy() | no_test) & (out["comparison_basis"].isna().to_numpy())
    return out
