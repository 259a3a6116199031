"""pyinstrument profiles of a missed goal's slowest stage: the text profile is saved beside the results file and
the functions with the most self time are returned for the results file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from bench.common import PROJECT_ROOT


def profile(name: str, func: Callable[[], object], folder: Path, top: int = 10) -> dict:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    try:
        func()
    finally:
        profiler.stop()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    root = profiler.last_session.root_frame()
    spots: dict[str, float] = {}

    def walk(frame) -> None:
        real = [child for child in frame.children if not child.is_synthetic]  # "[self]" time is the frame's own
        own = frame.time - sum(child.time for child in real)
        where = f"{frame.function} ({_short(frame.file_path)}:{frame.line_no})"
        spots[where] = spots.get(where, 0.0) + own
        for child in real:
            walk(child)

    if root is not None:
        walk(root)
    total = root.time if root is not None else 0.0
    ranked = sorted(spots.items(), key=lambda kv: -kv[1])[:top]
    return {"profile": str(path), "seconds": round(total, 3),
            "hot_spots": [{"where": w, "self_seconds": round(s, 3), "share": round(s / total, 3) if total else None}
                          for w, s in ranked]}


def _short(path: str | None) -> str:
    if not path:
        return "?"
    for marker in ("site-packages/", f"{PROJECT_ROOT}/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return Path(path).name
