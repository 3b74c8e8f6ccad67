"""Print, write or check docs/engine-support.md, the engine support matrix as a table (planner/engines.py).

    python tools/engine_support.py            # print it
    python tools/engine_support.py --write    # write docs/engine-support.md
    python tools/engine_support.py --check    # exit 1 when the file is not current
"""
from __future__ import annotations

import os
from pathlib import Path

from planner.engines import main

if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parents[1])  # docs/ is relative to the repository root
    raise SystemExit(main())
