"""Bad data never lands, good data is never lost (issue 16): payload faults served from 127.0.0.1 through the
configurable base URL, as in tests/test_refresh_faults.py, whose fixtures these tests share (a database holding the
bundled Fingertips data, Fingertips served live from the real bundled extract for indicator 93861, and the crime
severity source beside it). Each fault is built at run time from the real extract; none is a recording."""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
import threading
import time

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Response

from db.models import Observation, Run
from tests.test_refresh_faults import (  # noqa: F401 - fixtures
    CRIME_IDS, DATA, FINGERTIPS_IDS, REAL_CSV, cli, client, crime_url, engine, fast_http, good_data, observations,
    prepared_db, run_of, two_sources,
)

PM25 = "air-pollution-attributable-mortality"  # Fingertips 93861, a percentage (limits 0 to 100)
HARTLEPOOL = "E06000001"


def edited(rows_where, change) -> bytes:
    """The real extract with `change(row)` applied to the rows (dicts) for which `rows_where(row)` holds."""
    reader = csv.DictReader(io.StringIO(REAL_CSV.decode("utf-8-sig")))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in reader:
        if rows_where(row):
            change(row)
            if row.get("_drop"):
                continue
        writer.writerow({k: v for k, v in row.items() if k != "_drop"})
    return out.getvalue().encode("utf-8")


def hartlepool_2019(row) -> bool:
    return row["Area Code"] == HARTLEPOOL and row["Time period"] == "2019" and row["Category Type"] == ""


def serve(httpserver, body: bytes, **headers) -> None:
    httpserver.expect_request(DATA).respond_with_handler(lambda r: Response(body, mimetype="text/csv", headers=headers))


def stored(engine, area=HARTLEPOOL, period="2019"):
    t = Observation.__table__
    with engine.connect() as conn:
        return conn.execute(select(t.c.value).where(t.c.indicator_id == PM25, t.c.area_code == area,
                                                     t.c.period == period, t.c.category_type == "")).scalars().all()


def problems_of(engine, run_id) -> dict:
    with engine.connect() as conn:
        return conn.execute(select(Run.problems).where(Run.id == run_id)).scalar()


def refresh_fingertips(engine, http=None, **options):
    from tracker.refresh import refresh

    (result,) = refresh(engine, ["fingertips"], http=http or client(retries=1), **options)
    return result


# ---- item 1: garbage numbers; item 2: the rejected key keeps its stored value ----------------------------------

@pytest.mark.parametrize("cell, reason", [
    ("1e309", "non-finite value (infinity or overflow)"),
    ("inf", "non-finite value (infinity or overflow)"),
    ("-Infinity", "non-finite value (infinity or overflow)"),
    ("NaN", "non-finite value (NaN)"),
    ("12,5", "ambiguous separator in value (a comma that is not a thousands separator)"),
    ("1,2,3", "ambiguous separator in value (a comma that is not a thousands separator)"),
    ("250", "proportion above its plausible limit 100 (%)"),
    ("-4", "proportion below its plausible limit 0 (%)"),
])
def test_a_garbage_value_is_rejected_with_its_reason_and_the_stored_value_kept(cell, reason, engine, httpserver, two_sources):
    before = stored(engine)
    assert len(before) == 1 and 0 < before[0] < 100
    serve(httpserver, edited(hartlepool_2019, lambda row: row.update(Value=cell)))

    result = refresh_fingertips(engine)

    assert result.status == "succeeded", result.error
    assert result.rows_kept == 1 and result.rows_removed == 0
    assert stored(engine) == before  # the good value stays; nothing becomes inf, 125 or empty
    problems = problems_of(engine, result.run_id)
    shown = HARTLEPOOL if "limit" in reason else f"{HARTLEPOOL} ({cell})"  # the odd cell is shown where it is not a number
    assert problems["rejected"][reason] == {"count": 1, "examples": [f"{PM25} {shown} 2019"]}
    assert problems["kept"]["count"] == 1


