"""Ratios, goals and bench/RESULTS.md from one run's results."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from bench.load import CONTENDERS, NO_REPEAT

LOAD_GOAL_RAW = 0.7  # the tracker's load at least this fraction of raw executemany's speed
MEMORY_GOAL_MB = 500
SNAPSHOT_GOAL_S = 8  # part 2: the whole snapshot loaded (prepare before its analysis precompute), by CPU time
PREPARE_MEMORY_GOAL_MB = 400  # part 2: peak RSS of `tracker prepare`
QUERY_P95_GOAL_MS = 100
QUERY_RAW_FACTOR = 2
EXPORT_GOAL_S = 1
PAGE_GOAL_S = 1.5
BROWSER_WARM_GOAL_S = 2  # part 6: navigation to the page drawn (its last change), p95 of the warm visits
FLOOR_VIEW = "floor: minimal page, no data"
BROWSER_FIRST_GOAL_S = 4  # and the first visit after the server started
CONCURRENT_GOAL_RATIO = 3  # 10 visitors at once: median within 3x one visitor's
DASHBOARD_MEMORY_GOAL_MB = 300  # part 6: one dashboard process's peak resident memory on the snapshot
FRESH_GOAL_S = 120  # part 7: fresh clone to the first chart, cold package cache
NAMES = {"tracker": "tracker (run_source)", "sqlite_utils": "sqlite-utils", "pandas": "pandas to_sql",
         "raw": "raw sqlite3 executemany"}

# What the profiles showed (by profile kind), written after reading them (2026-11-28, this machine). Kept with the
# code so the results file carries the analysis; the hot-spot tables beside it are regenerated on every run.
FINDINGS: dict[str, str] = {
    "load": (
        "**Finding.** About two thirds of the tracker's first load is sqlite3's executemany into the observation "
        "table (the 7-column key, a secondary index, three foreign keys): the same work raw executemany does. The rest is "
        "parsing (pyarrow's CSV reader), validation (numbers parsed in bulk, one lookup per distinct area code) and "
        "the column-wise conversion in db.load._rows; none is more than a few percent of the run on its own."),
    "source": (
        "**Finding.** In the slowest source (mhclg_deprivation: 313,267 LSOA rows) about 60% of the time is "
        "sqlite3's executemany (SQLite writing the rows into the 7-column text key, with foreign-key checks; the "
        "secondary index is built once after the bulk build) and 6% the commit; parsing, validation and "
        "conversion are a few percent each. Measured on this machine (2026-12-02, CPU time, same 649,164 rows): raw "
        "executemany into the tracker's own table takes about 1.8x the physical reference's CPU time (integer keys); "
        "WITHOUT ROWID alone saves about 13% of that insert but makes both secondary indexes carry the 7 text key "
        "columns, so their build costs about 50% more and the net gain is under 0.5 s (not adopted); dropping the "
        "foreign keys saves about 12% of the insert. The factor of two the goal asks for needs the leaner table the "
        "issue names (observation keyed by small integers, text in dictionary tables), which changes every reader "
        "of the observation table; parsing and validating the next payload on the second core while SQLite inserts "
        "the current one (tracker.refresh.read_ahead) shortens the wall time but not the CPU time. Since 2026-12-04 the "
        "table has one secondary index (migration 0008 dropped an unused one)."),
    "export-icb": (
        "**Finding.** The pack is built for up to 25 areas at once (tracker.exports.AREAS_AT_ONCE) and its CSV "
        "formatted column by column, each distinct value once; what remains is pandas' fixed cost per call in "
        "latest_observations, the ICB figures and the load dates."),
}
DASHBOARD_FINDING = (
    "**Finding (app start).** AppTest runs the page script in another thread, so pyinstrument does not see it; "
    "timed separately on the snapshot database: a new process imports Streamlit, pandas and the app (about a second "
    "on this machine), reads from the save the Store's own fields (areas, indicators; every observation only if a "
    "page needs them, which none of the views here does) and then only the saved results the default page uses, each "
    "decoded when first used (tracker.analysis.saved.SavedMemo). AppTest runs the script twice in a new session "
    "(its own initial run and the one `run()` asks for), so its app start holds a second, warm run of the page "
    "(about 0.3 s here); a browser session runs it once.")


# What changed after the previous full run's profiles (2026-11-28 02:47 run), with the effect measured during
# development on this machine (quick runs outside the benchmark; the benchmark's own figures are above them).
APPLIED = [
    ("pipelines/base.py read_csv_strict", "pyarrow's CSV reader (C++) instead of csv.reader into lists and an object "
     "DataFrame; a record with more or fewer fields than the header is still an error naming the record",
     "parse of one 135,020-row payload 0.73 s -> 0.2-0.4 s"),
    ("pipelines/validate.py to_numbers", "plain numbers parsed in bulk (pyarrow regex match + cast); only other cells "
     "(blanks, markers, \"1,234\", \" 5 \", a numeric-looking marker) take the careful path", "0.75-0.83 s -> about 0.2 s "
     "per payload; tests/test_validate.py covers the awkward cells"),
    ("pipelines/validate.py check_values, harmonise_areas; tracker/geography.py map_series",
     "limits mapped per indicator and compared in bulk; whole-row duplicate check only when a key repeats; one "
     "lookup and one reason per distinct area code", "prepare() of one payload 1.4-1.5 s -> 0.6-0.9 s"),
    ("db/load.py _rows", "column by column: dates converted once per distinct date (ISO text on SQLite, as "
     "SQLAlchemy's Date stores it; no sqlite3 date adapter), text shared per distinct value, rows streamed into "
     "executemany", "0.78 s -> about 0.4 s per 270,040 rows"),
    ("tracker/refresh.py", "gzip level 1 for the archive; payload, parsed and clean frames released as soon as used; "
     "archiving counted in the fetch stage", "archive 0.32 s -> 0.1 s per payload; one payload in memory at a time"),
    ("tracker/store.py prepare + db/load.py indexes_built_after", "a bulk build into an empty table builds the two "
     "secondary observation indexes once at the end (rebuilt even on failure; `tracker init` restores them after a "
     "kill)", "snapshot refresh about 2.5 s shorter"),
    ("pipelines/ons_els.py, pipelines/dfe.py", "periods, indicators and notes worked out per distinct value",
     "ELS parse 2.1 s -> 1.2 s"),
    ("tracker/analysis (warm.py, data.py save_store)", "after a refresh lands, the analysis every first view needs is "
     "computed once and saved (in the database, keyed by data version and analysis-code digest); a new process reads it back; "
     "exports take headline ages and load dates from it; SciPy imported on first use",
     "dashboard app start 16-18 s -> 1.5-3 s; `tracker export` of an ICB in a new process 21 s -> about 3 s "
     "(whole command)"),
    ("tracker/refresh.py read_ahead", "the next payload is read, parsed and validated in a worker thread (one "
     "payload ahead) while SQLite inserts the current one; progress is still reported from the caller's thread",
     "under the same contention (base and change run side by side, load average 3-6): snapshot wall 86.5 s -> "
     "80.4 s and 115 s -> 107 s; CPU time unchanged (31.3 s -> 32.1 s); loading peak +15 MB"),
    ("db/load.py _rows", "a multi-indicator payload is put in key order by integer codes (np.lexsort) and taken "
     "chunk by chunk instead of sorting a copy of the whole frame", "loading peak 446 MB -> 410 MB with the worker"),
    ("together, part 1", "tracker refresh of two SYNTHETIC payloads (270,040 rows), first load, against raw "
     "executemany of the same files", "CPU 11.9 s vs 4.4 s (0.37x) -> 4.8-5.1 s vs 3.6-4.7 s (0.7-0.98x)"),
    ("tracker/analysis/saved.py SavedMemo (2026-12-02)", "a new process reads the Store's own fields from the save "
     "at once and each derived result when first used, instead of decoding the whole save", "ICB export in a new "
     "process, whole command 6.8 s -> 4.7 s (same bytes); AppTest app start 3.2-3.8 s -> 2.4-2.6 s, peak 1.25 -> "
     "1.03 GB"),
    ("pipelines/validate.py (2026-12-02)", "dates, area-code mapping and label checks worked out once per distinct "
     "value and spread with numpy (identical results on all 46 bundled payloads)",
     "validation of the snapshot 5.0-5.6 s -> 3.7-3.9 s CPU"),
    ("tracker/analysis/icb.py _lsoa_rows, reuse.py (2026-12-02)", "LSOA rows read as ISO-date text into a frame built "
     "from columns; after a refresh, unchanged indicators' frames reused from the previous save", "LSOA read 8.3 s -> "
     "3.3 s CPU; analysis after a one-source refresh 48-52 s -> 31-33 s CPU"),
    (".streamlit/config.toml (2026-12-02)", "Streamlit's file watcher and magic off (developer features)",
     "server CPU per warm ICB Place render 2.16 -> 1.05 s"),
    ("tracker/analysis/saved.py _read_frame, data.py _typed (2026-12-02)", "text read dictionary-encoded: one Python "
     "object per distinct value, not per row", "a new process after one place's views 742 -> 356 MB over its imports"),
    ("analysis_row table, tracker/analysis/place.py area_rows (2026-12-02)", "every area's comparisons, trends and ICB "
     "figures saved as an ordinary table; pages, peers and exports query the areas they show instead of holding "
     "every area's rows; Arrow's allocator gives back what it kept after decoding", "after four Place views (AppTest, "
     "one process) 607 -> 387 MB; after every view 746 -> 492 MB; dashboard peak in part 6 870 -> 575 MB; ICB pack "
     "warm 1.0 -> 1.1-1.5 s and the full export about 1.5x slower (they read rows from the database); `tracker "
     "prepare` peak up about 280 MB (the rows are built whole before they are written)"),
    ("tracker/analysis/peers.py _peer_values (2026-12-03)", "peers read only the (indicator, period) series their "
     "places have, not every indicator's rows for any of those periods", "ICB pack warm 1.45 -> 1.02 s; 41,012 peer "
     "rows read -> 10,388 (10,141 needed); the same bytes"),
    ("db/engine.py is_current (2026-12-03)", "whether the database is at the newest migration read from "
     "alembic_version and the migration files, without importing Alembic", "AppTest app start, median of 7: "
     "2.99 -> 2.70 s"),
    ("tracker/analysis/place.py area_row_chunks, saved.py _frame_bytes (2026-12-03)", "every area's rows put "
     "together and written 40 areas at a time, not built whole; saved frames converted to Arrow 50,000 rows at a "
     "time", "analysis precompute peak 1,317 -> 1,019 MB and 56 -> 41 s; the saved rows identical"),
    ("tracker/analysis/data.py Store.obs, analysis_row.run_id (2026-12-03)", "a Store read from a save reads every "
     "observation only when first used; peers and exports no longer need them (an export's load dates come from "
     "the rows)", "after every view (AppTest, one process) 489 -> 430 MB; AppTest app start, median of 7, 2.70 -> "
     "2.53 s"),
    ("tracker/analysis/inequality.py lsoa_boundaries, app/pages/place.py (2026-12-03)", "the LSOA map looks up each "
     "LSOA's IMD decile in a dict, not a pandas row per LSOA; the Place page computes its profile once, with the "
     "similar areas' columns", "CPU per first ICB Place render (AppTest, median of 5 ICBs, back to back) 1.99 -> "
     "1.40 s; the same map"),
    ("tracker/app/common.py freshness (2026-12-03)", "the sources' status cached for 30 s, not computed on every "
     "render", "warm Indicator (ICB) render CPU, AppTest median of 7, back to back: 0.285 -> 0.221 s"),
    ("tracker/exports.py _Pack.ranks, loaded_on (2026-12-03)", "department rankings worded for the pack's own "
     "areas, not every place; load dates read in one query", "warm ICB pack CPU, median of 5, back to back: "
     "1.34 -> 1.21 s; the same bytes"),
    ("tracker/app/common.py render_slot, TRACKER_RENDER_SLOTS (2026-12-03)", "a dashboard process draws one page "
     "at a time and tells later visitors to wait, instead of drawing every page together on one interpreter",
     "10 lightweight visitors at once on first ICB Place visits, one process, back to back: median 28.3 -> 6.0 s, "
     "slowest 29.4 -> 11.1 s, server CPU 20.5 -> 11.0 s"),
    ("tracker/analysis/data.py _read_observations, place.py _judged_rows (2026-12-03)", "the analysis reads the "
     "observations 50,000 rows at a time into typed columns, and judges every area's rows after letting go of the "
     "observations' working copies", "prepare's analysis: reading peak 694 -> 537 MB, judged-rows step's peak 939 -> "
     "815 MB (the same rows); `tracker prepare` peak 1,013 -> 910 MB"),
    ("tracker/analysis/saved.py _frame_bytes (2026-12-03)", "a save tells NaN from None among the missing text "
     "values only, not every value", "about 4 s of a save's CPU"),
    ("tracker/exports.py _known_areas, _Pack.ranks (2026-12-03)", "the areas a user can choose memoised with the "
     "data version's analysis; rankings worded from the memoised table, not a copy", "warm ICB pack CPU, median of "
     "5, back to back: 1.04-1.09 -> 0.91-0.97 s"),
    ("Makefile run (2026-12-03)", "the packages' bytecode compiled on the second core while prepare runs, not at "
     "install", "fresh clone to the first chart, back to back with a cold uv cache: 145.1 -> 135.9 s (install 35.7 "
     "-> 22.1 s)"),
    ("tracker/app/common.py _memory_given_back, MALLOC_ARENA_MAX=2 in every launcher; tracker/geography.py "
     "boundaries, analysis/inequality.py _icb_shapes (2026-12-04)", "Arrow's buffers from the system allocator (its "
     "default, mimalloc, keeps what it freed), glibc's free memory given back after each page (malloc_trim, 1-3 ms), "
     "two malloc arenas instead of one per thread; the parsed boundary files no longer cached beside the maps made "
     "from them", "a real server after three visits to each view and ten Chromium visitors, back to back: peak "
     "393 -> 276 MB and 422 -> 290 MB; part 6's dashboard peak 444 -> 288 MB; server CPU for ten lightweight first "
     "visits on one process, back to back: 4.38 -> 4.59 s"),
    ("tracker/analysis/place.py _judged_rows, icb.py _build (data.indicator_batches); tracker/memory.py between the "
     "steps of analysis/warm.py; saved.py typed_rows (2026-12-04)", "every area's rows and the ICB figures built ten "
     "indicators at a time (every group, benchmark and trend lies within one indicator: the same frames, tested), "
     "freed memory given back to the system between the precompute's steps and the chunks of rows it writes, only "
     "the key and run columns copied to find each row's run; the area rows hold each distinct text once, not once "
     "per row (written or read back)", "part 2's `tracker prepare` peak 903 -> 839 MB (rows in batches) -> 758 MB "
     "(all but the last) -> 728 MB; the judged-rows step's own peak 790 -> 580 MB; the precompute's CPU time "
     "unchanged (15.6-16.2 s, 3 runs each, back to back); building every area's rows for the save 1.52 -> 1.30 s "
     "and reading them all back from the table 5.46 -> 4.95 s of CPU"),
    ("db/migrations 0008, db/models.py Observation; tracker/geography.py, db/load.py (2026-12-04)", "the observation "
     "table's (indicator_id, period_end) index dropped: no query used it (reads by indicator use the primary key); "
     "Arrow-backed text turned into Python lists with tolist() instead of element by element", "whole-snapshot load "
     "CPU, five runs each, interleaved: median 8.51 -> 8.01 s (the index build was 0.31 s); initialise 1.7 -> 1.3 s "
     "in part 2"),
    ("tracker/analysis data.py judge and read_observations, trends.py, icb.py _lsoa_rows, built.py, place.py "
     "area_row_chunks, saved.py _frame_bytes; db/columns.py text_column (2026-12-05)", "the comparison and trend "
     "labels held once per distinct text, not once per row in pandas' Arrow-backed str; the LSOA rows read a slice at "
     "a time into typed columns; county and region figures built from only the columns they need; a save's Arrow "
     "schema worked out from a one-row stand-in, its frames converted 20,000 rows at a time and the memory of each "
     "large one given back; area rows written 20 areas at a time and their run ids taken from their own "
     "observations; each distinct text of the observations read a new object (the driver's, scattered, kept 60 MB "
     "of memory arenas from being freed)", "part 2's `tracker prepare` peak 728 -> 659 -> 649 -> 624 -> 611 MB; the "
     "precompute alone (a new process, back to back, twice each): peak 687-689 -> 584-590 MB, CPU 15.35-15.97 -> "
     "15.24-15.95 s; the same analysis_row table and saved values on the snapshot"),
    ("tracker/analysis/stats.py (2026-12-05)", "the normal, chi-squared and Student's t distributions and Spearman's "
     "test from scipy.special (the functions scipy.stats itself calls), so no process imports scipy.stats (45 MB)",
     "part 2's `tracker prepare` peak 611 -> 562 MB; every saved frame and analysis_row exactly as before on the "
     "snapshot, every limit and p-value equal to scipy.stats' to the last bit (tested); with the entry above, the "
     "precompute alone (a new process, back to back with the day's starting code, twice each): peak 687-688 -> "
     "540-541 MB, CPU 15.41-15.50 -> 14.31-14.32 s"),
    ("tracker/analysis place.py _judged_rows and area_row_chunks, saved.py Encoded, built.py, data.py "
     "read_observations, dependence.py _pairs and _place_evidence, warm.py; tracker/memory.py set_up_allocators "
     "(2026-12-05)", "every area's rows held encoded "
     "(Parquet, a part per batch of ten indicators, about 3 MB instead of 85) from the moment each batch is built, "
     "and written to analysis_row a batch and 150 areas at a time (each area's rows read back in order by area and "
     "seq); what they were built from (LSOA rows, ICB tables, county figures) held encoded once built; county and "
     "region figures built ten indicators at a time; the observations read into columns a column at a time; the "
     "catalog's counts made from six columns, not all; the headline outcomes' association pairs and evidence from "
     "the columns they use (no longer a split of every observation by indicator); Arrow on the system allocator and "
     "glibc's mmap threshold fixed at 1 MiB in every tracker process", "part 2's `tracker prepare` peak 562 -> 511 MB "
     "(rows encoded, Arrow on the system allocator in the precompute) -> 383-391 MB (the rest, eight runs) -> 379 MB "
     "(the LSOA rows held encoded as soon as the figures counted over them are built); loading "
     "alone 394 -> 350-364 MB; with the forked second process, both processes' summed PSS (sampled every 50 ms) "
     "717 -> 572-626 MB; the same analysis_row rows and saved values on the snapshot; the precompute's wall time "
     "15.4-15.7 -> 17.3-18.2 s, its second process's CPU 5.2 -> 5.0-5.2 s (its bootstrap on glibc's heap)"),
    ("tracker/app/pages/place.py render (sections in tabs, st.tabs bound to the link's `section`), similar.py; "
     "common.py choropleth (2026-12-05)", "the Place page draws one section at a time (Departments by default; "
     "Similar areas, Local authorities, Inequality and Every indicator in their tabs, computed only when open), "
     "not the LSOA map, the local authorities' table, the similar areas and every indicator under the ranking; a "
     "map greys only the areas with no figure, instead of drawing every area grey beneath the coloured ones",
     "part 6 warm p95 to the last change of any kind (the clock of earlier runs), the 04:04 run -> the 07:00 run "
     "(the minimal page 1.27 -> 1.46 s: a slower hour): Place England 2.19 -> 1.99, ICB 2.57 -> 2.13, county "
     "2.39 -> 2.04, local authority 2.49 -> 2.09, Overview 2.19 -> 2.17 s; server CPU per Place render 0.18-0.23 -> "
     "0.16-0.17 s; then the grey areas drawn from their own shapes, not every area's (after that run): the Overview's "
     "LTLA map message 1.64 -> 0.85 MB"),
    ("tracker/memory.py leave_long_lived_out_of_collections, called by common.py render_slot (2026-12-05)",
     "after its first page a dashboard process collects once and freezes what is left (gc.freeze), so the full "
     "garbage collection Streamlit runs after every page (runner.postScriptGC) no longer walks the ~190,000 objects "
     "of the imported libraries and the first page's caches (60-75 ms a page, 40% of a Place page's server CPU, "
     "py-spy); later pages' garbage is still collected (about 1 ms)",
     "the same server, back to back: 19 first ICB Place visits one after another, median 0.16-0.18 -> 0.10 s; 40 "
     "warm visits 0.104-0.107 -> 0.089-0.090 s; ten lightweight visitors at once on two processes, median 0.61 -> "
     "0.33 s, server CPU 1.89 -> 1.01 s (on one process 1.04 -> 0.59 s); Chromium's warm ICB Place p95 unchanged "
     "within noise (the browser's drawing)"),
]


def load_ratios(out: dict) -> None:
    """Per phase: rows/s, speed relative to raw executemany and to the fastest, and whether every contender left
    the same rows (count, values present, sum of values) in the table."""
    for phase in ("first", "repeat"):
        done = {c: p[phase] for c, p in out["contenders"].items() if "seconds" in p.get(phase, {})}
        if not done:
            continue
        for key, prefix in (("seconds", ""), ("cpu_seconds", "cpu_")):
            fastest = min(r[key] for r in done.values())
            raw = done.get("raw", {}).get(key)
            for r in done.values():
                r[f"{prefix}rows_per_second"] = round(r["rows"] / r[key]) if r[key] else None
                r[f"{prefix}speed_vs_fastest"] = round(fastest / r[key], 3)
                if raw:
                    r[f"{prefix}speed_vs_raw"] = round(raw / r[key], 3)
        expected = [c for c in CONTENDERS if not (phase == "repeat" and c in NO_REPEAT)]
        states = {(r["rows"], r["values"], round(r["value_sum"], 3)) for r in done.values()}
        out[f"same_rows_{phase}"] = len(states) == 1 and sorted(done) == sorted(expected)


def snapshot_ratios(result: dict) -> None:
    """Part 2 against its physical reference: how many times the reference's time the tracker's load takes."""
    ref = result.get("reference") or {}
    if ref.get("cpu_seconds"):
        result["cpu_vs_reference"] = round(result["cpu_seconds"] / ref["cpu_seconds"], 2)
        result["wall_vs_reference"] = round(result["seconds"] / ref["seconds"], 2)


def query_ratios(result: dict) -> None:
    result["warm_vs_raw_p95"] = round(result["warm"]["p95_ms"] / result["raw"]["p95_ms"], 2)
    result["warm_vs_raw_p50"] = round(result["warm"]["p50_ms"] / result["raw"]["p50_ms"], 2)


def _x(other: dict, tracker: dict, key: str) -> str:
    """How many times faster the tracker is than `other` (below 1: slower)."""
    return f"{other[key] / tracker[key]:.2f}x"


def _second_process_text(snap: dict) -> str:
    """What the analysis' second process (the headline outcomes, on the other core) cost, when it ran."""
    if not snap.get("second_process_cpu_seconds"):
        return ""
    together = (f"; both processes together peak at {snap['tree_peak_pss_mb']:.0f} MB (PSS: shared pages "
                "counted once)") if snap.get("tree_peak_pss_mb") else ""
    return (f"; the headline outcomes are analysed meanwhile in a second, forked process (CPU "
            f"{snap['second_process_cpu_seconds']:.1f} s, peak RSS {snap['second_process_peak_rss_mb']:.0f} MB, much "
            f"of it pages shared with the first{together})")


