"""Copy the real public data files from the shared data folder into the project's bundled snapshot
(tracker/data/snapshot/), keeping their folder layout. The snapshot's SOURCES.md is the project's own (it describes
the files as they are here, paths relative to the snapshot): add an entry there for a new file, from the shared
folder's SOURCES.md.
Run by developers when the snapshot is updated; the tracker never reads the shared folder at run time.
Geography (lookups, boundaries) is copied by scripts/copy_geography.py instead."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"lookups", "boundaries"}
OWN = {"SOURCES.md", "ATTRIBUTION.md"}  # the snapshot's own notes, never overwritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared folder (default ../shared)")
    args = parser.parse_args()
    source = args.shared / "data"
    target = ROOT / "tracker" / "data" / "snapshot"
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.parts[0] in SKIP or str(rel) in OWN:
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        copied += 1
    print(f"copied {copied} files into {target}")


if __name__ == "__main__":
    main()