def test_a_thousands_separator_is_still_read(engine, httpserver, two_sources):
    serve(httpserver, edited(hartlepool_2019, lambda row: row.update(Value="1,234.5", **{"Lower CI 95.0 limit": ""})))
    result = refresh_fingertips(engine)
    # read as 1234.5, which is then over the 100 limit of a percentage: rejected for that, not for its comma
    assert "proportion above its plausible limit 100 (%)" in problems_of(engine, result.run_id)["rejected"]


def test_catalog_limits_default_from_the_unit_and_can_be_given(tmp_path):
    from tracker.catalog import CatalogError, load_catalog

    specs = {s.id: s for s in load_catalog()}
    assert specs["life-expectancy"].limits == (0.0, 120.0)
    assert specs[PM25].limits == (0.0, 100.0)
    shares = [s for s in specs.values() if s.unit == "proportion of LSOAs (0 to 1)"]
    assert shares and all(s.limits == (0.0, 1.0) for s in shares)
    rates = [s for s in specs.values() if s.value_type == "rate" and not s.options.get("allow_negative")]
    assert rates and all(s.limits == (0.0, None) for s in rates)

    entry = ("indicators:\n- {id: x, title: X, domain: housing, unit: '%', value_type: proportion, polarity: no_judgement,"
             " department: department-of-health-and-social-care, producer: P, rationale: R, definition: D, licence: OGL,"
             " source: fingertips, source_id: '1', limits: LIMITS}\n")
    (tmp_path / "a.yaml").write_text(entry.replace("LIMITS", "[5, 50]"))
    assert load_catalog(tmp_path)[0].limits == (5.0, 50.0)
    (tmp_path / "a.yaml").write_text(entry.replace("LIMITS", "[50, 5]"))
    with pytest.raises(CatalogError, match="a.yaml: indicator x: limits"):
        load_catalog(tmp_path)


# ---- item 4 (loader side) and item 10: labels, on SQLite and on the real PostgreSQL server ----------------------

@pytest.fixture
def live_fingertips(monkeypatch, httpserver):
    from pipelines.fingertips import FingertipsSource
    from tests.test_refresh_faults import META, METADATA

    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setattr("pipelines.registry.all_sources", lambda: {"fingertips": FingertipsSource()})
    httpserver.expect_request(META).respond_with_data(METADATA, content_type="text/csv")


LONG = "Deprivation deciles " + "x" * 130


def test_odd_labels_are_rejected_the_same_on_sqlite_and_postgresql(any_engine, httpserver, live_fingertips):
    from tracker.store import initialise

    initialise(any_engine)

    def plant(row):
        if row["Time period"] == "2018":
            row["Sex"] = '<img src=x onerror="alert(1)">'
        elif row["Time period"] == "2019":
            row["Category Type"] = LONG
        else:
            row["Sex"] = "Persons and everyone else too"  # longer than the 20 characters the column holds

    serve(httpserver, edited(lambda row: row["Area Code"] == HARTLEPOOL and row["Category Type"] == "", plant))
    result = refresh_fingertips(any_engine)

    assert result.status == "succeeded", result.error  # not StringDataRightTruncation on PostgreSQL
    problems = problems_of(any_engine, result.run_id)["rejected"]
    assert problems["unknown sex (valid: Persons, Male, Female)"]["count"] == 2
    assert problems["category_type longer than 120 characters"]["count"] == 1
    t = Observation.__table__
    with any_engine.connect() as conn:
        sexes = set(conn.execute(select(t.c.sex).distinct()).scalars())
        hartlepool = conn.execute(select(t.c.period).where(t.c.area_code == HARTLEPOOL, t.c.category_type == "")).all()
    assert sexes == {"Persons"} and hartlepool == []


