"""Build tracker/data/geography/lad23_csp_lookup.csv (the crime severity score's CSP -> district lookup) from ONS's
"Local Authority District to Community Safety Partnerships to Police Force Areas (December 2019) Lookup in England and
Wales" CSV (columns FID, LAD19CD, LAD19NM, CSP19CD, CSP19NM, PFA19CD, PFA19NM; a copy is csv/194.csv in the
jtrim-ons/ons-lookups repository). Provenance and checks: tracker/data/geography/ATTRIBUTION.md.

    python scripts/build_csp_lookup.py path/to/LAD19_CSP19_PFA19_EW_LU.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

GEOGRAPHY = Path(__file__).resolve().parents[1] / "tracker" / "data" / "geography"


def build(ons_csv: Path) -> pd.DataFrame:
    lookup = pd.read_csv(ons_csv, dtype=str)
    history = pd.read_csv(GEOGRAPHY / "lad_code_history_2016_2024.csv", dtype=str)
    to_2023 = history[["ltla19_code", "ltla23_code", "ltla23_name"]].drop_duplicates()
    england = lookup[lookup["LAD19CD"].str.startswith("E")].merge(to_2023, left_on="LAD19CD", right_on="ltla19_code")
    out = england[["ltla23_code", "ltla23_name", "CSP19CD", "CSP19NM", "PFA19CD", "PFA19NM"]].drop_duplicates()
    out.columns = ["LAD23CD", "LAD23NM", "CSP19CD", "CSP19NM", "PFA19CD", "PFA19NM"]
    return out.sort_values(["LAD23CD", "CSP19CD"])


if __name__ == "__main__":
    build(Path(sys.argv[1])).to_csv(GEOGRAPHY / "lad23_csp_lookup.csv", index=False)
