"""What every benchmark shares: the machine and versions it ran on, and where results go.

Each benchmark is a script that writes ``bench/results/{name}.json``: the figures, the
settings that produced them, and :func:`environment`. ``bench/summarize.py`` turns those files
into the table in ``bench/README.md``; no number there is typed by hand.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PACKAGES = (
    "langmix",
    "torch",
    "numpy",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "pytrec-eval-terrier",
    "ranx",
    "numba",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def environment() -> dict[str, Any]:
    """The machine (CPU, usable cores, memory, GPU) and the versions of the packages timed."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    gpu = None
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "gpu": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def data_dir() -> Path:
    """The local data directory: ``$LANGMIX_DATA_DIR``, else ``../shared/data`` next to the repo."""
    root = os.environ.get("LANGMIX_DATA_DIR")
    path = Path(root) if root else REPO.parent / "shared" / "data"
    if not path.is_dir():
        raise SystemExit(
            f"benchmarks need the local data directory; {path} does not exist "
            "(set LANGMIX_DATA_DIR)"
        )
    return path


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def best_time(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Fastest of ``repeat`` wall-clock timings of ``fn()`` (seconds) and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def write_result(name: str, figures: dict[str, Any], settings: dict[str, Any]) -> Path:
    """Write ``bench/results/{name}.json`` and echo it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "settings": settings,
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return path
