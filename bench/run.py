"""`make bench` (python -m bench.run): every benchmark part in one run, then bench/RESULTS.md.

Parts (--parts, default all):
  snapshot   2. offline refresh of the whole bundled snapshot into an empty database (tracker.store.prepare)
  load       1. load throughput of the same tidy observations, four contenders, first and repeated load:
                (a) the real snapshot's rows (from part 2's database), (b) a SYNTHETIC England-wide LSOA scale-up
  query      3. the Place view's data for an ICB on the England-wide database, cold and warm, against raw SQL
  export     4. the pack for one ICB, and a full export of everything
  dashboard  5. each dashboard page's render time under Streamlit's AppTest
  browser    6. page speed as a user sees it: Debian's Chromium on `streamlit run`, first and warm visits (p95), and
                concurrent visitors (Chromium tabs, then lightweight websocket clients: bench/visitors.py)
  fresh      7. a fresh clone to the first chart: git clone, `make run` with a cold package cache, Chromium
Goals that are missed get a pyinstrument profile of the slowest stage (profiles/ beside the results file)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from bench import report
from bench.common import WORK_DIR, ChildFailed, checkpoint, copy_db, machine, run_child
from bench.load import CONTENDERS, NO_REPEAT, REPEAT_METHOD

PARTS = ("snapshot", "load", "query", "export", "dashboard", "browser", "fresh")
EXAMPLE_ICB = "E54000050"  # NHS North East and North Cumbria ICB: the largest pack (14 local authorities)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.parts = set(args.parts)
        self.results: dict = {"scale": {"lsoas": args.lsoas or "all", "indicators": args.indicators,
                                        "periods": args.periods, "queries": args.queries},
                              "parts": sorted(self.parts, key=PARTS.index), "profiles": []}
        self.snapshot_db = self.work / "snapshot.sqlite"
        self.snapshot_warmed = False

    def say(self, message: str) -> None:
        print(message, flush=True)

    def child(self, task: str, data_dir: str = "data", tree_pss: bool = False, **kwargs) -> dict:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        result = run_child(task, self.work / data_dir, timeout=self.args.timeout, tree_pss=tree_pss, **kwargs)
        result["load_average_before"] = round(load, 2) if load is not None else None
        return result

    # -- part 2 ------------------------------------------------------------------------------------------------
    def snapshot(self) -> None:
        self.say("[2] offline refresh of the bundled snapshot (tracker.store.prepare) ...")
        remove_db(self.snapshot_db)
        # tree_pss: with the analysis' forked second process, both processes' memory together
        result = self.child("prepare", "data-snapshot", tree_pss=True, db=str(self.snapshot_db),
                            sources=self.args.snapshot_sources)
        checkpoint(self.snapshot_db)
        try:  # the physical reference: the same rows, raw executemany into a minimal integer-keyed table
            result["reference"] = self.child("reference", "data-snapshot", db=str(self.snapshot_db),
                                             target=str(self.work / "reference.sqlite"))
            report.snapshot_ratios(result)
        except ChildFailed as exc:
            result["reference"] = {"error": str(exc)}
        self.results["snapshot"] = result
        self.say(f"    {result['rows_loaded']:,} rows in {result['seconds']:.1f} s (initialise "
                 f"{result['initialise_seconds']:.1f} s), then the analysis precomputed in "
                 f"{result.get('analysis_seconds', 0):.1f} s; peak {result['peak_rss_mb']:.0f} MB")
        ref = result["reference"]
        if "error" in ref:
            self.say(f"    physical reference FAILED: {ref['error'].splitlines()[-1]}")
        else:
            self.say(f"    physical reference (raw executemany, minimal integer-keyed table): {ref['rows']:,} rows in "
                     f"CPU {ref['cpu_seconds']:.2f} s (wall {ref['seconds']:.2f} s); the tracker takes "
                     f"{result['cpu_vs_reference']:.1f}x its CPU time ({result['wall_vs_reference']:.1f}x by wall); "
                     f"loading peak {result['load_peak_rss_mb']:.0f} MB")
        for s in result["sources"]:
            self.say(f"    {s['source']:<26} {s['status']:<9} {s['seconds']:6.2f} s  {s['rows_loaded']:>8,} rows  "
                     + "  ".join(f"{k} {v:.2f}" for k, v in s["stages"].items()))

    # -- part 1 ------------------------------------------------------------------------------------------------
    def template(self) -> Path:
        from bench.synthetic import make_template, synthetic_specs

        path = self.work / "template.sqlite"
        if not path.exists():
            self.say("    building the empty initialised template database ...")
            make_template(path, synthetic_specs(self.args.indicators))
        return path

    def snapshot_ready(self) -> bool:
        """Part 2's database is there and is the one the results report: built by this run, or kept with --merge."""
        return self.snapshot_db.exists() and ("snapshot" in self.parts or self.args.merge)

    def snapshot_prepared(self) -> bool:
        """snapshot_ready(), with the analysis saved by this code as `tracker prepare` leaves it (a kept database
        may hold the save of older code: the dashboard would compute it in front of the measurement)."""
        if not self.snapshot_ready():
            return False
        if "snapshot" not in self.parts and not self.snapshot_warmed:
            self.child("precompute", db=str(self.snapshot_db))
            self.snapshot_warmed = True
        return True

    def load(self) -> None:
        from bench.synthetic import export_observations, write_synthetic

        template = self.template()
        if self.snapshot_ready():
            from db.engine import make_engine

            engine = make_engine(f"sqlite:///{self.snapshot_db}")
            files, _ids = export_observations(engine, self.work / "real_rows")
            engine.dispose()
            self.results["load_real"] = self.contenders("real", template, files, "catalog", 0)
        else:
            self.results["load_real"] = {"not_measured": "needs part 2's snapshot database (run with --parts "
                                                         "including snapshot)"}
        self.say("[1b] writing the SYNTHETIC England-wide payloads (cached while the scale is unchanged) ...")
        t = time.perf_counter()
        files = write_synthetic(self.work / "synthetic", self.args.lsoas, self.args.indicators, self.args.periods)
        self.say(f"    {len(files)} files in {time.perf_counter() - t:.1f} s")
        self.results["load_synthetic"] = self.contenders("synthetic", template, files, "synthetic",
                                                         self.args.indicators, keep="tracker")
        per_lsoa = self.args.indicators * self.args.periods
        self.results["scale"]["lsoas"] = self.results["load_synthetic"]["rows_offered"] // per_lsoa

    def contenders(self, label: str, template: Path, files: list[Path], spec_kind: str, n: int,
                   keep: str | None = None) -> dict:
        rows_in = sum(max(0, sum(1 for _ in f.open()) - 1) for f in files)
        self.say(f"[1{'a' if label == 'real' else 'b'}] loading {rows_in:,} {label} rows ({len(files)} payloads), "
                 "four contenders ...")
        out = {"rows_offered": rows_in, "payloads": len(files), "contenders": {c: {} for c in CONTENDERS},
               "repeat_methods": REPEAT_METHOD, "jobs": self.args.jobs}
        dbs = {c: copy_db(template, self.work / f"load-{label}-{c}.sqlite") for c in CONTENDERS}

        def chain(c: str) -> None:  # first load, then the repeated load into the same database
            for phase in ("first", "repeat"):
                if phase == "repeat" and c in NO_REPEAT:
                    out["contenders"][c][phase] = {"not_supported": REPEAT_METHOD[c]}
                    continue
                try:
                    r = self.child("load", contender=c, db=str(dbs[c]), files=[str(f) for f in files],
                                   spec_kind=spec_kind, n_indicators=n, repeat=phase == "repeat")
                except ChildFailed as exc:
                    r = {"error": str(exc)}
                out["contenders"][c][phase] = r
                if "error" in r:
                    self.say(f"    {c:<12} {phase:<6} FAILED: {r['error'].splitlines()[-1]}")
                    return
                self.say(f"    {c:<12} {phase:<6} {r['rows']:>10,} rows  {r['seconds']:8.2f} s  CPU "
                         f"{r['cpu_seconds']:8.2f} s  {r['rows'] / r['seconds']:>9,.0f} rows/s  peak "
                         f"{r['peak_rss_mb']:.0f} MB")

        # longest first, so that with two at a time the two cores finish together
        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            list(pool.map(chain, ("tracker", "sqlite_utils", "raw", "pandas")))
        for c, path in dbs.items():
            if c != keep:
                remove_db(path)
        if keep:
            out["kept_db"] = str(dbs[keep])
        report.load_ratios(out)
        for c, phases in out["contenders"].items():
            for phase, r in phases.items():
                if "cpu_speed_vs_raw" in r:
                    self.say(f"    {c:<12} {phase:<6} speed vs raw executemany {r['cpu_speed_vs_raw']:.2f}x by CPU "
                             f"time ({r['speed_vs_raw']:.2f}x by wall time), vs fastest {r['cpu_speed_vs_fastest']:.2f}x")
        return out

    # -- part 3 ------------------------------------------------------------------------------------------------
    def query(self) -> None:
        from bench.query import build_query_db

        loaded = self.results.get("load_synthetic", {}).get("kept_db")
        if not loaded or not Path(loaded).exists():
            self.results["query"] = {"not_measured": "needs part 1's England-wide database (run with --parts "
                                                     "including load)"}
            return
        try:
            import tracker.analysis.place  # noqa: F401
        except ImportError as exc:
            self.results["query"] = {"not_measured": f"tracker.analysis missing ({exc})"}
            return
        self.say("[3] building the England-wide query database (SYNTHETIC LSOA rows + the real snapshot) ...")
        target = self.work / "england.sqlite"
        snapshot = self.snapshot_db if self.snapshot_ready() else None
        built = build_query_db(Path(loaded), snapshot, target)
        self.say(f"    {built['rows']:,} rows ({built['synthetic_rows']:,} synthetic, {built['real_rows']:,} real)")
        try:
            result = self.child("query", db=str(target), queries=self.args.queries)
        except ChildFailed as exc:
            self.results["query"] = {"database": built, "error": str(exc)}
            self.say(f"    FAILED: {exc}")
            return
        result["database"] = built
        self.results["query"] = result
        report.query_ratios(result)
        for cold in result["cold"]:
            self.say(f"    cold (first call after a data change) {cold['seconds']:.2f} s "
                     f"(Store {cold['store_seconds']:.2f} s + profile {cold['first_profile_seconds']:.2f} s)")
        self.say(f"    warm place_profile p50 {result['warm']['p50_ms']:.1f} ms, p95 {result['warm']['p95_ms']:.1f} ms; "
                 f"raw SQL p50 {result['raw']['p50_ms']:.1f} ms, p95 {result['raw']['p95_ms']:.1f} ms; "
                 f"warm/raw p95 {result['warm_vs_raw_p95']:.2f}x; peak {result['peak_rss_mb']:.0f} MB")

    # -- part 4 ------------------------------------------------------------------------------------------------
    def export(self) -> None:
        try:
            import tracker.exports  # noqa: F401
        except ImportError as exc:
            self.results["exports"] = {"not_measured": f"tracker.exports missing ({exc})"}
            return
        db = self.work / "england.sqlite"
        label = "England-wide database (SYNTHETIC LSOA rows + real snapshot)"
        if not db.exists() or not ((self.results.get("query") or {}).get("database") or {}).get("real_rows"):
            db, label = self.snapshot_db, "snapshot database"
        if not db.exists():
            self.results["exports"] = {"not_measured": "needs a prepared database (run with --parts including "
                                                       "snapshot or load)"}
            return
        self.say(f"[4] exports on the {label} ...")
        out: dict = {"database": label}
        try:  # as `tracker refresh` leaves it: the analysis of the current data precomputed and saved
            out["precompute"] = self.child("precompute", db=str(db))
            self.say(f"    analysis precomputed (as after a refresh) in {out['precompute']['seconds']:.1f} s")
        except ChildFailed as exc:
            out["precompute"] = {"error": str(exc)}
            self.say(f"    precompute FAILED: {exc}")
        for what in ("icb", "full"):
            try:
                out[what] = self.child("export", db=str(db), what=what, icb=EXAMPLE_ICB,
                                       out=str(self.work / f"export-{what}.csv"))
            except ChildFailed as exc:
                out[what] = {"error": str(exc)}
                self.say(f"    {what} FAILED: {exc}")
            if out[what].get("rows") == 0:  # an empty pack measures nothing worth reporting
                out[what] = {"error": f"the {label} holds no rows to export"}
                self.say(f"    {what}: no rows to export in the {label}")
        self.results["exports"] = out
        icb, full = out["icb"], out["full"]
        if "error" not in icb:
            self.say(f"    ICB pack {EXAMPLE_ICB}: {icb['rows']:,} rows, cold {icb['cold_seconds']:.2f} s, warm p50 "
                     f"{icb['warm_p50_seconds']:.2f} s (max {icb['warm_max_seconds']:.2f} s)")
        if "error" not in full:
            self.say(f"    full export: {full['rows']:,} rows, {full['areas']} areas in {full['seconds']:.1f} s "
                     f"({full['rows_per_second']:,} rows/s), peak {full['peak_rss_mb']:.0f} MB")

    # -- part 5 ------------------------------------------------------------------------------------------------
    def dashboard(self) -> None:
        try:
            from bench.dashboard import pages

            listed = pages()
        except ImportError as exc:
            self.results["dashboard"] = {"not_measured": f"tracker.app missing ({exc})"}
            return
        if not self.snapshot_prepared():
            self.results["dashboard"] = {"not_measured": "needs part 2's snapshot database (--parts snapshot)"}
            return
        self.say("[5] dashboard pages under AppTest, on the snapshot database ...")
        env = {"TRACKER_DATABASE_URL": f"sqlite:///{self.snapshot_db}"}
        try:
            out = run_child("dashboard", self.work / "data-dashboard", timeout=self.args.timeout, env=env)
        except ChildFailed as exc:
            self.results["dashboard"] = {"error": str(exc), "titles": [t for _, t in listed]}
            self.say(f"    FAILED: {exc}")
            return
        self.results["dashboard"] = out
        self.say(f"    app start (default page, new process, builds the Store) {out['app_start_seconds']:.2f} s, "
                 f"peak {out['peak_rss_mb']:.0f} MB")
        for p in out["pages"]:
            self.say(f"    {p['title']:<18} first render {p['first_seconds']:.2f} s, warm {p['warm_seconds']:.2f} s"
                     + (f"  page errors: {p['errors']}" if p["errors"] else ""))

    # -- part 6 ------------------------------------------------------------------------------------------------
    def browser(self) -> None:
        if not self.snapshot_prepared():
            self.results["browser"] = {"not_measured": "needs part 2's snapshot database (--parts snapshot)"}
            return
        if not Path("/usr/bin/chromium").exists():
            self.results["browser"] = {"not_measured": "Debian's chromium is not installed (apt-get install chromium)"}
            return
        self.say(f"[6] pages in Chromium on a running server ({self.args.visits} warm visits each), then concurrent "
                 "visitors ...")
        env = {"TRACKER_DATABASE_URL": f"sqlite:///{self.snapshot_db}"}
        try:
            out = run_child("browser", self.work / "data-browser", timeout=self.args.timeout, env=env,
                            visits=self.args.visits)
        except ChildFailed as exc:
            self.results["browser"] = {"error": str(exc)}
            self.say(f"    FAILED: {exc}")
            return
        try:
            out["lightweight"] = run_child("visitors", self.work / "data-browser", timeout=self.args.timeout, env=env)
        except ChildFailed as exc:
            out["lightweight"] = {"error": str(exc)}
            self.say(f"    lightweight visitors FAILED: {exc}")
        self.results["browser"] = out
        for v in out["views"]:
            self.say(f"    {v['view']:<36} first {v['first_seconds']:5.2f} s, warm p50 {v['warm_p50']:5.2f} s, p95 "
                     f"{v['warm_p95']:5.2f} s; server CPU {v['server_cpu_per_warm_render']:.2f} s a render")
        for c in out["concurrent"]:
            self.say(f"    {c['visitors']:>2} visitors at once: median {c['median_seconds']:.2f} s "
                     f"({c['ratio_to_one']}x one visitor), slowest {c['slowest_seconds']:.2f} s, server CPU "
                     f"{c['server_cpu_seconds']:.1f} s")
        for c in out["lightweight"].get("concurrent", []):
            self.say(f"    {c['visitors']:>2} lightweight visitors at once on {c['servers']} process(es): median "
                     f"{c['median_seconds']:.2f} s ({c['ratio_to_one']}x one visitor), slowest {c['slowest_seconds']:.2f} s")

    # -- part 7 ------------------------------------------------------------------------------------------------
    def fresh(self) -> None:
        self.say("[7] a fresh clone of HEAD to the first chart (make run, cold package cache) ...")
        try:
            out = run_child("fresh", self.work / "data-fresh", timeout=self.args.timeout)
        except ChildFailed as exc:
            out = {"error": str(exc)}
        self.results["fresh"] = out
        if "error" in out:
            self.say(f"    FAILED: {out['error'][-500:]}")
            return
        self.say(f"    {out['seconds']:.0f} s to the first chart: "
                 + ", ".join(f"{k} {v:.0f} s" for k, v in out["stages"].items()))

    # -- profiles of missed goals ----------------------------------------------------------------------------
    def profiles(self) -> None:
        todo = report.profiles_needed(self.results, self.work)
        if self.args.no_profiles:
            return
        for old in (Path(self.args.out).resolve().parent / "profiles").glob("*.txt"):
            if not self.args.merge:
                old.unlink()  # the folder holds this run's profiles only (with --merge, the kept parts' too)
        if not todo:
            return
        self.say("[profiles] pyinstrument on the slowest stage of each missed goal ...")
        template = self.template()
        folder = str(Path(self.args.out).resolve().parent / "profiles")  # beside the results file
        for item in todo:
            db = copy_db(template, self.work / "profile.sqlite") if item["kind"] in ("load", "source") else \
                Path(item.pop("db"))
            try:
                if item["kind"] == "load":
                    files = sorted((self.work / "synthetic").glob("synthetic-bench-*.csv"))[: item.pop("files")]
                    r = self.child("profile", kind="load", db=str(db), name=item["name"], folder=folder,
                                   files=[str(f) for f in files], n_indicators=self.args.indicators)
                    if item.get("repeat"):
                        r = self.child("profile", kind="load", db=str(db), name=item["repeat"], folder=folder,
                                       files=[str(f) for f in files], n_indicators=self.args.indicators) | {
                            "first": r}
                elif item["kind"] == "source":
                    r = self.child("profile", "data-profile", kind="source", db=str(db), name=item["name"],
                                   folder=folder, source=item["source"])
                else:
                    r = self.child("profile", kind=item["kind"], db=str(db), name=item["name"], folder=folder,
                                   area_code=EXAMPLE_ICB)
            except ChildFailed as exc:
                r = {"error": str(exc)}
            r.update(why=item["why"], name=item["name"], kind=item["kind"])
            self.results["profiles"].append(r)
            if "error" in r:
                self.say(f"    {item['name']}: FAILED {r['error'].splitlines()[-1]}")
            for prof in [r.get("first"), r]:
                if prof and "profile" in prof:
                    self.say(f"    {prof['seconds']:.1f} s profiled -> {prof['profile']}")
        remove_db(self.work / "profile.sqlite")

    def run(self) -> dict:
        started = time.perf_counter()
        self.results["started"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.results["machine"] = machine()
        m = self.results["machine"]
        self.say(f"Benchmark on {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; load average "
                 f"{m['load_average_at_start']}; {json.dumps(m['versions'])}")
        self.work.mkdir(parents=True, exist_ok=True)
        remove_db(self.work / "template.sqlite")  # the schema may have changed since the last run
        for data in self.work.glob("data*"):  # a fresh start: no raw-payload archive left from the last run
            shutil.rmtree(data, ignore_errors=True)
        self.results["timing"] = {}
        for part in [p for p in PARTS if p in self.parts] + ["profiles"]:
            wall, cpu = time.perf_counter(), cpu_used()
            getattr(self, part)()
            self.results["timing"][part] = {"wall_seconds": round(time.perf_counter() - wall, 1),
                                            "cpu_seconds": round(cpu_used() - cpu, 1),
                                            "parallel": self.args.jobs if part == "load" else 1}
        # rebuilt on every run: only the SYNTHETIC payloads (a cache) and the small snapshot database stay
        remove_db(self.work / "england.sqlite")
        for leftover in self.work.glob("export-*.csv"):
            leftover.unlink()
        shutil.rmtree(self.work / "real_rows", ignore_errors=True)
        self.results["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.results["wall_seconds"] = round(time.perf_counter() - started, 1)
        return self.results


# what each part writes into the results
PART_RESULTS = {"snapshot": ["snapshot"], "load": ["load_real", "load_synthetic", "scale"], "query": ["query"],
                "export": ["exports"], "dashboard": ["dashboard"], "browser": ["browser"], "fresh": ["fresh"]}


PROFILED_PART = {"load": "load", "source": "snapshot", "query-warm": "query", "export-icb": "export"}  # profile kind


def merged(previous: dict, new: dict) -> dict:
    """`new`'s parts over `previous`' results; each part keeps the time of the run that measured it."""
    out = dict(previous)
    runs = dict(previous.get("part_runs") or {p: [previous["started"], previous["finished"]]
                                              for p in previous["parts"]})
    for part in new["parts"]:
        for key in PART_RESULTS[part]:
            if key in new:
                out[key] = new[key]
        runs[part] = [new["started"], new["finished"]]
    # the machine each part ran on: the fleet changes between runs (a part measured on another machine keeps its own)
    machines = dict(previous.get("part_machines") or {p: machine_name(previous["machine"]) for p in previous["parts"]})
    machines.update({part: machine_name(new["machine"]) for part in new["parts"]})
    out["timing"] = {**previous.get("timing", {}), **new["timing"]}
    out["parts"] = [p for p in PARTS if p in runs]
    out["part_runs"] = {p: runs[p] for p in out["parts"]}
    out["part_machines"] = {p: machines[p] for p in out["parts"]}
    # a re-measured part's old profiles go with its old figures
    out["profiles"] = [p for p in previous.get("profiles", [])
                       if PROFILED_PART.get(p.get("kind")) not in new["parts"]] + new["profiles"]
    out["machine"], out["started"], out["finished"] = new["machine"], min(r[0] for r in runs.values()), new["finished"]
    out["wall_seconds"] = round(sum(t["wall_seconds"] for t in out["timing"].values()), 1)
    return out


def machine_name(m: dict) -> str:
    return f"{m['cpu']}, {m['cores']} cores"


def cpu_used() -> float:
    """CPU seconds used so far by this process and every finished child (the measurements)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def remove_db(path: Path) -> None:
    """A SQLite database with its WAL files (and the analysis folder older versions saved beside it)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(f"{path}-analysis", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--lsoas", type=int, default=None, help="LSOAs in the scale-up (default: all 33,755)")
    parser.add_argument("--indicators", type=int, default=40, help="SYNTHETIC indicators (default 40)")
    parser.add_argument("--periods", type=int, default=4, help="periods per indicator (default 4)")
    parser.add_argument("--queries", type=int, default=200, help="warm queries for part 3 (default 200)")
    parser.add_argument("--visits", type=int, default=20, help="warm visits per view for part 6 (default 20)")
    parser.add_argument("--snapshot-sources", nargs="+", default=None,
                        help="part 2: refresh only these sources (default: tracker.store.prepare, every source)")
    parser.add_argument("--work", default=str(WORK_DIR), help="work folder (default bench/work)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2),
                        help="part 1: contenders loading at the same time (default 2: two cores; ratios use CPU time)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before one measurement is abandoned")
    parser.add_argument("--no-profiles", action="store_true", help="skip profiling missed goals")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the results file from the last run's results.json, measuring nothing")
    parser.add_argument("--merge", action="store_true",
                        help="keep the last run's results of the parts not measured now (the report says when each "
                             "part was measured)")
    args = parser.parse_args(argv)
    raw_results = Path(args.work, "results.json")
    if args.report_only:
        results = json.loads(raw_results.read_text())
    else:
        results = Bench(args).run()
        if args.merge and raw_results.exists():
            results = merged(json.loads(raw_results.read_text()), results)
        raw_results.write_text(json.dumps(results, indent=1, default=str))
    text = report.markdown(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print("\n" + text)
    print(f"wrote {args.out} ({results['wall_seconds']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
