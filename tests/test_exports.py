"""Evidence-pack exports (tracker.exports, `tracker export`) as an ICS analyst opens them: pandas, the csv module,
openpyxl; known values checked against the real source files in the bundled snapshot.

The analysis behind a pack takes tens of seconds to build for a database, so the tests share one private copy of the
snapshot database (module scope, like conftest's snapshot_engine but built once). Before first use that copy is given
synthetic names that a spreadsheet would run as formulas (and "Ynys Môn") on areas outside NHS North East and North
Cumbria ICB, so the ICB's pack stays exactly as loaded from the real data."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date, datetime

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text

from db.engine import make_engine
from tracker import exports
from tests.cli_helpers import run_cli as run
from tracker.cli import main
from tracker.config import GEOGRAPHY_DIR, SNAPSHOT_DIR

NENC, HARTLEPOOL, MID_SUFFOLK = "E54000050", "E06000001", "E07000203"
NORFOLK_WAVENEY, NORFOLK, SUFFOLK = "E54000022", "E10000020", "E10000029"

# The column contract, written out: changing it breaks analysts' spreadsheets, so it must be deliberate.
COLUMNS = [
    "Area code", "Area name", "Area type", "Included as", "ICB code", "ICB name", "Share of area in ICB", "ICB split",
    "Indicator ID", "Indicator", "Domain", "Department (abbreviation)", "Department", "Secondary departments",
    "Producer", "Unit", "Polarity", "Period", "Period start", "Period end", "Sex", "Age", "Value", "Lower 95% CI",
    "Upper 95% CI", "Count", "Denominator", "England value", "Compared with England", "Comparison basis",
    "Position among areas", "ICB value",
    "Similar areas", "Similar areas value", "Similar areas with a figure", "Similar areas method",
    "Compared with similar areas", "Position among similar areas", "Trend",
    "Trend method", "Red-red flag", "Aligned rho: life expectancy", "Aligned rho: healthy life expectancy",
    "Aligned rho: preventable mortality under 75", "Aligned rho: inequality in life expectancy",
    "Department ranking for this area", "Figure method", "Approximate", "CI source", "CI method", "Source URL",
    "Licence", "Loaded on", "Note",
]

# Synthetic names (test only) on real London boroughs: each starts with a character OWASP lists.
INJECTED = {
    "E09000003": '=HYPERLINK("http://example.com/x","Click me")',
    "E09000007": "+SUM(1,2)",
    "E09000010": "-2+3",
    "E09000014": "@SUM(1)",
    "E09000019": "\tTab first",
    "E09000002": "\rCR first",
}
INJECTED_TITLE = ("crime-severity-score", "=1+1 Crime severity")
YNYS_MON = ("E06000046", "Ynys Môn")  # Isle of Wight renamed, for non-ASCII text
FIFTHS = {"Best fifth", "Second-best fifth", "Middle fifth", "Second-worst fifth", "Worst fifth"}


@pytest.fixture(scope="module")
def pack_db(snapshot_db_file, tmp_path_factory):
    target = tmp_path_factory.mktemp("exports") / "pack.sqlite"
    shutil.copy(snapshot_db_file, target)
    url = f"sqlite:///{target}"
    engine = make_engine(url)
    with engine.begin() as conn:
        for code, name in [*INJECTED.items(), YNYS_MON]:
            conn.execute(text("UPDATE area SET name = :n WHERE code = :c"), {"n": name, "c": code})
        conn.execute(text("UPDATE indicator SET title = :t WHERE id = :i"),
                     {"t": INJECTED_TITLE[1], "i": INJECTED_TITLE[0]})
        # the names changed behind the saved analysis' back (no refresh): drop the save, so it is built again
        conn.execute(text("DELETE FROM analysis_part"))
        conn.execute(text("DELETE FROM analysis_save"))
    yield engine, url
    engine.dispose()


@pytest.fixture(scope="module")
def engine(pack_db):
    return pack_db[0]


class Recorder(io.BytesIO):
    """A binary stream that remembers the size of each write."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def write(self, data):
        self.sizes.append(len(data))
        return super().write(data)


@pytest.fixture(scope="module")
def nenc_written(engine):
    stream = Recorder()
    result = exports.write_export(engine, stream, [NENC])
    return stream, result


@pytest.fixture(scope="module")
def nenc_csv(nenc_written):
    return nenc_written[0].getvalue()


