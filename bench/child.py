"""One measurement in its own interpreter: `python -m bench.child TASK JSON_KWARGS`. Prints one line
"BENCH-RESULT {json}" with the task's result (which includes its peak RSS)."""

from __future__ import annotations

import json
import sys
from importlib import import_module

from bench.common import RESULT_TAG

TASKS = {
    "load": "bench.load:load",
    "prepare": "bench.snapshot:prepare_snapshot",
    "precompute": "bench.snapshot:precompute_analysis",
    "reference": "bench.snapshot:physical_reference",
    "profile": "bench.snapshot:profile",
    "query": "bench.query:measure",
    "export": "bench.exports:measure",
    "dashboard": "bench.dashboard:measure",
    "browser": "bench.browser:measure",
    "visitors": "bench.visitors:measure",
    "fresh": "bench.fresh:measure",
}


def main(argv: list[str]) -> None:
    task, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, func = TASKS[task].split(":")
    result = getattr(import_module(module), func)(**kwargs)
    print(RESULT_TAG + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