def test_markup_and_formulas_in_labels_are_rejected():
    import pandas as pd

    from pipelines.base import tidy
    from pipelines.validate import Problems, check_labels

    frame = tidy(pd.DataFrame({"indicator_id": "i", "area_code": ["E06000001", "E06000002", "E06000003", "E06000004"],
                               "period": "2024", "value": "1",
                               "category": ["Most deprived decile", '=HYPERLINK("http://x","y")', "[a](http://x)",
                                            "<b>bold</b>"]}))
    for col in ("sex", "age", "category_type", "category"):
        frame[col] = frame[col].fillna("").astype(str)
    problems = Problems()
    out = check_labels(frame, problems)
    assert out["category"].tolist() == ["Most deprived decile"]
    assert problems.rejected["category is markup or a formula, not a label"]["count"] == 3


# ---- items 2 and 3: the delete rule and the shrink guard ---------------------------------------------------------

def england_only(row) -> bool:
    return row["Area Code"] != "E92000001"


def drop(row) -> None:
    row["_drop"] = True


def test_a_reply_holding_only_england_is_refused_and_keeps_the_data(engine, httpserver, two_sources):
    before = observations(engine, FINGERTIPS_IDS)
    serve(httpserver, edited(england_only, drop))

    result = refresh_fingertips(engine)

    assert result.status == "failed" and result.rows_changed == 0 and result.rows_removed == 0
    assert "refused: the new data would remove" in result.error and "more than the 10% allowed)" in result.error
    assert "would lose every row of an area type" in result.error and "--allow-shrink" in result.error
    assert observations(engine, FINGERTIPS_IDS) == before


def test_losing_one_area_type_is_refused_even_when_the_share_is_small(engine, httpserver, two_sources):
    before = observations(engine, FINGERTIPS_IDS)
    serve(httpserver, edited(lambda row: row["Area Type"] == "Region", drop))
    result = refresh_fingertips(engine)
    assert result.status == "failed"
    assert f"would lose every row of an area type ({PM25} region)" in result.error
    assert "would remove" not in result.error  # a few dozen rows: well under the 10%
    assert observations(engine, FINGERTIPS_IDS) == before


def test_allow_shrink_lets_it_through_and_the_summary_reports_rows_removed(engine, httpserver, two_sources, fast_http, capsys):
    t = Observation.__table__
    with engine.connect() as conn:
        outside_england = conn.execute(select(t.c.area_code).where(
            t.c.indicator_id == PM25, t.c.area_code != "E92000001")).all()
    serve(httpserver, edited(england_only, drop))
    code, results, _ = cli(capsys, "refresh", "--source", "fingertips", "--log-format", "json", "--allow-shrink")
    (result,) = [r for r in results if r["source"] == "fingertips"]
    assert code == 0 and result["status"] == "succeeded"
    with engine.connect() as conn:
        areas = set(conn.execute(select(Observation.area_code).where(Observation.indicator_id == PM25)).scalars())
    assert areas == {"E92000001"}
    assert result["removed"] == len(outside_england) > 900 and result["changed"] >= result["removed"]


def test_the_shrink_limit_is_a_setting(engine, httpserver, two_sources, monkeypatch):
    # about a fifth of the districts gone (no whole area type): over the default 10%, under a 50% limit
    fifth = edited(lambda row: row["Area Type"] == "District" and row["Area Code"] < "E07000100", drop)
    serve(httpserver, fifth)
    assert refresh_fingertips(engine).status == "failed"
    monkeypatch.setenv("TRACKER_SHRINK_LIMIT", "50")
    result = refresh_fingertips(engine)
    assert result.status == "succeeded", result.error
    assert result.rows_removed > 0


# ---- item 12: a failed source reports nothing changed; the lock is checked before anything is written -------------

