"""The properties, as plain functions of a `Scenario` (test_properties.py runs them under hypothesis; report.py
runs more of them and counts). Each returns what it checked and the violations it found."""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from planner import api
from planner.errors import InfeasibleError, PlannerError
from planner.search.solve import search

from .checker import check_frontier, check_plan
from .strategies import Scenario

OUTCOMES: Counter = Counter()  # plan / infeasible / time limit, over every solve the properties make


def _folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="planner-prop-")


def plan_is_sound(s: Scenario) -> list[str]:
    """The returned plan (as JSON) passes the independent checker; infeasible is an allowed answer."""
    with _folder() as d:
        kw = s.write(Path(d))
        ask, cat = s.ask(kw)
        try:
            p = api.plan(**kw, disagg="off")  # the checker reads a colocated plan
        except InfeasibleError:
            OUTCOMES["infeasible"] += 1
            return []
        OUTCOMES["plan"] += 1
        return check_plan(json.loads(json.dumps(p.to_dict())), ask, cat)


def accepted_input_never_crashes(s: Scenario) -> list[str]:
    """Inputs at the validation limits: a plan that passes the checker, or a PlannerError (one clear line), never
    another exception. Checks `estimate` of a one-GPU configuration too."""
    with _folder() as d:
        kw = s.write(Path(d))
        try:
            ask, cat = s.ask(kw)
        except PlannerError:
            OUTCOMES["boundary refused"] += 1
            return []
        try:
            api.estimate(kw["model"], s.gpu_ids[0], batch=1, isl=s.isl, osl=s.osl, catalog=cat)
            p = api.plan(**kw, disagg="off")  # the checker reads a colocated plan
        except PlannerError:
            OUTCOMES["boundary refused"] += 1
            return []
        OUTCOMES["boundary plan"] += 1
        return check_plan(json.loads(json.dumps(p.to_dict())), ask, cat)


def frontier_is_sound(s: Scenario, speeds: tuple[float, ...]) -> list[str]:
    with _folder() as d:
        kw = s.write(Path(d))
        ask, cat = s.ask(kw)
        kw.pop("min_tokens_per_s_user")
        try:
            f = api.frontier(speeds=speeds, **kw)
        except InfeasibleError:
            OUTCOMES["frontier infeasible"] += 1
            return []
        OUTCOMES["frontier"] += 1
        return check_frontier(json.loads(json.dumps(f)), ask, cat)


def _objective(s: Scenario, time_limit_s: float | None = None) -> tuple[int, str] | None:
    """(integer objective, solver status) of the best plan, or None when infeasible; `time_limit_s`: CP-SAT's
    limit (None: the planner's default)."""
    with _folder() as d:
        kw = s.write(Path(d))
        if time_limit_s is not None:
            kw["time_limit_s"] = time_limit_s
        req, cat = api.make_request(**kw)
        try:
            res = search(req, cat.perf, alternatives=False)
        except InfeasibleError:
            OUTCOMES["monotonicity solves"] += 1
            return None
        OUTCOMES["monotonicity solves"] += 1
        return res.best.objective, res.best.solution.status if res.best.solution else "HEURISTIC"


def never_costs_more(tight: Scenario, loose: Scenario, what: str, time_limit_s: float | None = None) -> list[str]:
    """`loose` relaxes `tight` (a looser SLO, a cheaper price, more GPUs, less demand): whenever `tight` has a plan,
    `loose` has one, and (both proven optimal within `time_limit_s`) it costs no more."""
    OUTCOMES["monotonicity pairs"] += 1
    a = _objective(tight, time_limit_s)
    if a is None:
        return []
    b = _objective(loose, time_limit_s)
    if b is None:
        return [f"{what}: the tighter request has a plan (objective {a[0]}) but the looser one is infeasible"]
    if a[1] == b[1] == "OPTIMAL" and b[0] > a[0]:
        return [f"{what}: looser request costs more ({b[0]} > {a[0]})"]
    return []


def relaxations(s: Scenario, factor: float) -> list[tuple[Scenario, str]]:
    """Looser versions of `s` (factor in (0, 1)): each must never cost more than `s`."""
    out: list[tuple[Scenario, str]] = [
        (s.with_(min_tokens_per_s_user=s.min_tokens_per_s_user * factor), "looser tokens/s/user"),
    ]
    if s.ttft_ms is not None:
        out.append((s.with_(ttft_ms=s.ttft_ms / factor), "looser TTFT"))
    if s.gpus_new:
        cheaper = [dict(g) for g in s.gpus_new]
        p = cheaper[0]["prices"]["market"]["usd_per_hour"]
        cheaper[0] = {**cheaper[0], "prices": {"market": {"usd_per_hour": round(max(0.01, p * factor), 4)}}}
        out.append((s.with_(gpus_new=cheaper), "cheaper price (new GPU)"))
    if s.gpus_shipped:
        from planner.catalog import load_catalog

        g = load_catalog().gpu(s.gpus_shipped[0])
        out.append((s.with_(price_overrides={g.id: round(g.usd_per_hour * factor, 4)}), "cheaper price (override)"))
    if s.max_gpus is not None:
        out.append((s.with_(max_gpus=max(s.max_gpus + 1, int(s.max_gpus / factor))), "larger --max-gpus"))
    if s.rate_rps is not None:
        out.append((s.with_(rate_rps=s.rate_rps * factor), "lower demand"))
    return out


def count_summary() -> dict[str, Any]:
    return dict(OUTCOMES)
