"""Part 7: a fresh clone to the first chart, as a new user meets the tracker: `git clone`, then the README's first
command (`make run`: create the virtualenv, install, prepare the database from the bundled snapshot, serve), with a
cold package cache (an empty PIP_CACHE_DIR and UV_CACHE_DIR, so every package comes from the index), until Debian's
Chromium shows the Overview page's first chart drawn. Reports each stage's time from the `make run` output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.browser import shots
from bench.common import PROJECT_ROOT


def measure(timeout: float = 1200) -> dict:
    """Child task. Clones the committed HEAD of this repository (what a user would get), not the working tree."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="tracker-fresh-"))
    clone, cache, uv_cache = work / "clone", work / "pip-cache", work / "uv-cache"
    port = shots.free_port()
    # a new user's shell: none of the tracker's settings, no virtualenv, Python free to write its bytecode cache
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACKER_", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"))}
    env.update(PIP_CACHE_DIR=str(cache), UV_CACHE_DIR=str(uv_cache), PORT=str(port))  # uv has a cache of its own
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
    marks["clone"] = time.perf_counter() - t0
    proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    log: list[str] = []
    try:
        for line in proc.stdout:  # the stages as make prints them
            log.append(line)
            now = time.perf_counter() - t0
            if "tracker prepare" in line and "installed" not in marks:
                marks["installed"] = now
            if re.search(r"You can now view|Local URL", line):
                marks["serving"] = now
                break
            if now > timeout:
                raise TimeoutError("make run did not serve the dashboard in time")
        if "serving" not in marks:
            return {"error": "make run ended before serving: " + "".join(log[-30:])}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shots.CHROMIUM, args=shots.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=timeout * 1000)
            marks["first_chart"] = time.perf_counter() - t0
            shots.wait_rendered(page)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    stages = {"clone": marks["clone"], "install": marks.get("installed", marks["serving"]) - marks["clone"],
              "prepare and start": marks["serving"] - marks.get("installed", marks["serving"]),
              "first chart drawn": marks["first_chart"] - marks["serving"]}
    return {"seconds": round(marks["first_chart"], 1), "stages": {k: round(v, 1) for k, v in stages.items()},
            "load_average_after": round(os.getloadavg()[0], 2)}