def test_a_failed_load_reports_no_rows_changed(engine, httpserver, two_sources, fast_http, capsys):
    serve(httpserver, edited(england_only, drop))
    code, results, _ = cli(capsys, "refresh", "--source", "fingertips", "--log-format", "json")
    (result,) = results
    assert code == 1 and result["status"] == "failed"
    assert (result["changed"], result["loaded"], result["removed"]) == (0, 0, 0)


def test_a_second_refresh_checks_the_lock_before_writing(tmp_path, monkeypatch, capsys):
    from filelock import FileLock

    from tracker.config import paths

    database = tmp_path / "new.sqlite"
    monkeypatch.setenv("TRACKER_DATABASE_URL", f"sqlite:///{database}")
    with FileLock(str(paths().lock_file)):
        started = time.perf_counter()
        code, results, err = cli(capsys, "refresh", "--offline")
        took = time.perf_counter() - started
    assert code == 3 and "another refresh is running" in err
    assert not database.exists()  # nothing initialised behind the running refresh's back
    assert took < 3


# ---- item 5: bounded fetches; item 9: one-line messages; issue 12 item 7: failures told apart ----------------------

def test_a_compression_bomb_stops_at_the_size_cap(engine, httpserver, two_sources, monkeypatch):
    monkeypatch.setenv("TRACKER_HTTP_MAX_MB", "2")
    bomb = gzip.compress(b"0" * (40 * 1024 * 1024))  # 40 MB of zeros in about 40 KB
    serve(httpserver, bomb, **{"Content-Encoding": "gzip"})
    before = observations(engine, FINGERTIPS_IDS)
    result = refresh_fingertips(engine, client(retries=0))
    assert result.status == "failed"
    assert "passed the 2 MB cap after decompression (TRACKER_HTTP_MAX_MB)" in result.error
    assert observations(engine, FINGERTIPS_IDS) == before


def test_nested_gzip_stops_at_the_size_cap(engine, httpserver, two_sources, monkeypatch):
    monkeypatch.setenv("TRACKER_HTTP_MAX_MB", "2")
    nested = gzip.compress(gzip.compress(b"0" * (40 * 1024 * 1024)))  # gzip inside the gzip transfer encoding
    serve(httpserver, nested, **{"Content-Encoding": "gzip"})
    result = refresh_fingertips(engine, client(retries=0))
    assert result.status == "failed" and "unpacks to more than the 2 MB cap (TRACKER_HTTP_MAX_MB)" in result.error


