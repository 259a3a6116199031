"""Departments with their lineage, and the indicator catalog's validation."""

from __future__ import annotations

import textwrap

import pytest

from tracker import departments
from tracker.catalog import CatalogError, load_catalog


@pytest.mark.parametrize("name", ["Department for Levelling Up, Housing and Communities", "DLUHC", "DCLG",
                                  "department-for-communities-and-local-government", "dluhc"])
def test_historical_housing_names_map_to_mhclg(name):
    assert departments.resolve(name).abbreviation == "MHCLG"


def test_lookup_says_when_the_old_name_stopped():
    (match,) = departments.lookup("DLUHC")
    assert match.used_until.isoformat() == "2024-07-08"
    assert "now with Ministry of Housing, Communities and Local Government" in match.describe()


def test_beis_fuel_poverty_is_desnz_and_beis_alone_is_ambiguous():
    assert departments.resolve("BEIS", function="fuel poverty").abbreviation == "DESNZ"
    assert departments.resolve("Department of Energy and Climate Change").abbreviation == "DESNZ"
    with pytest.raises(ValueError, match="split between departments"):
        departments.resolve("BEIS")


def test_phe_and_ohid_belong_to_dhsc_and_only_dhsc_is_flagged():
    assert departments.resolve("PHE").is_dhsc
    assert departments.resolve("OHID").is_dhsc
    assert [d.abbreviation for d in departments.all_departments() if d.is_dhsc] == ["DHSC"]


def test_unknown_department_error_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown department 'Ministry of Magic'.*DfE.*MHCLG"):
        departments.resolve("Ministry of Magic")


def test_real_catalog_tags_every_indicator_and_spans_eight_departments_beyond_dhsc():
    specs = load_catalog()
    assert specs, "the catalog is empty"
    for s in specs:
        assert s.department and s.rationale.strip() and s.source and s.source_id
    outside = {s.department for s in specs} - {departments.DHSC}
    assert len(outside) >= 8, sorted(outside)
    headline = {s.id for s in specs if s.headline_outcome}
    assert headline == {"life-expectancy", "healthy-life-expectancy", "preventable-mortality-u75", "life-expectancy-inequality"}


GOOD = dict(id="x-rate", title="X", domain="housing", unit="%", value_type="proportion", polarity="lower_is_better",
            department="ministry-of-housing-communities-local-government", producer="MHCLG", rationale="Housing policy.",
            definition="d", licence="Open Government Licence v3.0", source="mhclg_homelessness", source_id="x")


def _write(tmp_path, entries, name="test.yaml"):
    import yaml

    (tmp_path / name).write_text(yaml.safe_dump({"indicators": entries}))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"department": "ministry-of-magic"}, "test.yaml: indicator x-rate: unknown department 'ministry-of-magic'"),
        ({"rationale": ""}, "test.yaml: indicator x-rate: missing rationale"),
        ({"domain": "weather"}, "test.yaml: indicator x-rate: unknown domain 'weather'; valid: housing, employment"),
        ({"polarity": "up"}, "test.yaml: indicator x-rate: unknown polarity 'up'"),
        ({"ci_method": "bootstrap"}, "test.yaml: indicator x-rate: unknown ci_method 'bootstrap'; valid: published, "
                                     "wilson, byar, none"),
        ({"ci_method": "none"}, "test.yaml: indicator x-rate: ci_method none needs a ci_reason"),
        ({"ci_method": "wilson"}, "test.yaml: indicator x-rate: ci_method wilson needs value_type proportion and a "
                                  "multiplier"),
        ({"ci_reason": "modelled"}, "test.yaml: indicator x-rate: ci_reason is only for ci_method: none"),
    ],
)
def test_catalog_errors_name_file_and_entry(tmp_path, change, message):
    _write(tmp_path, [{**GOOD, **change}])
    with pytest.raises(CatalogError) as err:
        load_catalog(tmp_path)
    assert str(err.value).startswith(message)


def test_duplicate_ids_across_files_are_refused(tmp_path):
    _write(tmp_path, [GOOD], "a.yaml")
    _write(tmp_path, [GOOD], "b.yaml")
    with pytest.raises(CatalogError, match=r"b.yaml: indicator x-rate: duplicate id \(also in a.yaml\)"):
        load_catalog(tmp_path)


def test_valid_entry_loads(tmp_path):
    _write(tmp_path, [GOOD])
    (spec,) = load_catalog(tmp_path)
    assert spec.id == "x-rate" and spec.area_types == ("ltla",)


def test_ci_method_defaults_from_value_type_and_can_be_overridden(tmp_path):
    rate = {**GOOD, "value_type": "rate", "multiplier": 1000}
    entries = [
        {**rate, "id": "counted-rate"},
        {**rate, "id": "share", "value_type": "proportion", "multiplier": 100},
        {**rate, "id": "index", "value_type": "score"},
        {**rate, "id": "mean", "value_type": "mean"},
        {**rate, "id": "modelled", "value_type": "proportion", "multiplier": 100, "ci_method": "none",
         "ci_reason": "a modelled estimate"},
    ]
    _write(tmp_path, entries)
    got = {s.id: (s.ci_method, s.ci_reason) for s in load_catalog(tmp_path)}
    assert got["counted-rate"] == ("byar", None) and got["share"] == ("wilson", None)
    assert got["index"][0] == "none" and "index or score" in got["index"][1]
    assert got["mean"] == ("published", None)
    assert got["modelled"] == ("none", "a modelled estimate")


def test_real_catalog_gives_no_ci_to_modelled_estimates_indices_and_money_per_head():
    specs = {s.id: s for s in load_catalog()}
    for ind in ("fuel-poverty-lilee", "fuel-poverty-fingertips", "gdhi-per-head", "housing-affordability-ratio",
                "imd-average-score", "imd-proportion-most-deprived-decile",
                "hi-household-overcrowding", "crime-severity-score"):
        assert specs[ind].ci_method == "none" and specs[ind].ci_reason, ind
    assert all(s.ci_method == "none" for s in specs.values() if s.source == "ons_health_index")
    assert specs["dfe-infant-mortality"].ci_method == "byar" and specs["dfe-low-birth-weight"].ci_method == "wilson"
    assert specs["employment-rate-16-64"].ci_method == "published"  # a survey estimate: only the publisher's CIs
    assert specs["unemployment-rate-modelled"].ci_method == "published"  # ONS publishes the model's own CIs
