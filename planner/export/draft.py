"""Speculative decoding in exports (issue #17): `planner estimate --json` output (with or without a draft model) as
a plan, and each engine's launch arguments for a separate draft model, recorded in catalog/engines/<engine>.toml."""
from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..numbers import is_real, is_whole


def is_estimate(doc: Any) -> bool:
    return (isinstance(doc, dict) and "schema_version" not in doc and isinstance(doc.get("inputs"), dict)
            and "metrics" in doc and "placement" in doc)


def plan_from_estimate(est: dict[str, Any]) -> dict[str, Any]:
    """The plan fields an export reads, from `planner estimate --json` output: one replica of the estimated
    layout, no SLO, its price; `speculative` carries the draft model."""
    inp = est["inputs"]
    if est.get("fits") is False:
        raise InputError("plan: the estimate does not fit in memory (fits: false); nothing to export")
    plan = {
        "schema_version": 1, "model": est.get("model"), "gpu": est.get("gpu"),
        "parallelism": {k: inp.get(k) for k in ("tp", "pp", "ep", "dp")} | {"replicas": 1},
        "precision": {"weights": inp.get("weights"), "kv": inp.get("kv")},
        "placement": est.get("placement"), "batch": inp.get("batch"),
        "workload": {"isl": inp.get("isl"), "osl": inp.get("osl")},
        "memory_per_gpu_bytes": est.get("memory_per_gpu_bytes"),
        "cost": {"usd_per_hour_per_gpu": inp.get("usd_per_hour_per_gpu"),
                 "usd_per_million_output_tokens": (est.get("cost") or {}).get("usd_per_million_output_tokens")},
        "slo": {}, "metrics": est.get("metrics"),
    }
    if inp.get("max_model_len") is not None:
        plan["workload"]["max_model_len"] = inp["max_model_len"]
    if inp.get("speculative") is not None:
        plan["speculative"] = inp["speculative"]
    return plan


def check_speculative(plan: dict[str, Any]) -> None:
    spec = plan.get("speculative")
    if spec is None:
        return
    if (not isinstance(spec, dict) or not isinstance(spec.get("draft"), str) or not spec["draft"].strip()
            or not is_whole(spec.get("gamma")) or not 1 <= spec["gamma"] <= 64
            or not is_real(spec.get("alpha")) or not 0 <= spec["alpha"] <= 1):
        raise InputError(f"plan: speculative must be {{draft: a model, gamma: 1..64 draft tokens, alpha: 0..1}}, "
                         f"got {spec!r}"[:200])
    from ..text import check_text

    check_text(spec["draft"], "plan: speculative.draft")
    if spec["draft"].startswith("-"):
        raise InputError(f"plan: speculative.draft must not start with '-', got {spec['draft']!r}"[:200])