@pytest.fixture(scope="module")
def nenc(nenc_csv):
    return pd.read_csv(io.BytesIO(nenc_csv), encoding="utf-8-sig", dtype={"Period": str})


@pytest.fixture(scope="module")
def nenc_xlsx(engine):
    return exports.export_bytes(engine, [NENC], fmt="xlsx")


def row(frame: pd.DataFrame, area: str, indicator: str, sex: str = "Persons") -> pd.Series:
    found = frame[(frame["Area code"] == area) & (frame["Indicator ID"] == indicator) & (frame["Sex"] == sex)]
    assert len(found) == 1, (area, indicator, sex, len(found))
    return found.iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# The writers on small frames


SMALL = (exports.Column("Name", "text", 10, ""), exports.Column("Value", "number", 10, ""),
         exports.Column("Day", "date", 10, ""))
SMALL_ROWS = pd.DataFrame([
    ['=HYPERLINK("http://x","y")', -4.0, date(2024, 3, 31)],
    ["Ynys Môn", 0.0000001, None],
    ['Bournemouth, Christchurch and Poole "BCP"', 5870.0, date(2021, 1, 1)],
    ["-5", float("nan"), None],
    ["\r\nline", 14.308224901516056, None],
])


def test_csv_writer_quotes_text_neutralises_formulas_and_keeps_numbers_plain():
    out = io.BytesIO()
    writer = exports._CsvWriter(out, SMALL)
    writer.write(SMALL_ROWS)
    assert out.getvalue().decode("utf-8") == (
        '\ufeff"Name","Value","Day"\r\n'
        '"\'=HYPERLINK(""http://x"",""y"")",-4,2024-03-31\r\n'
        '"Ynys Môn",0.0000001,\r\n'
        '"Bournemouth, Christchurch and Poole ""BCP""",5870,2021-01-01\r\n'
        '"\'-5",,\r\n'
        '"\'\r\nline",14.308224901516056,\r\n'
    )
    back = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"), newline="")))
    assert back[1] == ["'=HYPERLINK(\"http://x\",\"y\")", "-4", "2024-03-31"]
    assert back[3][0] == 'Bournemouth, Christchurch and Poole "BCP"' and back[5][0] == "'\r\nline"
    frame = pd.read_csv(io.BytesIO(out.getvalue()), encoding="utf-8-sig")
    assert frame["Value"].tolist()[:3] == [-4.0, 1e-7, 5870.0] and frame["Value"].dtype == float


def test_neutralise_only_touches_the_owasp_characters():
    for text_ in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert exports.neutralise(text_) == "'" + text_
    for text_ in ("Hartlepool", " =1", "1-2", "'quoted", "Ynys Môn", ""):
        assert exports.neutralise(text_) == text_


