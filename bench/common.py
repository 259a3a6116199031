"""Shared by the benchmark parts: where work files go, running one measurement in its own subprocess, peak
memory, the machine description, and small statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"
RESULT_TAG = "BENCH-RESULT "


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB. Linux: VmHWM, the high-water mark of this
    process's own memory (getrusage's ru_maxrss also counts the parent's size at fork, kept across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class PssPeak:
    """The peak of a process's and its children's memory together, sampled every 50 ms from a thread of the benchmark
    itself (reading another process's page tables costs this process, not the one measured): PSS (proportional set
    size), so pages a forked child shares with its parent count once, not once per process."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak_mb = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _pss_mb(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
        except OSError:  # a process that has just ended
            pass
        return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                children = [int(c) for c in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
            except OSError:
                children = []
            self.peak_mb = max(self.peak_mb, self._pss_mb(self.pid) + sum(self._pss_mb(c) for c in children))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mb, 1)


class ChildFailed(RuntimeError):
    pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), the server's share of the machine."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(task: str, data_dir: Path, timeout: float = 1800, env: dict | None = None, tree_pss: bool = False,
              **kwargs) -> dict:
    """Run bench.child TASK in a fresh interpreter (so its peak RSS is its own) and return its JSON result.
    TRACKER_DATA_DIR points into the benchmark's work folder: nothing touches the tracker's own database. tree_pss:
    the result also has tree_peak_pss_mb, the peak of the task's and its children's memory together (PssPeak)."""
    child_env = {**os.environ, "TRACKER_DATA_DIR": str(data_dir)}
    child_env.pop("TRACKER_DATABASE_URL", None)
    child_env.update(env or {})
    t = time.perf_counter()
    # a session of its own: on a timeout the task and what it started (a server, a browser) are stopped together
    proc = subprocess.Popen([sys.executable, "-m", "bench.child", task, json.dumps(kwargs)], cwd=PROJECT_ROOT,
                            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    together = PssPeak(proc.pid) if tree_pss else None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ChildFailed(f"bench task {task} took longer than {timeout:.0f} s (--timeout) and was stopped")
    wall = time.perf_counter() - t
    lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-15:]
        raise ChildFailed(f"bench task {task} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["process_seconds"] = round(wall, 3)
    if together is not None:
        result["tree_peak_pss_mb"] = together.stop()
    return result


def copy_db(template: Path, target: Path) -> Path:
    """A fresh copy of a checkpointed database file (no -wal/-shm left behind by the template)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return target


def checkpoint(db: Path) -> None:
    """Fold the WAL into the main file so the file alone is the whole database."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def machine() -> dict:
    import pandas
    import sqlalchemy
    import streamlit

    versions = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version, "pandas": pandas.__version__,
                "SQLAlchemy": sqlalchemy.__version__, "Streamlit": streamlit.__version__}
    for name in ("sqlite-utils", "pyinstrument"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "ram_gb": _ram_gb(), "os": platform.platform(),
            "versions": versions, "load_average_at_start": [round(x, 2) for x in load] if load else None}