def _stage_text(r: dict) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in r.get("stages", {}).items())


def queue_floor(visitors: int, processes: int, cores: int) -> float:
    """The middle visitor's time, in renders, when `visitors` CPU-bound renders arrive at once and are drawn in turn
    by `processes` processes (one page at a time each) on `cores` cores: the k-th finishes after ceil(k / parallel)
    renders. 10 visitors: 3 on two processes and two cores, 5.5 on one process."""
    parallel = max(1, min(processes, cores))
    return statistics.median(math.ceil(k / parallel) for k in range(1, visitors + 1))


def goals(results: dict) -> list[dict]:
    rows: list[dict] = []

    def add(part, goal, measured, met, why=""):
        rows.append({"part": part, "goal": goal, "measured": measured, "met": met, "why": "" if met else why})

    for key, label in (("load_synthetic", "1b England-wide (SYNTHETIC)"), ("load_real", "1a real snapshot rows")):
        data = results.get(key, {})
        if "contenders" not in data:
            if key in results:
                add(label, "load goals", data.get("not_measured", "not measured"), None, data.get("not_measured", ""))
            continue
        c = data["contenders"]
        for phase in ("first", "repeat"):
            t = c["tracker"].get(phase, {})
            if "error" in t or "seconds" not in t:
                add(label, f"tracker {phase} load", "failed", False, t.get("error", "")[-300:])
                continue
            raw = c["raw"].get(phase, {})
            why_stages = (f"tracker stages (wall): {_stage_text(t)}; raw executemany does its whole job (csv parse + "
                          f"insert) in {raw.get('cpu_seconds', float('nan')):.1f} s CPU")
            for other in ("sqlite_utils", "pandas"):
                o = c[other].get(phase, {})
                if "not_supported" in o:
                    add(label, f"{phase} load: tracker faster than {NAMES[other]}", f"{NAMES[other]}: not supported",
                        None, o["not_supported"])
                if "cpu_seconds" in o:
                    add(label, f"{phase} load: tracker faster than {NAMES[other]}",
                        f"CPU {t['cpu_seconds']:.1f} s vs {o['cpu_seconds']:.1f} s: {_x(o, t, 'cpu_seconds')} "
                        f"(wall {_x(o, t, 'seconds')})", t["cpu_seconds"] < o["cpu_seconds"], why_stages)
            if "cpu_speed_vs_raw" in t:
                add(label, f"{phase} load: tracker >= {LOAD_GOAL_RAW}x raw executemany speed",
                    f"{t['cpu_speed_vs_raw']:.2f}x by CPU ({t['cpu_seconds']:.1f} s vs {raw['cpu_seconds']:.1f} s); "
                    f"{t['speed_vs_raw']:.2f}x by wall", t["cpu_speed_vs_raw"] >= LOAD_GOAL_RAW, why_stages)
        peaks = [c["tracker"][p]["peak_rss_mb"] for p in ("first", "repeat") if "peak_rss_mb" in c["tracker"].get(p, {})]
        if peaks:
            add(label, f"tracker peak memory < {MEMORY_GOAL_MB} MB", f"{max(peaks):.0f} MB", max(peaks) < MEMORY_GOAL_MB,
                "see the load findings")

    snap = results.get("snapshot")
    if snap:
        slow = max(snap["sources"], key=lambda s: s["seconds"], default=None)
        ref = snap.get("reference") or {}
        versus = (f"; {snap['cpu_vs_reference']:.1f}x the physical reference's CPU {ref['cpu_seconds']:.1f} s"
                  if "cpu_vs_reference" in snap else "")
        add("2 offline refresh", f"whole snapshot (tracker.store.prepare, before its analysis precompute) <= "
            f"{SNAPSHOT_GOAL_S} s of CPU time", f"CPU {snap['cpu_seconds']:.1f} s (wall {snap['seconds']:.1f} s)"
            + versus, snap["cpu_seconds"] <= SNAPSHOT_GOAL_S,
            f"initialise {snap['initialise_seconds']:.1f} s; slowest source {slow['source']} {slow['seconds']:.1f} s "
            f"({_stage_text(slow)}); SQLite's insert into the tracker's text-keyed table alone costs about 1.8x the "
            "physical reference (see the refresh finding)" if slow else "")
        whole, loading = snap["peak_rss_mb"], snap.get("load_peak_rss_mb", snap["peak_rss_mb"])
        add("2 offline refresh", f"`tracker prepare` peak memory <= {PREPARE_MEMORY_GOAL_MB} MB",
            f"{whole:.0f} MB (loading the data alone: {loading:.0f} MB"
            + (f"; with the analysis' forked second process, both together {snap['tree_peak_pss_mb']:.0f} MB "
               "PSS" if snap.get("tree_peak_pss_mb") else "") + ")", whole <= PREPARE_MEMORY_GOAL_MB,
            "loading peaks at {:.0f} MB{}; the analysis precompute that ends prepare (tracker.analysis.warm) peaks "
            "higher: it holds every observation, the LSOA rows and the ICB figures in memory while it builds every "
            "area's rows (ten indicators at a time, each batch encoded as it is built and written to analysis_row a "
            "batch and some areas at a time; freed memory is given back between steps); the libraries it runs on "
            "(pandas, pyarrow, SQLAlchemy, scipy.special) take about 135 MB once imported (measured "
            "2026-12-05)".format(loading, " (within the goal)" if loading <= PREPARE_MEMORY_GOAL_MB else "")
            + _second_process_text(snap) if whole > loading else "the loading itself")

    q = results.get("query")
    if q and "warm" in q:
        add("3 query", f"warm place_profile(ICB) p95 < {QUERY_P95_GOAL_MS} ms", f"{q['warm']['p95_ms']:.1f} ms",
            q["warm"]["p95_ms"] < QUERY_P95_GOAL_MS, "see the query_warm profile")
        add("3 query", f"warm p95 within {QUERY_RAW_FACTOR}x raw SQL p95",
            f"{q['warm_vs_raw_p95']:.2f}x ({q['warm']['p95_ms']:.1f} vs {q['raw']['p95_ms']:.1f} ms)",
            q["warm_vs_raw_p95"] <= QUERY_RAW_FACTOR,
            "the analysis works on in-memory frames built for all areas (comparison, trend, ICB figures), then filters "
            "and sorts them per call with pandas, whose fixed per-operation cost exceeds SQLite's indexed lookup")
    elif q:
        add("3 query", "query goals", q.get("not_measured") or "failed", None, q.get("not_measured") or q.get("error", "")[-300:])

    e = results.get("exports")
    if e and "icb" in e:
        icb = e["icb"]
        if "error" in icb:
            add("4 export", "ICB pack < 1 s", "failed", False, icb["error"][-300:])
        else:
            add("4 export", f"ICB pack, dashboard download (Store built) < {EXPORT_GOAL_S} s",
                f"{icb['warm_p50_seconds']:.2f} s (max {icb['warm_max_seconds']:.2f} s)",
                icb["warm_max_seconds"] < EXPORT_GOAL_S, "see the export_icb profile")
            add("4 export", f"ICB pack, `tracker export` in a new process (reads the saved analysis) < {EXPORT_GOAL_S} s",
                f"{icb['cold_seconds']:.2f} s", icb["cold_seconds"] < EXPORT_GOAL_S,
                "a new process imports pandas, SQLAlchemy and the analysis (about a second), reads the Store's own "
                "fields and the saved results the pack uses from the database, then writes the pack (the warm figure "
                "above); see the export_icb profile")
    elif e:
        add("4 export", "export goals", e.get("not_measured", "not measured"), None, e.get("not_measured", ""))

    d = results.get("dashboard")
    if d and "pages" in d:
        add("5 dashboard", f"app start: the default page in a new process (or after a refresh) < {PAGE_GOAL_S} s",
            f"{d['app_start_seconds']:.2f} s", d["app_start_seconds"] < PAGE_GOAL_S,
            "a new process imports the app and reads the Store's own fields from the save before drawing; see the "
            "dashboard finding")
        for p in d["pages"]:
            for kind in ("first", "warm") if p["page"] != d["default_page"] else ("warm",):  # its first is app start
                add("5 dashboard", f"{p['title']} page, {kind} render < {PAGE_GOAL_S} s", f"{p[f'{kind}_seconds']:.2f} s",
                    p[f"{kind}_seconds"] < PAGE_GOAL_S and not p["errors"],
                    f"page raised: {p['errors'][0]}" if p["errors"] else
                    "the page's own analysis calls, not cached yet" if kind == "first" else "the page's own rendering")
    elif d:
        add("5 dashboard", "page goals", d.get("not_measured") or "failed", None if "not_measured" in d else False,
            d.get("not_measured") or d.get("error", "")[-300:])

    b = results.get("browser")
    if b and "views" in b:
        floor = b.get("floor")
        floor_says = (f"; a minimal Streamlit page with no data takes {floor['warm_p95']:.2f} s p95 here "
                      f"(server CPU {floor['server_cpu_per_warm_render']:.2f} s)") if floor else ""
        for v in b["views"]:
            add("6 browser", f"{v['view']}: warm p95 <= {BROWSER_WARM_GOAL_S} s", f"{v['warm_p95']:.2f} s",
                v["warm_p95"] <= BROWSER_WARM_GOAL_S, "server CPU per render "
                f"{v['server_cpu_per_warm_render']:.2f} s; the rest is the browser drawing on the same two cores"
                + floor_says)
            add("6 browser", f"{v['view']}: first visit <= {BROWSER_FIRST_GOAL_S} s", f"{v['first_seconds']:.2f} s",
                v["first_seconds"] <= BROWSER_FIRST_GOAL_S, "the view's own analysis calls, not cached yet")
        for c in b["concurrent"]:
            if c["visitors"] == 10:
                add("6 browser", f"10 visitors at once: median <= {CONCURRENT_GOAL_RATIO}x one visitor's",
                    f"{c['ratio_to_one']}x ({c['median_seconds']:.2f} s vs one visitor)",
                    c["ratio_to_one"] is not None and c["ratio_to_one"] <= CONCURRENT_GOAL_RATIO,
                    f"the server spent {c['server_cpu_seconds']:.1f} s CPU on the 10 renders, drawn in turn by one "
                    "Python process, and Chromium draws 10 pages on the same two cores (the lightweight clients below "
                    "measure the server's share alone)"
                    + "".join(f"; 10 visitors of the minimal page: {f['ratio_to_one']}x" for f in
                              (floor or {}).get("concurrent", []) if f["visitors"] == 10))
        light = (b.get("lightweight") or {}).get("concurrent", [])
        for c in light:
            if c["visitors"] == 10:
                one = next(o for o in light if o["servers"] == c["servers"] and o["visitors"] == 1)
                best = queue_floor(10, c["servers"], results["machine"]["cores"])
                add("6 browser", f"10 visitors at once, lightweight clients, {c['servers']} dashboard process(es): "
                    f"median <= {CONCURRENT_GOAL_RATIO}x one visitor's",
                    f"{c['ratio_to_one']}x ({c['median_seconds']:.2f} s; one visitor {one['median_seconds']:.2f} s; "
                    f"the queue's floor {best:g}x)",
                    c["ratio_to_one"] <= CONCURRENT_GOAL_RATIO,
                    f"the server's share alone (no browser). A render is CPU work ({c['server_cpu_seconds']:.1f} s "
                    f"for the 10 first visits) and each process draws {b['lightweight']['render_slots']} page(s) at "
                    f"once (TRACKER_RENDER_SLOTS), so on {c['servers']} process(es) and "
                    f"{results['machine']['cores']} cores the middle visitor waits for {best:g} renders at best: "
                    f"{best:g}x is this queue's own floor here, and the rest is each session's websocket work beside "
                    "the renders")
        if "server_memory_mb" in b:
            peak = b["server_memory_mb"]["peak"]
            floor_memory = (f"; a minimal Streamlit page with no data peaks at {floor['server_memory_mb']['peak']} MB"
                            if floor and "server_memory_mb" in floor else "")
            add("6 browser", f"one dashboard process's peak memory <= {DASHBOARD_MEMORY_GOAL_MB} MB", f"{peak} MB",
                peak <= DASHBOARD_MEMORY_GOAL_MB,
                f"{b['server_memory_after_views_mb']['now']} MB after the views, the rest during the concurrent "
                "visitors (a session each); pages query the rows of the places they show (analysis_row) and no view "
                "reads every observation, but the process still holds its imports (pandas, pyarrow, Plotly, "
                "Streamlit: about 180 MB), the 42 ICBs' figures an ICB's pages and pack read whole (icb_judged, about "
                "40 MB), the rankings and associations of the headline outcomes and Streamlit's caches"
                + floor_memory)
    elif b:
        add("6 browser", "browser goals", b.get("not_measured") or "failed", None if "not_measured" in b else False,
            b.get("not_measured") or b.get("error", "")[-300:])

    f = results.get("fresh")
    if f and "seconds" in f:
        add("7 fresh clone", f"fresh clone to the first chart (cold package cache) <= {FRESH_GOAL_S} s",
            f"{f['seconds']:.0f} s", f["seconds"] <= FRESH_GOAL_S,
            ", ".join(f"{k} {v:.0f} s" for k, v in f["stages"].items())
            + "; prepare is the snapshot's load and then the analysis precompute (part 2), each CPU-bound on one "
            "core, so this follows the machine's speed (part 6's minimal page says how fast it was)")
    elif f:
        add("7 fresh clone", "fresh clone to the first chart", "failed", False, f.get("error", "")[-300:])
    return rows