@pytest.fixture
def drip_url():
    """A server that sends its headers, then one byte every 0.2 s for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve_one(conn):
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 100000000\r\n\r\n")
            while not stop.is_set():
                conn.sendall(b"x")
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            conn.close()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    listener.close()


def test_a_dripping_server_stops_at_the_source_deadline(engine, two_sources, drip_url, monkeypatch):
    monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", drip_url)
    monkeypatch.setenv("TRACKER_SOURCE_DEADLINE", "2")
    started = time.perf_counter()
    result = refresh_fingertips(engine, client(timeout=1, retries=1))
    took = time.perf_counter() - started
    assert result.status == "failed" and "passed their 2 s deadline (TRACKER_SOURCE_DEADLINE)" in result.error
    assert took < 8  # the drip would otherwise hold the refresh (and its lock) for ever


def test_a_redirect_loop_is_one_line(engine, httpserver, two_sources):
    httpserver.expect_request(DATA).respond_with_data("", status=302, headers={"Location": httpserver.url_for(DATA)})
    result = refresh_fingertips(engine)
    assert result.status == "failed"
    assert result.error == (f"fingertips: {httpserver.url_for(DATA)} redirects in a loop (more than 10 redirects); "
                            "the address may have moved: check the base URL setting")


def test_a_wrong_encoding_is_one_line(engine, httpserver, two_sources):
    latin1 = REAL_CSV.decode("utf-8-sig").replace("Hartlepool", "Hartlepool £").encode("latin-1")
    serve(httpserver, latin1)
    result = refresh_fingertips(engine)
    assert result.status == "failed"
    assert "is not UTF-8 text (byte 0xa3 at position" in result.error and "\n" not in result.error
    assert result.error.startswith(f"{httpserver.url_for(DATA)}?")


def test_dns_failure_refused_connection_and_tls_error_are_told_apart(engine, two_sources, httpserver, monkeypatch, caplog):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()  # nothing listens there now: connections are refused
    cases = {
        "http://no-such-host.invalid/": "fingertips: cannot resolve no-such-host.invalid: no network, or no DNS?",
        f"http://127.0.0.1:{closed_port}/": f"fingertips: 127.0.0.1:{closed_port} refused the connection",
        httpserver.url_for("/").replace("http://", "https://"): "fingertips: TLS failed with localhost",
    }
    for base, phrase in cases.items():
        monkeypatch.setenv("TRACKER_FINGERTIPS_BASE_URL", base)
        caplog.clear()
        result = refresh_fingertips(engine, client(retries=2))
        assert result.status == "failed" and result.error.startswith(phrase), result.error
        # urllib3's "Retrying (...)" warnings are folded into one line for the summary, not printed
        assert not [r for r in caplog.records if r.getMessage().startswith("Retrying")]
        assert result.note and result.note.startswith("retried 2 times ("), result.note


def test_retries_are_summed_up_in_one_line_of_the_text_summary(engine, httpserver, two_sources, fast_http, capsys):
    from tracker.cli import main

    httpserver.expect_oneshot_request(DATA).respond_with_data("busy", status=503)
    httpserver.expect_request(DATA).respond_with_handler(good_data)
    with pytest.raises(SystemExit) as done:
        main(["refresh", "--source", "fingertips"])
    out, err = capsys.readouterr()
    assert done.value.code == 0
    assert "fingertips: retried 1 time (1 × HTTP 503)" in out.splitlines()
    assert "Retrying" not in out + err


def test_nomis_page_cap_and_a_bad_record_count(engine, httpserver, monkeypatch):
    from pipelines.nomis import NomisSource
    from tracker.refresh import refresh

    monkeypatch.setenv("TRACKER_NOMIS_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setattr("pipelines.registry.all_sources", lambda: {"nomis": NomisSource()})
    header = "DATE,DATE_NAME,GEOGRAPHY_CODE,MEASURES,OBS_VALUE,OBS_STATUS,OBS_STATUS_NAME,RECORD_OFFSET,RECORD_COUNT"

    def page(request):  # constructed: one row a page, and a RECORD_COUNT that never ends
        offset = int(request.args.get("recordOffset", 0))
        return Response(f"{header}\n2024-12,Jan 2024-Dec 2024,E06000001,20599,70.1,A,Normal Value,{offset},1000000\n",
                        mimetype="text/csv")

    httpserver.expect_request("/dataset/NM_17_5.data.csv").respond_with_handler(page)
    httpserver.expect_request("/dataset/NM_162_1.data.csv").respond_with_handler(page)
    monkeypatch.setenv("TRACKER_MAX_PAGES", "3")
    (result,) = refresh(engine, ["nomis"], http=client(retries=0))
    assert result.status == "failed"
    assert "still had more pages after 3 (TRACKER_MAX_PAGES); stopped" in result.error
    assert len(httpserver.log) == 3

    httpserver.clear()
    bad = f"{header}\n2024-12,Jan 2024-Dec 2024,E06000001,20599,70.1,A,Normal Value,0,lots\n"
    httpserver.expect_request("/dataset/NM_17_5.data.csv").respond_with_data(bad, content_type="text/csv")
    httpserver.expect_request("/dataset/NM_162_1.data.csv").respond_with_data(bad, content_type="text/csv")
    (result,) = refresh(engine, ["nomis"], http=client(retries=0))
    assert result.status == "failed" and "RECORD_COUNT is 'lots', not a whole number" in result.error
