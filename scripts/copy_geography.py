"""Copy the geography files the tracker needs from the shared data folder into tracker/data/geography/.

The tracker must run from a fresh clone, which has no shared/ folder, so the lookups and boundaries are
bundled with the package. This script makes the bundle reproducible:

    python scripts/copy_geography.py [--shared ../shared]

It copies data/lookups/* and data/boundaries/* unchanged (same file names) and derives
lsoa21_households_2021.csv (LSOA21CD, households) from the DESNZ sub-regional fuel poverty 2021 LSOA table;
the households are the size weights for local authorities split across ICBs (see tracker/geography.py).
ATTRIBUTION.md in the target folder is maintained by hand.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "tracker" / "data" / "geography"
FUEL_POVERTY_LSOA = Path("data/fuel_poverty/desnz_sub_regional_fuel_poverty_2021_lsoa21.csv.gz")
HOUSEHOLDS_FILE = "lsoa21_households_2021.csv"


def copy_geography(shared: Path, target: Path = TARGET) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for folder in ("lookups", "boundaries"):
        files = sorted(p for p in (shared / "data" / folder).iterdir() if p.is_file())
        if not files:
            raise SystemExit(f"no files in {shared / 'data' / folder}")
        for src in files:
            dest = target / src.name
            # copyfile, not copy2: the shared files are read-only and the copies must stay writable.
            shutil.copyfile(src, dest)
            written.append(dest)

    fp = pd.read_csv(shared / FUEL_POVERTY_LSOA, usecols=["LSOA21CD", "households"])
    if fp["LSOA21CD"].duplicated().any():
        raise SystemExit("duplicate LSOA21CD in the DESNZ LSOA table")
    # DESNZ publishes whole households (stored as floats); keep missing values missing, never 0.
    fp["households"] = fp["households"].round().astype("Int64")
    out = target / HOUSEHOLDS_FILE
    fp.sort_values("LSOA21CD").to_csv(out, index=False)
    written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared/ folder (default ../shared)")
    args = parser.parse_args(argv)
    for path in copy_geography(args.shared.resolve()):
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