def test_xlsx_writer_writes_strings_never_formulas(tmp_path):
    path = tmp_path / "small.xlsx"
    with path.open("wb") as fh:
        writer = exports._XlsxWriter(fh, SMALL, datetime(2026, 1, 1))
        writer.write(SMALL_ROWS)
        writer.close([("Pack", "test")], pd.DataFrame(columns=["producer", "licence", "id"]))
    ws = openpyxl.load_workbook(path)["Data"]
    cell = ws["A2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == ('=HYPERLINK("http://x","y")', "s", True)
    assert (ws["B2"].value, ws["B2"].data_type) == (-4, "n")
    assert ws["A3"].value == "Ynys Môn" and ws["A3"].quotePrefix is False
    assert ws["A5"].value == "-5" and ws["A5"].data_type == "s" and ws["A5"].quotePrefix
    assert ws["C2"].is_date and ws["C3"].value is None


# ---------------------------------------------------------------------------------------------------------------
# The NHS North East and North Cumbria ICB pack


def test_pack_columns_read_back_the_same_with_pandas_and_csv(nenc_csv, nenc):
    assert nenc_csv.startswith(b"\xef\xbb\xbf")
    assert list(nenc.columns) == COLUMNS
    rows = list(csv.reader(io.StringIO(nenc_csv.decode("utf-8-sig"), newline="")))
    assert rows[0] == COLUMNS
    assert {len(r) for r in rows} == {len(COLUMNS)} and len(rows) == len(nenc) + 1
    for column in ("Value", "England value", "ICB value", "Lower 95% CI", "Count", "Aligned rho: life expectancy"):
        assert nenc[column].dtype == float, column


def test_icb_pack_holds_the_icb_and_every_one_of_its_local_authorities(nenc):
    lookup = pd.read_csv(GEOGRAPHY_DIR / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz", dtype=str)
    las = set(lookup.loc[lookup["ICB24CD"] == NENC, "LAD24CD"])
    assert len(las) == 14  # 12 whole authorities, and Cumberland and Westmorland and Furness in part
    assert set(nenc["Area code"]) == las | {NENC}
    assert (nenc["ICB code"] == NENC).all()
    assert set(nenc.loc[nenc["Area code"] == NENC, "Included as"]) == {"Requested area"}
    assert set(nenc.loc[nenc["Area code"] != NENC, "Included as"]) == {f"Local authority in {NENC}"}
    # rows ordered: the ICB, then its authorities by code
    assert nenc["Area code"].drop_duplicates().tolist() == [NENC, *sorted(las)]


def test_every_indicator_of_a_local_authority_in_its_latest_period(engine, nenc):
    with engine.connect() as conn:
        held = pd.read_sql(text("SELECT indicator_id, sex, period, period_end FROM observation "
                                "WHERE area_code = :a AND category_type = ''"), conn, params={"a": HARTLEPOOL})
    latest = held.sort_values(["period_end", "period"]).drop_duplicates(["indicator_id", "sex"], keep="last")
    expected = set(latest[["indicator_id", "sex", "period"]].itertuples(index=False, name=None))
    mine = nenc[nenc["Area code"] == HARTLEPOOL]
    assert set(mine[["Indicator ID", "Sex", "Period"]].itertuples(index=False, name=None)) == expected
    assert len(expected) > 100


def test_hartlepool_fuel_poverty_equals_the_desnz_file(nenc):
    desnz = pd.read_csv(SNAPSHOT_DIR / "fuel_poverty" / "desnz_sub_regional_fuel_poverty_2021_la.csv").set_index("area_code")
    got = row(nenc, HARTLEPOOL, "fuel-poverty-lilee")
    assert got["Value"] == desnz.at[HARTLEPOOL, "fuel_poor_pct"]  # 14.308224901516056: full precision
    assert (got["Count"], got["Denominator"]) == (desnz.at[HARTLEPOOL, "fuel_poor_households"], desnz.at[HARTLEPOOL, "households"])
    assert got["England value"] == desnz.at["E92000001", "fuel_poor_pct"]
    # a modelled estimate (ci_method none): no interval from its counts, no significance word, its position only
    assert pd.isna(got["Lower 95% CI"]) and pd.isna(got["Upper 95% CI"]) and got["CI source"] == "none"
    assert got["CI method"].startswith("none: a modelled estimate")
    assert got["Compared with England"] == "Not compared" and pd.isna(got["Comparison basis"])
    assert got["Position among areas"] in FIFTHS
    assert (got["Period"], got["Period start"], got["Period end"], got["Age"]) == ("2021", "2021-01-01", "2021-12-31", "All ages")
    assert (got["Department (abbreviation)"], got["Department"]) == ("DESNZ", "Department for Energy Security and Net Zero")
    assert got["Polarity"] == "Lower is better" and got["Licence"] == "Open Government Licence v3.0"
    assert got["Source URL"].startswith("https://www.gov.uk/government/statistics/sub-regional-fuel-poverty")
    assert (got["Area type"], got["Share of area in ICB"]) == ("Unitary authority", 1.0) and pd.isna(got["ICB split"])
    icb = row(nenc, NENC, "fuel-poverty-lilee")
    assert got["ICB value"] == icb["Value"] and icb["Figure method"] == "counted over LSOAs"
    assert icb["Loaded on"] == got["Loaded on"]  # built from the authorities' figures: their run's date
    assert icb["Approximate"] == "No" and pd.isna(icb["ICB value"])
    # the aligned rhos are the indicator's, the same on every area's row
    rhos = nenc.loc[nenc["Indicator ID"] == "fuel-poverty-lilee", "Aligned rho: life expectancy"]
    assert rhos.nunique() == 1 and -1 <= rhos.iloc[0] <= 1


def test_hartlepool_claimant_count_equals_the_ons_file(engine, nenc):
    ons = pd.read_csv(SNAPSHOT_DIR / "employment" / "ons_els_claimant_count_pct_16_64_2001_to_2025.csv.gz",
                      encoding="utf-8-sig")
    ons = ons[ons["period"] == "2025-01-01/P1Y"].set_index("areacd")["observation"]
    got = row(nenc, HARTLEPOOL, "claimant-count-rate-16-64")
    assert (got["Period"], got["Value"], got["England value"]) == ("2025", ons[HARTLEPOOL], ons["E92000001"])  # 4.4, 4.0
    with engine.connect() as conn:
        loaded = conn.execute(text("SELECT max(finished_at) FROM run WHERE source = 'ons_els'")).scalar()
    assert got["Department (abbreviation)"] == "DWP" and got["Loaded on"] == str(loaded)[:10]
    # no CI published and none computed (ci_method published): not tested; its position is a separate column
    assert pd.isna(got["Lower 95% CI"]) and got["Compared with England"] == "Not compared"
    assert got["Position among areas"] in FIFTHS


def test_split_local_authority_says_which_icbs_and_the_share(engine, nenc):
    wf = nenc[nenc["Area code"] == "E06000064"].iloc[0]  # Westmorland and Furness: mostly in Lancashire and South Cumbria
    assert wf["ICB code"] == NENC and 0 < wf["Share of area in ICB"] < 0.5
    assert "E54000048" in wf["ICB split"] and NENC in wf["ICB split"]
    alone = pd.read_csv(io.BytesIO(exports.export_bytes(engine, ["E06000064"])), encoding="utf-8-sig")
    assert set(alone["ICB code"]) == {"E54000048"} and set(alone["Included as"]) == {"Requested area"}
    assert alone["Share of area in ICB"].iloc[0] == pytest.approx(1 - wf["Share of area in ICB"])


def test_two_tier_icb_brings_its_counties_for_upper_tier_indicators(engine):
    pack = pd.read_csv(io.BytesIO(exports.export_bytes(engine, [NORFOLK_WAVENEY], domains=["education"])),
                       encoding="utf-8-sig")
    counties = pack[pack["Area type"] == "County (upper tier)"]
    assert set(counties["Area code"]) == {NORFOLK, SUFFOLK}  # Waveney (East Suffolk) is a Suffolk district
    assert set(counties["Included as"]) == {f"County (upper tier) for districts in {NORFOLK_WAVENEY}"}
    # children in need is published for upper-tier authorities only: on the county's rows, not its districts'
    cin = pack[pack["Indicator ID"] == "dfe-children-in-need-rate"]
    assert NORFOLK in set(cin["Area code"]) and not cin["Area code"].str.startswith("E07").any()
    assert set(pack["Domain"]) == {"education"}


def test_pack_is_written_in_batches_of_areas_with_the_same_bytes(engine, nenc_written, nenc, monkeypatch):
    stream, result = nenc_written
    assert (result.rows, result.areas) == (len(nenc), 15)
    monkeypatch.setattr(exports, "AREAS_AT_ONCE", 4)  # a big export streams batch by batch: bounded memory
    small = Recorder()
    exports.write_export(engine, small, [NENC])
    assert len(small.sizes) >= 4 and max(small.sizes) < len(small.getvalue()) / 2  # chunks, not one big string
    assert small.getvalue() == stream.getvalue()  # however the areas are batched, the same file


def test_all_asks_for_every_area(engine):
    plan = exports.plan_areas(engine, ["all"])
    kinds = pd.Series([a.type for a in plan]).value_counts().to_dict()
    assert kinds == {"england": 1, "region": 9, "icb": 42, "utla": 21, "ltla": 296}
    assert {a.included_as for a in plan} == {"Requested area"}


# ---------------------------------------------------------------------------------------------------------------
# Values that must survive Excel: negatives, formulas, non-ASCII


def test_real_negative_values_stay_negative_numbers(engine):
    sii = pd.read_csv(SNAPSHOT_DIR / "outcomes" / "fingertips_92901_inequality_in_life_expectancy_sii_lad_2015-17_to_2022-24.csv")
    sii = sii[(sii["area_code"] == MID_SUFFOLK) & (sii["period"] == "2022 - 24")].set_index("inequality")["value"]
    assert sii["Female"] == -1.8
    data = exports.export_bytes(engine, [MID_SUFFOLK])
    pack = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert row(pack, MID_SUFFOLK, "life-expectancy-inequality", "Female")["Value"] == sii["Female"]
    assert b",-1.8," in data and b"'-1.8" not in data
    ons = pd.read_csv(SNAPSHOT_DIR / "housing" / "mhclg_els_net_additions_housing_stock_2001-02_to_2024-25.csv.gz",
                      encoding="utf-8-sig")
    published = ons[(ons["areacd"] == HARTLEPOOL) & (ons["period"] == "2007-04-01/P1Y")]["observation"].iloc[0]
    assert published == -4
    history = exports.export_bytes(engine, [HARTLEPOOL], domains=["housing"], all_periods=True)
    rows = [r for r in csv.DictReader(io.StringIO(history.decode("utf-8-sig"), newline=""))
            if r["Indicator ID"] == "net-additions-housing-stock" and r["Period"] == "2007/08"]
    assert [r["Value"] for r in rows] == ["-4"]
    sheet = openpyxl.load_workbook(io.BytesIO(exports.export_bytes(engine, [MID_SUFFOLK], fmt="xlsx")))["Data"]
    header = [c.value for c in sheet[1]]
    values = [(r[header.index("Indicator ID")], r[header.index("Sex")], r[header.index("Value")])
              for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert ("life-expectancy-inequality", "Female", -1.8) in values


def test_formula_like_names_are_neutralised_in_csv_and_xlsx(engine):
    data = exports.export_bytes(engine, list(INJECTED))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    names = {r["Area code"]: r["Area name"] for r in rows}
    assert names == {code: "'" + name for code, name in INJECTED.items()}
    assert b'"\'=HYPERLINK(""http://example.com/x"",""Click me"")"' in data
    titles = {r["Indicator"] for r in rows if r["Indicator ID"] == INJECTED_TITLE[0]}
    assert titles == {"'" + INJECTED_TITLE[1]}
    # no cell of the file starts a formula, while negative numbers keep their sign
    assert not [v for r in rows for v in r.values() if v[:1] in ("=", "+", "@", "\t", "\r")]
    assert any(v.startswith("-") and float(v) < 0 for r in rows for k, v in r.items()
               if k in ("Value", "Lower 95% CI", "Aligned rho: life expectancy") and v)
    book = openpyxl.load_workbook(io.BytesIO(exports.export_bytes(engine, list(INJECTED), fmt="xlsx")))
    cells = {r[0].value: r[1] for r in book["Data"].iter_rows(min_row=2, max_col=2)}
    for code, name in INJECTED.items():
        assert cells[code].data_type == "s" and cells[code].quotePrefix, code
        assert cells[code].value == name.replace("\r", "_x000D_"), code  # the xlsx escape Excel reads back as CR


def test_non_ascii_names_come_through_excel_safe(engine):
    data = exports.export_bytes(engine, [YNYS_MON[0], "E06000058"])
    assert data[:3] == b"\xef\xbb\xbf" and "Ynys Môn".encode("utf-8") in data
    pack = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    assert set(pack["Area name"]) == {"Ynys Môn", "Bournemouth, Christchurch and Poole"}
    sheet = openpyxl.load_workbook(io.BytesIO(exports.export_bytes(engine, [YNYS_MON[0]], fmt="xlsx")))["Data"]
    assert sheet["B2"].value == "Ynys Môn"


# ---------------------------------------------------------------------------------------------------------------
# The Excel workbook and the dictionary


def test_xlsx_has_frozen_header_filter_numbers_and_the_dictionary(nenc_xlsx, nenc):
    book = openpyxl.load_workbook(io.BytesIO(nenc_xlsx))
    assert book.sheetnames == ["Data", "Dictionary", "About"]
    data = book["Data"]
    assert data.freeze_panes == "A2" and data.auto_filter.ref == f"A1:BB{len(nenc) + 1}"
    assert [c.value for c in data[1]] == COLUMNS and data.max_row == len(nenc) + 1
    header = {c.value: i for i, c in enumerate(data[1])}
    fuel = next(r for r in data.iter_rows(min_row=2, values_only=True)
                if r[header["Area code"]] == HARTLEPOOL and r[header["Indicator ID"]] == "fuel-poverty-lilee")
    # XlsxWriter stores 16 significant digits (Excel shows 15): 14.30822490151606 for 14.308224901516056
    assert fuel[header["Value"]] == pytest.approx(row(nenc, HARTLEPOOL, "fuel-poverty-lilee")["Value"], rel=1e-15)
    assert fuel[header["Period end"]].date() == date(2021, 12, 31)
    assert data.column_dimensions["B"].width > data.column_dimensions["A"].width
    dictionary = book["Dictionary"]
    assert dictionary.freeze_panes == "A2"
    named = [r[1] for r in dictionary.iter_rows(min_row=2, values_only=True) if r[0] == "Column"]
    assert named == COLUMNS
    about = " ".join(str(v) for r in book["About"].iter_rows(values_only=True) for v in r if v)
    assert "Open Government Licence v3.0" in about and "Department for Energy Security and Net Zero" in about
    assert "Association, not causation" in about


def test_dictionary_covers_every_column_with_the_caveat():
    dictionary = pd.read_csv(io.BytesIO(exports.dictionary_bytes()), encoding="utf-8-sig")
    assert list(dictionary.columns) == ["Section", "Name", "Type", "Meaning"]
    columns = dictionary[dictionary["Section"] == "Column"]
    assert columns["Name"].tolist() == COLUMNS
    assert columns["Meaning"].str.len().min() > 20
    assert set(columns["Type"]) == {"text", "number", "date"}
    caveat = dictionary[dictionary["Section"] == "Caveat"].set_index("Name")["Meaning"]
    assert "do not show that a determinant causes the outcome" in caveat["Association, not causation"]
    for name in ("Aligned rho: life expectancy", "Aligned rho: inequality in life expectancy"):
        assert "not evidence that the indicator causes" in columns.set_index("Name").at[name, "Meaning"]


def test_docs_page_is_generated_from_the_dictionary():
    assert exports.DOCS_FILE.read_text(encoding="utf-8") == exports.dictionary_markdown(), (
        "docs/export-columns.md is out of date: run `python -m tracker.exports`")
    for column in COLUMNS:
        assert f"| {column} |" in exports.DOCS_FILE.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# The command


def test_cli_writes_the_same_bytes_as_export_bytes(pack_db, nenc_csv, nenc_xlsx, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DATABASE_URL", pack_db[1])
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "export", "--area", NENC, "--output", "pack.csv")
    assert code == 0 and err == ""
    assert (tmp_path / "pack.csv").read_bytes() == nenc_csv
    assert (tmp_path / "pack-dictionary.csv").read_bytes() == exports.dictionary_bytes()
    assert out.startswith("wrote ") and "15 areas to pack.csv" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack-dictionary.csv", "pack.csv"]

    code, _, _ = run(capsys, "export", "--area", NENC, "--format", "xlsx")
    written = tmp_path / exports.default_filename([NENC], "xlsx", date.today())
    assert code == 0 and written.name == f"pack-{NENC}-{date.today().isoformat()}.xlsx"
    assert written.read_bytes() == nenc_xlsx


def test_cli_to_standard_output_in_any_argument_order(pack_db, capsysbinary, monkeypatch):
    monkeypatch.setenv("TRACKER_DATABASE_URL", pack_db[1])
    main(["export", "--area", HARTLEPOOL, "--area", "e54000050", "--department", "DLUHC", "--output", "-"])
    out, err = capsysbinary.readouterr()
    assert err == b""
    same = exports.export_bytes(pack_db[0], [NENC, HARTLEPOOL], departments=["ministry-of-housing-communities-local-government"])
    assert out == same
    pack = pd.read_csv(io.BytesIO(out), encoding="utf-8-sig")
    mhclg = (pack["Department (abbreviation)"] == "MHCLG") | pack["Secondary departments"].fillna("").str.contains("MHCLG")
    assert mhclg.all() and "homelessness-owed-duty-per-1000" in set(pack["Indicator ID"])
    assert pack["Area code"].nunique() == 15  # Hartlepool once, as part of the ICB


@pytest.mark.parametrize("args,message", [
    (["--area", "E99999999"], "unknown area code 'E99999999'; use an E92/E12/E54/E06-E10 code; see `tracker areas`"),
    (["--area", "Hartlepol"], "did you mean E06000001 (Hartlepool)?"),
    (["--area", "E07000048"], "E07000048 (Christchurch) is now E06000058 (Bournemouth, Christchurch and Poole)"),
    (["--area", NENC, "--department", "Ministry of Magic"], "unknown department 'Ministry of Magic'; use a GOV.UK slug"),
    (["--area", NENC, "--domain", "weather"], "unknown domain 'weather'; use one of: housing, employment"),
    (["--area", NENC, "--format", "pdf"], "'pdf' is not one of 'csv', 'xlsx'"),
    ([], "Missing option '--area'"),
])
def test_usage_errors_are_one_line_and_exit_2(pack_db, capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("TRACKER_DATABASE_URL", pack_db[1])
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "export", *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("tracker: error: ") and message in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_cheshire_and_merseyside_pack_keeps_significance_and_position_apart(engine):
    """The issue's E54000008 pack: "Compared with England" held a fifth in 1,058 of its 1,240 rows. Now it holds only
    significance words (the publisher's where published), "Position among areas" holds the fifth of every row with
    a value, no indicator whose figure supports no CI is tested, and the ICB's share of LSOAs in the most deprived
    10% is the count over its LSOAs (322 of 1,601)."""
    pack = pd.read_csv(io.BytesIO(exports.export_bytes(engine, ["E54000008"])), encoding="utf-8-sig", dtype={"Period": str})
    assert len(pack) == 1240
    significance = {"Better", "Similar", "Worse", "Higher", "Lower"}
    words = pack["Compared with England"].str.replace(r" \((95|99\.8)%\)$", "", regex=True)
    assert set(words) <= significance | {"Not compared"}
    assert not pack["Compared with England"].str.contains("fifth|^Lowest$|^Highest$", regex=True).any()
    with_value = pack["Value"].notna() & (pack["Area code"] != "E92000001")
    assert pack.loc[with_value, "Position among areas"].notna().all()
    assert set(pack["Position among areas"].dropna()) <= FIFTHS | {
        "Highest fifth", "Second-highest fifth", "Middle fifth", "Second-lowest fifth", "Lowest fifth"}
    none = pack["CI method"].str.startswith("none")
    assert none.any() and (pack.loc[none, "Compared with England"] == "Not compared").all()
    assert not pack.loc[none, "CI source"].fillna("").str.startswith("computed").any()
    assert pack.loc[none & (pack["Area type"] != "Integrated care board"), "Lower 95% CI"].isna().all()
    # Liverpool's life expectancy: the bundled Fingertips file says "Worse"
    le = pack[(pack["Area code"] == "E08000012") & (pack["Indicator ID"] == "life-expectancy")]
    assert len(le) == 2 and (le["Compared with England"] == "Worse (95%)").all()
    assert (le["Comparison basis"] == "published judgement (OHID Fingertips)").all()
    imd = pack[(pack["Area code"] == "E54000008") & (pack["Indicator ID"] == "imd-proportion-most-deprived-decile")].iloc[0]
    assert (imd["Count"], imd["Denominator"], round(imd["Value"], 4)) == (322, 1601, 0.2011)
    assert imd["Figure method"] == "counted over LSOAs"


def test_dictionary_explains_the_comparison_columns_apart():
    meaning = {c.name: c.meaning for c in exports.DATA_DICTIONARY}
    assert "A significance judgement only" in meaning["Compared with England"]
    assert "Never a position" in meaning["Compared with England"]
    assert "A position, not a test" in meaning["Position among areas"]
    assert "published judgement" in meaning["Comparison basis"]
    assert "counted over LSOAs" in meaning["Figure method"]
    docs = (SNAPSHOT_DIR.parents[2] / "docs" / "export-columns.md").read_text()
    assert all(f"| {name} |" in docs for name in ("Compared with England", "Comparison basis", "Position among areas", "CI method"))


def test_every_row_says_where_its_ci_came_from_and_whether_it_is_approximate(nenc):
    """No empty provenance cell (issue 14 item 8): an ICB figure recomputed from counts names the CI method, a
    local authority's row says it is not approximate, and a row without a CI says "none"."""
    assert nenc["CI source"].notna().all() and nenc["Approximate"].notna().all()
    assert set(nenc["Approximate"]) <= {"Yes", "No"}
    has_ci = nenc["Lower 95% CI"].notna() & nenc["Upper 95% CI"].notna()
    assert (nenc.loc[~has_ci, "CI source"] == "none").all()
    assert set(nenc.loc[has_ci, "CI source"]) <= {"published", "computed from counts (Wilson score)",
                                                   "computed from counts (Byar / exact Poisson)"}
    icb = nenc[(nenc["Area code"] == NENC) & (nenc["Figure method"] == "recomputed from counts")]
    assert len(icb) and icb["CI source"].str.startswith("computed from counts").all()
    assert row(nenc, NENC, "fuel-poverty-lilee")["CI source"] == "none"  # counted over LSOAs: ci_method none
    assert (nenc.loc[nenc["Area code"] != NENC, "Approximate"] == "No").all()
    weighted = nenc["Figure method"] == "population-weighted average (approximate)"
    assert (nenc.loc[weighted, "Approximate"] == "Yes").all() and weighted.any()


ESSEX = "E10000012"


def test_county_pack_has_a_unitarys_indicators_built_from_its_districts(engine):
    """Essex's pack holds every indicator Hartlepool's does, except those published only for unitaries (no county
    and no district figures anywhere); figures built from its districts say so."""
    from tracker.analysis.data import get_store

    def pack(code):
        return pd.read_csv(io.BytesIO(exports.export_bytes(engine, [code])), encoding="utf-8-sig", dtype={"Period": str})

    essex, hartlepool = pack(ESSEX), pack(HARTLEPOOL)
    essex = essex[essex["Area code"] == ESSEX]
    obs = get_store(engine).obs
    with_value = obs[obs["value"].notna()]
    lower_or_county = set(with_value.loc[with_value["area_code"].str.startswith(("E07", "E10")), "indicator_id"])
    only_unitaries = set(hartlepool["Indicator ID"]) - lower_or_county
    assert set(hartlepool["Indicator ID"]) - only_unitaries <= set(essex["Indicator ID"])
    assert essex["Indicator ID"].nunique() >= hartlepool["Indicator ID"].nunique() - len(only_unitaries)
    le = row(essex, ESSEX, "life-expectancy", "Male")
    assert le["Figure method"] == "population-weighted average (approximate)" and le["Approximate"] == "Yes"
    assert "Approximate: average of the county's districts" in le["Note"]
    published = essex[essex["Approximate"] == "No"]
    assert published["Figure method"].isin(["published", "counted over LSOAs", "sum of LA values"]).all() and len(published) > 0


def test_department_ranking_column_gives_rank_interval_and_the_one_indicator_flag(engine, nenc):
    from tracker.analysis import place_departments

    got = place_departments(engine, NENC, "life-expectancy")
    first = got.ranking.iloc[0]
    rows = nenc[(nenc["Area code"] == NENC) & (nenc["Department (abbreviation)"] == first["department_abbr"])]
    text_ = rows["Department ranking for this area"].iloc[0]
    assert (f"life expectancy (Male): 1 of {int(got.ranking['rank'].count())} "
            f"(95% interval {first['rank_lci']:.0f}-{first['rank_uci']:.0f})") in text_
    assert rows["Department ranking for this area"].nunique() == 1  # the same on each of the department's rows
    one = got.ranking[got.ranking["rests_on_one_indicator"] & got.ranking["rank"].notna()]
    if len(one):
        flagged = nenc[(nenc["Area code"] == NENC) & (nenc["Department (abbreviation)"] == one.iloc[0]["department_abbr"])]
        assert "rests on one indicator" in flagged["Department ranking for this area"].iloc[0]


def test_a_pack_in_a_new_process_decodes_only_the_saved_results_it_uses(snapshot_engine, monkeypatch):
    """`tracker export` in a new process reads the saved analysis lazily: the departments' rankings, but neither the
    evidence behind every place's ranking nor every ICB's figures (tens of megabytes it would only throw away)."""
    from collections import OrderedDict

    from tracker.analysis import data

    monkeypatch.setattr(data, "_CACHE", OrderedDict())  # a new process: nothing in memory
    pack = pd.read_csv(io.BytesIO(exports.export_bytes(snapshot_engine, ["E54000050"])), encoding="utf-8-sig",
                       dtype=str)
    assert pack["Department ranking for this area"].notna().any()
    store = data.get_store(snapshot_engine)
    held = store.memo.held()  # read from the save or computed; the rest is still only in the save
    outcomes = [(o, data.headline_sex(store, o)) for o in exports.HEADLINE_OUTCOMES]
    assert all(("place_ranking", o, s) in held for o, s in outcomes)
    assert not any(("ranked_evidence", o, s) in held for o, s in outcomes)
    assert ("icb_judged",) not in held