def profiles_needed(results: dict, work: Path) -> list[dict]:
    """One profile per missed goal's slowest stage."""
    missed = [g for g in goals(results) if g["met"] is False]
    todo = []
    if any(g["part"].startswith("1b") for g in missed):
        n = results["scale"]["indicators"]
        todo.append({"kind": "load", "name": "load_tracker_first", "repeat": "load_tracker_repeat", "files": 1,
                     "why": "part 1 goal missed: the tracker's refresh of one SYNTHETIC payload (135,020 rows at full "
                            "scale), first then repeated load"})
    if any(g["part"].startswith("2") for g in missed):
        slow = max(results["snapshot"]["sources"], key=lambda s: s["seconds"])
        todo.append({"kind": "source", "name": f"refresh_{slow['source']}", "source": slow["source"],
                     "why": f"part 2 goal missed: the slowest source, {slow['source']}, refreshed offline into an "
                            "initialised empty database"})
    if any(g["part"].startswith("3") for g in missed) and (work / "england.sqlite").exists():
        todo.append({"kind": "query-warm", "name": "query_warm", "db": str(work / "england.sqlite"),
                     "why": "part 3 goal missed: warm place_profile for each of the 42 ICBs"})
    if any(g["part"].startswith("4") and "download" in g["goal"] for g in missed):
        db = work / "england.sqlite"
        todo.append({"kind": "export-icb", "name": "export_icb",
                     "db": str(db if db.exists() else work / "snapshot.sqlite"),
                     "why": "part 4 goal missed: the ICB pack with the Store built"})
    return todo


