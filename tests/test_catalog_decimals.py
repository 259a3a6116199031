"""The catalog's `decimals` field (issue 14 item 9): the decimal places the dashboard shows, defaulted in code from
the value type and unit, set in the YAML only where the publisher shows another precision, and validated."""

from __future__ import annotations

import pytest

from tests.test_departments_and_catalog import GOOD, _write
from tracker.catalog import CatalogError, default_decimals, display_decimals, load_catalog


@pytest.mark.parametrize("value_type, unit, expected", [
    ("years", "years", 1), ("proportion", "%", 1), ("rate", "per 100,000", 1), ("count", "households", 0),
    ("rank", "rank", 0), ("median", "£ per week", 0), ("ratio", "ratio", 2), ("score", "IMD score", 2),
    ("proportion", "proportion of LSOAs", 3),
])
def test_default_decimals_from_value_type_and_unit(value_type, unit, expected):
    assert default_decimals(value_type, unit) == expected


def test_explicit_decimals_where_the_default_is_wrong():
    decimals = display_decimals()
    assert set(decimals) == {s.id for s in load_catalog()}
    assert decimals["homelessness-owed-duty-per-1000"] == 2  # mostly below 1 per 1,000: one place would show 1.0
    assert decimals["life-expectancy"] == 1 and decimals["gross-median-weekly-pay"] == 0


@pytest.mark.parametrize("bad", [-1, 7, 1.5, "two", True])
def test_bad_decimals_name_file_and_entry(tmp_path, bad):
    _write(tmp_path, [{**GOOD, "decimals": bad}])
    with pytest.raises(CatalogError) as err:
        load_catalog(tmp_path)
    assert str(err.value).startswith("test.yaml: indicator x-rate: decimals must be a whole number from 0 to 6")


def test_decimals_set_in_a_file_are_kept(tmp_path):
    _write(tmp_path, [{**GOOD, "decimals": 3}])
    (spec,) = load_catalog(tmp_path)
    assert spec.decimals == 3
