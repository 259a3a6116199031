"""The benchmark harness works: run at a tiny SYNTHETIC scale (200 LSOAs x 2 indicators x 2 periods), every
contender loads the same rows (pandas has no repeated load: to_sql has no upsert), the tracker's repeated load
changes nothing, and the results file is written where asked. Not a timing test: no figure is asserted."""

from __future__ import annotations

import json
import sqlite3

from bench.load import CONTENDERS, NO_REPEAT
from bench.report import goals, queue_floor
from bench.run import main
from tracker.catalog import load_catalog

LSOAS, INDICATORS, PERIODS = 200, 2, 2


def test_harness_loads_the_same_rows_with_every_contender(tmp_path):
    work, out = tmp_path / "work", tmp_path / "results" / "RESULTS.md"
    code = main(["--parts", "load", "--lsoas", str(LSOAS), "--indicators", str(INDICATORS), "--periods", str(PERIODS),
                 "--work", str(work), "--out", str(out), "--no-profiles"])
    assert code == 0

    results = json.loads((work / "results.json").read_text())
    synthetic = results["load_synthetic"]
    expected = LSOAS * INDICATORS * PERIODS
    assert synthetic["rows_offered"] == expected
    for phase in ("first", "repeat"):
        measured = [c for c in CONTENDERS if not (phase == "repeat" and c in NO_REPEAT)]
        loaded = {c: synthetic["contenders"][c][phase] for c in measured}
        assert {c: r["rows"] for c, r in loaded.items()} == dict.fromkeys(measured, expected)
        # blanks and the suppression marker are NULL for everyone, and the values are the same numbers
        assert len({(r["values"], round(r["value_sum"], 6)) for r in loaded.values()}) == 1
        assert 0 < loaded["raw"]["values"] < expected
        assert synthetic[f"same_rows_{phase}"] is True
    assert synthetic["contenders"]["tracker"]["first"]["rows_changed"] == expected
    assert synthetic["contenders"]["tracker"]["repeat"]["rows_changed"] == 0
    assert "not_supported" in synthetic["contenders"]["pandas"]["repeat"]  # to_sql has no upsert
    # part 1a needs part 2's database, which this run did not build: said so, not failed
    assert "not_measured" in results["load_real"]

    text = out.read_text(encoding="utf-8")
    assert "## Goals" in text and "SYNTHETIC" in text
    assert all(name in text for name in ("sqlite-utils", "pandas to_sql", "raw sqlite3 executemany"))

    # the synthetic indicators exist only in the benchmark's databases, never in the tracker's catalog
    conn = sqlite3.connect(work / "template.sqlite")
    titles = dict(conn.execute("SELECT id, title FROM indicator WHERE id LIKE 'synthetic-bench-%'").fetchall())
    conn.close()
    assert sorted(titles) == ["synthetic-bench-01", "synthetic-bench-02"]
    assert all(t.startswith("SYNTHETIC benchmark") for t in titles.values())
    assert not [s.id for s in load_catalog() if s.id.startswith("synthetic")]


def test_snapshot_part_reports_its_physical_reference_and_goals(tmp_path):
    """Part 2 on one small real source: the physical reference holds the same number of rows as the tracker loaded,
    the ratio is reported, and both part 2 goals (CPU time, peak memory) are in the goal table."""
    work, out = tmp_path / "work", tmp_path / "RESULTS.md"
    code = main(["--parts", "snapshot", "--snapshot-sources", "ons_crime_severity", "--work", str(work),
                 "--out", str(out), "--no-profiles"])
    assert code == 0
    snap = json.loads((work / "results.json").read_text())["snapshot"]
    assert snap["rows_loaded"] > 0
    assert snap["reference"]["rows"] == snap["rows_loaded"]
    assert snap["cpu_vs_reference"] == round(snap["cpu_seconds"] / snap["reference"]["cpu_seconds"], 2)
    assert snap["load_peak_rss_mb"] <= snap["peak_rss_mb"]
    text = out.read_text(encoding="utf-8")
    assert "**Physical reference**" in text and "minimal integer-keyed table" in text
    assert "<= 8 s of CPU time" in text and "peak memory <= 400 MB" in text


def test_a_merged_run_keeps_the_parts_it_did_not_measure(tmp_path):
    """`--merge`: a second run of one part keeps the first run's other parts, and the report says when each part ran."""
    work, out = tmp_path / "work", tmp_path / "RESULTS.md"
    assert main(["--parts", "snapshot", "--snapshot-sources", "ons_crime_severity", "--work", str(work),
                 "--out", str(out), "--no-profiles"]) == 0
    first = json.loads((work / "results.json").read_text())
    # as if the first run had been on another machine: its part keeps that machine's name
    first["machine"]["cpu"] = "An earlier machine's CPU"
    (work / "results.json").write_text(json.dumps(first))
    assert main(["--parts", "export", "--work", str(work), "--out", str(out), "--no-profiles", "--merge"]) == 0
    both = json.loads((work / "results.json").read_text())
    assert both["parts"] == ["snapshot", "export"]
    assert both["snapshot"] == first["snapshot"] and both["exports"]["icb"]["areas"] > 0
    assert both["part_runs"]["snapshot"] == [first["started"], first["finished"]]
    assert both["part_runs"]["export"][0] > first["finished"] or both["part_runs"]["export"][0] >= first["started"]
    assert both["part_machines"]["snapshot"].startswith("An earlier machine's CPU, ")
    assert both["part_machines"]["export"] == f"{both['machine']['cpu']}, {both['machine']['cores']} cores"
    text = out.read_text(encoding="utf-8")
    assert "Measured in more than one run" in text and "| snapshot | " + first["started"] in text
    assert "The parts ran on different machines" in text


def test_the_visitors_goal_is_read_against_the_queue_floor():
    """Ten CPU-bound renders drawn in turn: the middle visitor waits for 3 renders on two processes (two cores), 5.5
    on one; the goal row says so beside the measured ratio."""
    assert queue_floor(10, 2, 2) == 3 and queue_floor(10, 1, 2) == 5.5
    assert queue_floor(10, 4, 2) == 3  # more processes than cores draw no faster
    rows = [{"servers": 2, "visitors": 1, "median_seconds": 0.104, "server_cpu_seconds": 0.1, "ratio_to_one": 1.0},
            {"servers": 2, "visitors": 10, "median_seconds": 0.33, "server_cpu_seconds": 1.0, "ratio_to_one": 3.17}]
    results = {"machine": {"cores": 2}, "browser": {"views": [], "concurrent": [],
                                                    "lightweight": {"render_slots": 1, "concurrent": rows}}}
    (row,) = [g for g in goals(results) if "lightweight clients, 2 dashboard" in g["goal"]]
    assert not row["met"] and row["measured"] == "3.17x (0.33 s; one visitor 0.10 s; the queue's floor 3x)"
    assert "waits for 3 renders at best" in row["why"]