# ---------------------------------------------------------------------------------------------------------------
# Markdown


def _fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out + [""]


def _load_section(title: str, data: dict | None) -> list[str]:
    lines = [f"### {title}", ""]
    if not data or "contenders" not in data:
        return lines + [f"Not measured: {(data or {}).get('not_measured', 'part not run')}.", ""]
    lines += [f"{data['rows_offered']:,} rows offered in {data['payloads']} tidy CSV payloads (one per indicator).", ""]
    for phase, heading in (("first", "First load into an empty table"), ("repeat", "Repeated load of the same rows")):
        rows = []
        for c in CONTENDERS:
            r = data["contenders"].get(c, {}).get(phase, {})
            if "not_supported" in r:
                rows.append([NAMES[c], "not supported (to_sql has no upsert)", *["–"] * 9])
                continue
            if "error" in r:
                rows.append([NAMES[c], "failed: " + r["error"].splitlines()[-1][:120], *["–"] * 9])
                continue
            rows.append([NAMES[c], r.get("rows"), r.get("seconds"), r.get("cpu_seconds"), r.get("cpu_rows_per_second"),
                         r.get("cpu_speed_vs_raw"), r.get("speed_vs_raw"), r.get("cpu_speed_vs_fastest"),
                         r.get("peak_rss_mb"), r.get("baseline_rss_mb"), r.get("load_average_before")])
        lines += [f"**{heading}**" + (" (method per contender below)" if phase == "repeat" else ""), ""]
        lines += _table(["contender", "rows in table", "wall s", "CPU s", "rows per CPU s", "speed vs raw (CPU)",
                         "speed vs raw (wall)", "speed vs fastest (CPU)", "peak RSS MB", "RSS before load MB",
                         "load avg before"], rows)
        same = data.get(f"same_rows_{phase}")
        lines += [f"Same rows in every measured contender's table (count, values present, sum of values): "
                  f"{'yes' if same else 'NO'}.", ""]
        t = data["contenders"].get("tracker", {}).get(phase, {})
        if t.get("stages"):
            lines += [f"Tracker stages ({phase}): {_stage_text(t)}; rows changed {t.get('rows_changed', 0):,}, "
                      f"rejected {t.get('rows_rejected', 0):,}.", ""]
    lines += ["Repeated load, per contender:", ""]
    lines += [f"* {NAMES[c]}: {data['repeat_methods'][c]}" for c in CONTENDERS] + [""]
    return lines


