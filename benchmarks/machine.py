"""What the benchmarks record about the machine they ran on (shared by every benchmarks/<name>/run.py)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """'2 cores (AMD EPYC ..., x86_64), Linux, Python 3.11.7, OR-Tools 9.15, numpy 2.4'."""
    import numpy
    import ortools

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}, {platform.machine()}), {platform.system()}, Python "
            f"{platform.python_version()}, OR-Tools {ortools.__version__}, numpy {numpy.__version__}")


def cache_bytecode() -> None:
    """Byte-compile the planner package into its `__pycache__` before timing, as an installed package has it.

    Python caches a module's bytecode on its first import unless PYTHONDONTWRITEBYTECODE is set (it is on the
    2-core machine these benchmarks are recorded on), and it reads a cached file either way. Without this step
    every timed `planner` subprocess there recompiles the planner's ~70 modules: 0.08-0.1 s of CPU per command
    (a plan of llama-3.1-70b over the catalog: 0.64-0.71 s CPU without, 0.59 s with, 2026-11-27), which a user's
    installation pays once. The sources are unchanged; a stale cache file is recompiled as usual."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "planner"), quiet=1)
