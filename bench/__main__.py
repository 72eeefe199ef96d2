"""`make bench`: run every benchmark, keep each result in bench/results/<name>.json, print a summary.

Usage: python -m bench [name ...]   (default: all). Each module has `run() -> dict` and reports what it
measured on this machine; nothing here asserts a speed.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

BENCHES = ("intelligence_model", "allocator", "upload_memory", "webhook", "launch", "optimize")
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    chosen = names or list(BENCHES)
    failures = 0
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"== {name}: not present, skipped")
                continue
            raise
        print(f"== {name}", flush=True)
        started = time.time()
        try:
            figures = module.run()
        except Exception as exc:  # one broken bench must not hide the others' figures
            failures += 1
            print(f"   FAILED: {type(exc).__name__}: {exc}")
            continue
        result = {"bench": name, "machine": machine(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                  time.gmtime(started)), "seconds": round(time.time() - started, 1), "figures": figures}
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(figures, indent=2, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