def markdown(results: dict) -> str:
    m, s = results["machine"], results["scale"]
    v = m["versions"]
    lines = [
        "# Benchmark results", "",
        *_when(results),
        *_timing(results),
        "Every contender ran in the same invocation, each measurement in its own subprocess (peak RSS is that "
        "process's own high-water mark, VmHWM). The machine is shared, so absolute times drift from run to run: read "
        "the ratios. Part 1's contenders run two at a time on the two cores "
        f"(--jobs {(results.get('load_synthetic') or {}).get('jobs', 1)}), so their ratios and goals use each "
        "process's CPU time (time.process_time: single-threaded work that other tenants and the neighbouring "
        "contender barely change); wall time is shown beside it. Latency measurements (parts 2-5) run alone. The load "
        "average before each measurement is recorded. The England-wide rows are SYNTHETIC: real LSOA 2021 codes "
        "from the tracker's geography, invented values, indicator ids `synthetic-bench-NN`, only ever written into "
        "the benchmark's own databases under bench/work/.", "",
        "## Machine", "",
        *_table(["CPU", "cores", "RAM GB", "Python", "SQLite", "pandas", "SQLAlchemy", "Streamlit", "sqlite-utils",
                 "pyinstrument", "load avg at start"],
                [[m["cpu"], m["cores"], m["ram_gb"], v["Python"], v["SQLite"], v["pandas"], v["SQLAlchemy"],
                  v["Streamlit"], v["sqlite-utils"], v["pyinstrument"],
                  " / ".join(str(x) for x in m["load_average_at_start"] or [])]]),
        f"Scale: {_fmt(s['lsoas'])} LSOAs x {s['indicators']} SYNTHETIC indicators x {s['periods']} periods"
        + (f" = {s['lsoas'] * s['indicators'] * s['periods']:,} rows" if isinstance(s["lsoas"], int) else "")
        + f"; {s['queries']} warm queries in part 3.", "",
        "## Goals", "",
    ]
    lines += _table(["part", "goal", "measured", "met", "why (when missed)"],
                    [[g["part"], g["goal"], g["measured"], {True: "met", False: "MISSED", None: "not measured"}[g["met"]],
                      g["why"]] for g in goals(results)])

    lines += ["## 1. Load throughput into SQLite", "",
              "The same tidy observations, from the same per-indicator tidy CSV payloads, into the tracker's own "
              "`observation` table (its 7-column key, a secondary index and foreign keys) in copies of one "
              "database initialised by `tracker.store.initialise` (pragmas as the tracker sets them: WAL, "
              "synchronous=NORMAL, foreign_keys=ON), each contender in one transaction. The tracker runs "
              "`tracker.refresh.run_source` with a bench-only Source (bench/synthetic.py `PayloadSource`), so its "
              "time includes what the others do not do: validation (markers to NULL with a note, area-code "
              "harmonisation, impossible values, duplicate keys), archiving each raw payload and the run's "
              "provenance. sqlite-utils gets its fastest documented path (rows as lists, `insert_all`; it caps a "
              "multi-row INSERT at 999 bound values, i.e. 55 rows of 18 columns); pandas reads each file with "
              "`read_csv` and appends with `to_sql(chunksize=50000)`; raw is `csv` + `sqlite3.executemany`. Wall time "
              "also holds I/O waits (WAL checkpoints) and the neighbouring contender's share of the disk, which CPU "
              "time leaves out.", ""]
    lines += _load_section("(a) The real snapshot's rows (parsed and validated by the pipelines in part 2)",
                           results.get("load_real"))
    lines += _load_section(f"(b) SYNTHETIC England-wide scale-up ({_fmt(s['lsoas'])} LSOAs x {s['indicators']} indicators "
                           f"x {s['periods']} periods)", results.get("load_synthetic"))

    snap = results.get("snapshot")
    lines += ["## 2. Offline refresh of the whole bundled snapshot", ""]
    if snap:
        lines += [f"`tracker.store.prepare` into an empty database (schema, departments, geography, catalog, then every "
                  f"source's bundled files; raw payloads archived): **{snap['seconds']:.1f} s** for "
                  f"{snap['rows_loaded']:,} rows (CPU {snap['cpu_seconds']:.1f} s); initialise "
                  f"{snap['initialise_seconds']:.1f} s; peak RSS "
                  f"{snap['peak_rss_mb']:.0f} MB; load average before {snap.get('load_average_before')}. "
                  "`prepare` then precomputes and saves the dashboard's analysis of the new data "
                  f"(tracker.analysis.warm): {snap.get('analysis_seconds', float('nan')):.1f} s more, not counted "
                  "above (a refresh's job is loading the data; the precompute is what spares the dashboard's first "
                  "visitor that wait)" + _second_process_text(snap) + ".", ""]
        ref = snap.get("reference") or {}
        if "cpu_seconds" in ref:
            lines += [f"**Physical reference**: the same {ref['rows']:,} rows, read back from the tracker's database "
                      "with every text column (7 key columns, dates, note, published comparison) replaced by a small "
                      "integer code, inserted by raw sqlite3 `executemany` in key order, in one transaction, into a "
                      "minimal integer-keyed table (WITHOUT ROWID, no secondary index, no foreign key; the tracker's "
                      f"pragmas): CPU {ref['cpu_seconds']:.2f} s, wall {ref['seconds']:.2f} s "
                      f"({ref['rows_per_cpu_second']:,} rows per CPU second). The tracker's whole load takes "
                      f"**{snap['cpu_vs_reference']:.1f}x** the reference's CPU time ({snap['wall_vs_reference']:.1f}x "
                      "by wall time); it also reads, parses and validates every payload, archives it, records "
                      "provenance, keeps text keys, checks foreign keys, builds a secondary index and sets up "
                      "the schema and geography. The machine is shared (the load average is beside each figure), "
                      "so the goal and the ratio use CPU time (time.process_time); wall time is shown beside it. "
                      f"Peak RSS of loading alone (before the precompute): {snap['load_peak_rss_mb']:.0f} MB; of the "
                      f"whole prepare: {snap['peak_rss_mb']:.0f} MB.", ""]
        elif "error" in ref:
            lines += [f"Physical reference: failed ({ref['error'].splitlines()[-1]}).", ""]
        lines += _table(["source", "status", "seconds", "rows read", "rows loaded", "rejected", "unmapped", "fetch s",
                         "parse s", "validate s", "load s"],
                        [[x["source"], x["status"], x["seconds"], x["rows_read"], x["rows_loaded"], x["rows_rejected"],
                          x["rows_unmapped"], *(x["stages"].get(k) for k in ("fetch", "parse", "validate", "load"))]
                         for x in snap["sources"]])
    else:
        lines += ["Not measured in this run (--parts).", ""]

    q = results.get("query")
    lines += ["## 3. Query latency on the England-wide database", ""]
    if q and "warm" in q:
        db = q["database"]
        lines += [f"Database: {db['rows']:,} observations ({db['synthetic_rows']:,} SYNTHETIC LSOA rows from part 1b "
                  f"plus {db['real_rows']:,} real rows from part 2). The Place view's data for an ICB is "
                  f"`tracker.analysis.place_profile(engine, icb)` (every indicator, latest period, comparison with "
                  f"England, trend, red-red flag); {q['warm']['n']} calls cycling through all {q['icbs']} ICBs. "
                  f"Rows per profile: {q['rows_per_profile']['min']}–{q['rows_per_profile']['max']}.", "",
                  "The analysis keeps an in-memory Store per data version: the first call after a refresh lands "
                  "(cold) reads the database and builds the derived tables for all areas; every later call (warm) "
                  "filters those. Cold is paid once per refresh, warm on every page view, so **warm is what is "
                  "compared with raw SQL**, itself run on a warm connection (page cache filled).", ""]
        lines += _table(["measure", "p50 ms", "p95 ms", "max ms", "n"],
                        [["place_profile, warm", q["warm"]["p50_ms"], q["warm"]["p95_ms"], q["warm"]["max_ms"], q["warm"]["n"]],
                         ["raw SQL (sqlite3)", q["raw"]["p50_ms"], q["raw"]["p95_ms"], q["raw"]["max_ms"], q["raw"]["n"]]])
        lines += [f"Warm / raw: p50 {q['warm_vs_raw_p50']:.2f}x, p95 {q['warm_vs_raw_p95']:.2f}x. Raw SQL rows per "
                  f"query: {q['raw_rows_per_query']['min']}–{q['raw_rows_per_query']['max']} (LA and ICB rows with "
                  "England's value; no comparison, trend or ICB figure, which the analysis adds). Peak RSS of the "
                  f"query process (Store included): {q['peak_rss_mb']:.0f} MB.", ""]
        lines += _table(["cold sample (first call after a data change)", "total s", "building the Store s",
                         "first place_profile s"],
                        [[c["icb"], c["seconds"], c["store_seconds"], c["first_profile_seconds"]] for c in q["cold"]])
        lines += ["Raw SQL (the floor: latest period per indicator for the ICB's local authorities, with England's "
                  "value):", "", "```sql", _raw_sql().strip(), "```", "",
                  "Query plan: " + "; ".join(q.get("raw_plan", [])), ""]
    else:
        lines += [f"Not measured: {(q or {}).get('not_measured') or (q or {}).get('error', 'part not run')}.", ""]

    e = results.get("exports")
    lines += ["## 4. Exports", ""]
    if e and "icb" in e:
        pre = e.get("precompute", {})
        lines += [f"On the {e['database']}. First, as `tracker refresh` does once data has landed, the analysis was "
                  "precomputed and saved (tracker.analysis.warm): "
                  + (f"{pre['seconds']:.1f} s" + (f", {pre['saved_mb']:.0f} MB saved." if pre.get("saved_mb") is not None
                                             else " (nothing new saved: the save of this data version was there).")
                   if "seconds" in pre else
                     f"failed: {pre.get('error', 'not run')[-200:]}"), ""]
        icb, full = e["icb"], e["full"]
        if "error" not in icb:
            lines += [f"Pack for ICB {icb['icb']} (`tracker.exports.write_export`, CSV): {icb['rows']:,} rows, "
                      f"{icb['areas']} areas, {icb['bytes']:,} bytes. New process (`tracker export`; reads the "
                      f"saved analysis first): {icb['cold_seconds']:.2f} s. Store in memory (dashboard download): p50 "
                      f"{icb['warm_p50_seconds']:.2f} s, max {icb['warm_max_seconds']:.2f} s. Peak RSS "
                      f"{icb['peak_rss_mb']:.0f} MB.", ""]
        else:
            lines += [f"ICB pack failed: {icb['error'][-300:]}", ""]
        if "error" not in full:
            lines += [f"Full export (every listed area, every period, CSV, new process): {full['rows']:,} rows for "
                      f"{full['areas']} areas in {full['seconds']:.1f} s = **{full['rows_per_second']:,} rows/s**, "
                      f"{full['bytes']:,} bytes, peak RSS {full['peak_rss_mb']:.0f} MB.", ""]
        else:
            lines += [f"Full export failed: {full['error'][-300:]}", ""]
    else:
        lines += [f"Not measured: {(e or {}).get('not_measured', 'part not run')}.", ""]

    d = results.get("dashboard")
    lines += ["## 5. Dashboard pages (Streamlit AppTest, snapshot database)", ""]
    if d and "pages" in d:
        lines += [f"One process, following users: the app opens on its default page ({d['default_page']}) in a new "
                  f"process: **app start {d['app_start_seconds']:.2f} s** (this run reads back the analysis that "
                  "`tracker prepare` saved, as the first visit after any refresh does). Then each page is opened in a "
                  "new session "
                  "(first render: its own analysis calls not cached yet; for the default page this is the app start) "
                  f"and again in another session (warm: Streamlit's cache and the Store warm). Peak RSS "
                  f"{d['peak_rss_mb']:.0f} MB.", ""]
        lines += _table(["page", "first render s", "warm render s", "errors"],
                        [[p["title"], p["first_seconds"], p["warm_seconds"], "; ".join(p["errors"]) or "none"]
                         for p in d["pages"]])
        if d["app_start_seconds"] >= PAGE_GOAL_S:
            lines += [DASHBOARD_FINDING, ""]
    else:
        lines += [f"Not measured: {(d or {}).get('not_measured') or (d or {}).get('error', 'part not run')}.", ""]

    b = results.get("browser")
    lines += ["## 6. Page speed in a real browser (Debian's Chromium, Playwright, `streamlit run`)", ""]
    if b and "views" in b:
        lines += [f"The server (`streamlit run` on the snapshot database) started in {b['server_start_seconds']:.1f} s. "
                  "Each view is opened by its shared link in a new tab (a new Streamlit session) and timed from "
                  "navigation to the page's last change a reader can see, once it is drawn: Streamlit's run state "
                  "says the run's last message has arrived, no spinner is left, every plotly chart has drawn (maps "
                  "with their areas) and nothing on the page has changed for 2.5 s (scripts/screenshots.py "
                  "SINCE_DRAWN). The same visits are also timed to their last change of any kind (\"any change\" "
                  "columns): that includes a data grid's accessibility table, written into its canvas as fallback "
                  "content (never drawn) about 0.3 s after the grid is drawn. "
                  "First: the view's first visit after the start (the first row's includes reading the saved "
                  f"analysis); warm: {b['visits']} later visits. Server CPU: the server process's CPU time per warm "
                  f"render. Load average after: {b['load_average_after']}.", ""]
        floor = b.get("floor")
        def row(name, v):  # runs before the "any change" figures were recorded have none
            return [name, v["first_seconds"], v["warm_p50"], v["warm_p95"], v.get("first_any_seconds", "–"),
                    v.get("warm_any_p95", "–"), v["server_cpu_per_warm_render"]]
        lines += _table(["view", "first s", "warm p50 s", "warm p95 s", "first s, any change",
                         "warm p95 s, any change", "server CPU s a render"],
                        [row(v["view"], v) for v in b["views"]] + ([row(FLOOR_VIEW, floor)] if floor else []))
        if floor:
            lines += [f"The last row is the floor: `bench/floor_app.py`, a page with a title and one small chart and "
                      "no data, served and timed the same way on its own server. What any Streamlit page costs in "
                      "this browser on this machine; a view's time above it is the tracker's own.", ""]
        lines += ["Concurrent visitors: N tabs, each in its own browser context, open the Place page of N different "
                  "ICBs at once (one Chromium on the same two cores as the server, so this overstates the server's "
                  "share).", ""]
        lines += _table(["visitors", "median s", "slowest s", "x one visitor", "server CPU s"],
                        [[c["visitors"], c["median_seconds"], c["slowest_seconds"], c["ratio_to_one"],
                          c["server_cpu_seconds"]] for c in b["concurrent"]]
                        + [[f"{c['visitors']} ({FLOOR_VIEW})", c["median_seconds"], c["slowest_seconds"],
                            c["ratio_to_one"], c["server_cpu_seconds"]] for c in (floor or {}).get("concurrent", [])])
        light = b.get("lightweight") or {}
        if light.get("concurrent"):
            lines += ["The same with lightweight clients (`bench/visitors.py`): each visitor is a websocket client "
                      "speaking Streamlit's own protocol, timed from connecting to the server having sent the whole "
                      "page, so this is the server's share alone. Each opens the Place page of an ICB nobody has "
                      "opened yet on that server; one visitor is the median of three visits one after another. With "
                      "two dashboard processes, visitors go to each in turn, as behind a load balancer. Each process "
                      f"draws {light['render_slots']} page(s) at once (`TRACKER_RENDER_SLOTS`).", ""]
            lines += _table(["processes", "visitors", "median s", "slowest s", "x one visitor", "server CPU s"],
                            [[c["servers"], c["visitors"], c["median_seconds"], c["slowest_seconds"],
                              c["ratio_to_one"], c["server_cpu_seconds"]] for c in light["concurrent"]])
        elif light:
            lines += [f"Lightweight visitors not measured: {light.get('error')}.", ""]
        if "server_memory_mb" in b:
            views, end = b["server_memory_after_views_mb"], b["server_memory_mb"]
            lines += [f"The server process's resident memory: {views['now']} MB after the views (peak {views['peak']} MB), "
                      f"{end['now']} MB after the concurrent visitors (peak {end['peak']} MB).", ""]
    else:
        lines += [f"Not measured: {(b or {}).get('not_measured') or (b or {}).get('error', 'part not run')}.", ""]

    f = results.get("fresh")
    lines += ["## 7. A fresh clone to the first chart", ""]
    if f and "seconds" in f:
        lines += [f"`git clone` of HEAD, then `make run` with an empty pip cache (every package from the index), until "
                  f"Chromium shows the Overview's first chart: **{f['seconds']:.0f} s** "
                  f"(load average after {f['load_average_after']}).", ""]
        lines += _table(["stage", "seconds"], [[k, v] for k, v in f["stages"].items()])
    else:
        lines += [f"Not measured: {(f or {}).get('error', 'part not run')[-300:]}.", ""]

    lines += ["## Profiles and findings", ""]
    if not results["profiles"]:
        lines += ["No profile taken (every goal met, or --no-profiles).", ""]
    for p in results["profiles"]:
        lines += [f"### {p['name']}", "", f"Why: {p['why']}.", ""]
        if "error" in p:
            lines += [f"Profiling failed: {p['error'][-300:]}", ""]
            continue
        for prof in ([p["first"]] if "first" in p else []) + [p]:
            lines += [f"Profile `profiles/{Path(prof['profile']).name}` (beside this file) "
                      f"({prof['seconds']:.1f} s sampled). Functions with the most self time:", ""]
            lines += _table(["function", "self s", "share"],
                            [[h["where"], h["self_seconds"], f"{h['share'] * 100:.0f}%" if h["share"] else "–"]
                             for h in prof["hot_spots"]])
        if FINDINGS.get(p["kind"]):
            lines += [FINDINGS[p["kind"]], ""]
    lines += ["### Changes made after the previous run's profiles", "",
              "Applied after the 2026-11-28 02:47 run (whose profiles showed where the time went) and, dated, in "
              "this round; effects as "
              "measured during development on this machine, in quick runs outside the benchmark.", ""]
    lines += _table(["where", "change", "measured effect"], [list(x) for x in APPLIED])
    lines += ["## Reproducing", "",
              "`make bench` (installs the `bench` extra: sqlite-utils, pyinstrument; then `python -m bench.run`). "
              "`python -m bench.run --help` lists the options (parts, scale, work folder, output). Work files "
              "(databases, payloads, the raw-results JSON `results.json`) go to bench/work/, which git ignores.", ""]
    return "\n".join(lines)


