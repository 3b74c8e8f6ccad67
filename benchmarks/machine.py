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
