"""Plans for the export tests: every example request file, planned once per session, and a few shaped plans."""
from __future__ import annotations

from pathlib import Path

import pytest

# fleet-*.toml are `planner fleet` requests (many pools, no single plan to export); train-*.toml are training runs
EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.toml")
                  if not p.name.startswith(("fleet-", "train-")))


def plan_example(path: Path) -> dict:
    from planner import api

    # the colocated plan of each example: one replica type per export (disaggregated plans, which some examples
    # choose under --disagg auto, are exported in tests/export/test_disagg.py)
    return api.plan(path, disagg="off").to_dict()


_PLANS: dict[str, dict] = {}


@pytest.fixture(scope="session")
def example_plan():
    def get(path: Path) -> dict:
        if path.name not in _PLANS:
            _PLANS[path.name] = plan_example(path)
        return _PLANS[path.name]
    return get


@pytest.fixture(scope="session")
def uneven_pp_plan():
    """Llama-3.1-70B on PP6: the optimizer gives the end stages fewer layers ([12, 14, 14, 14, 14, 12])."""
    from planner import api

    return api.plan("llama-3.1-70b", disagg="off", isl=1000, osl=300, gpus="h100-sxm", pp=[6], tp=[1],
                    min_tokens_per_s_user=10, time_limit_s=20).to_dict()


@pytest.fixture(scope="session")
def moe_plan():
    from planner import api

    return api.plan("mixtral-8x7b", disagg="off", isl=1000, osl=300, gpus="h100-sxm", tp=[8], min_tokens_per_s_user=60,
                    time_limit_s=20).to_dict()