def _when(results: dict) -> list[str]:
    runs = results.get("part_runs")
    if not runs:
        return [f"Latest full run of `make bench` (`python -m bench.run`): {results['started']} to "
                f"{results['finished']} ({results['wall_seconds']:.0f} s in all). Parts: {', '.join(results['parts'])}.",
                ""]
    machines = results.get("part_machines") or {}
    lines = ["Measured in more than one run of `make bench` (`python -m bench.run --merge` keeps the parts it does not "
             "measure); each part's run and the machine it ran on:", "",
             *_table(["part", "started", "finished", "machine"],
                     [[p, *runs[p], machines.get(p, "not recorded")] for p in results["parts"]])]
    if len(set(machines.values())) > 1:
        lines += ["**The parts ran on different machines**: compare a figure with its own part's yardsticks (the "
                  "physical reference, the minimal page), not with another part's. The Machine table below is the "
                  "latest run's.", ""]
    return lines


def _timing(results: dict) -> list[str]:
    """How long each part took, its CPU time, and what the run would take on an idle two-core machine (CPU time
    divided by the contenders running at once), since this machine's wall time depends on its other tenants."""
    timing = results.get("timing")
    if not timing:
        return []
    idle = sum(t["cpu_seconds"] / t["parallel"] for t in timing.values())
    rows = [[part, t["wall_seconds"], t["cpu_seconds"], t["parallel"]] for part, t in timing.items()]
    rows.append(["all", round(sum(t["wall_seconds"] for t in timing.values()), 1),
                 round(sum(t["cpu_seconds"] for t in timing.values()), 1), "–"])
    return [*_table(["part", "wall s", "CPU s (all processes)", "run at once"], rows),
            f"Estimated time on an idle two-core machine (CPU time / contenders at once): about {idle / 60:.1f} "
            "minutes. The wall time above is longer by however much the machine's other work took.", ""]


def _raw_sql() -> str:
    from bench.query import RAW_SQL

    return RAW_SQL
