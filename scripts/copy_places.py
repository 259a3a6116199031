"""Copy the files behind similar areas, peer ICBs, Core20 and the LSOA maps into tracker/data/places/.

The tracker must run from a fresh clone, which has no shared/ folder, so these are bundled with the package. This
script makes the bundle reproducible (developers only):

    python scripts/copy_places.py [--shared ../shared]

Copied unchanged (same bytes, new names):
  reference/api-samples/els_neighbours/{global,economic,demographic}-neighbours.csv -> els_<kind>_neighbours.csv
  reference/api-samples/els_neighbours/cluster-allocation.csv -> els_cluster_allocation.csv
  reference/api-samples/els_neighbours/cluster-descriptions.json -> els_cluster_descriptions.json
  data/population/ons_census2021_usual_residents_by_age6_lsoa21.csv.gz -> census2021_usual_residents_age6_lsoa21.csv.gz
Derived:
  lsoa21_bsc/<ICB24CD>.geojson.gz: data/boundaries/lsoa21_england_bsc.geojson.gz split by ICB (April 2024, from the
  bundled LSOA21 lookup), so a Place page reads only its own LSOAs. Features and coordinates are unchanged.
ATTRIBUTION.md in the target folder is maintained by hand.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "tracker" / "data" / "places"
LOOKUP = REPO / "tracker" / "data" / "geography" / "lsoa21_wd24_lad24_sicbl24_icb24.csv.gz"
COPIES = {
    "reference/api-samples/els_neighbours/global-neighbours.csv": "els_global_neighbours.csv",
    "reference/api-samples/els_neighbours/economic-neighbours.csv": "els_economic_neighbours.csv",
    "reference/api-samples/els_neighbours/demographic-neighbours.csv": "els_demographic_neighbours.csv",
    "reference/api-samples/els_neighbours/cluster-allocation.csv": "els_cluster_allocation.csv",
    "reference/api-samples/els_neighbours/cluster-descriptions.json": "els_cluster_descriptions.json",
    "data/population/ons_census2021_usual_residents_by_age6_lsoa21.csv.gz": "census2021_usual_residents_age6_lsoa21.csv.gz",
}
BOUNDARIES = "data/boundaries/lsoa21_england_bsc.geojson.gz"


def copy_places(shared: Path, target: Path = TARGET) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for src, name in COPIES.items():
        shutil.copyfile(shared / src, target / name)  # copyfile: the shared files are read-only
        written.append(target / name)
    lookup = pd.read_csv(LOOKUP, usecols=["LSOA21CD", "ICB24CD"], dtype=str).set_index("LSOA21CD")["ICB24CD"]
    with gzip.open(shared / BOUNDARIES, "rt", encoding="utf-8") as handle:
        collection = json.load(handle)
    by_icb: dict[str, list] = {}
    for feature in collection["features"]:
        by_icb.setdefault(lookup[feature["properties"]["LSOA21CD"]], []).append(feature)
    if sum(len(v) for v in by_icb.values()) != len(lookup):
        raise SystemExit("the LSOA boundaries and the LSOA21 lookup do not hold the same LSOAs")
    folder = target / "lsoa21_bsc"
    folder.mkdir(exist_ok=True)
    for icb, features in sorted(by_icb.items()):
        features.sort(key=lambda f: f["properties"]["LSOA21CD"])
        part = {"type": "FeatureCollection", "crs": collection.get("crs"), "features": features}
        out = folder / f"{icb}.geojson.gz"
        # mtime=0: the same input gives the same bytes
        with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as handle:
            handle.write(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared/ folder (default ../shared)")
    args = parser.parse_args(argv)
    for path in copy_places(args.shared.resolve()):
        print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
