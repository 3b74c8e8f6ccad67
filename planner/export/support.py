"""The engine x GPU support matrix (catalog/engines/support.toml, read by planner/engines.py) applied to a plan:
which weight/KV precisions on which GPU architecture, and which features, the pinned engines cannot run. `check` answers for a plan (or a bare layout) and one engine; exports
refuse what it reports (planner/export/base.py check_support)."""
from __future__ import annotations

from typing import Any

from ..engines import (ENGINES_SERVING, architecture, runs_on, unsupported_feature,  # noqa: F401 (re-exported)
                       unsupported_rule)
from ..errors import InputError


def features(plan: Any) -> list[str]:
    """The features of support.toml a plan (dict) uses: pp, ep, draft_model, draft_model_dp."""
    if not isinstance(plan, dict):
        return []
    par = plan.get("parallelism") or plan.get("inputs") or {}
    out = []
    if par.get("pp", 1) > 1:
        out.append("pp")
    if par.get("ep", 1) > 1:
        out.append("ep")
    if speculative(plan):
        out.append("draft_model")
        if par.get("dp", 1) > 1:
            out.append("draft_model_dp")
    return out


def speculative(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The draft model of a plan: `speculative` ({draft, gamma, alpha}) at the top or in estimate's `inputs`."""
    spec = plan.get("speculative") or (plan.get("inputs") or {}).get("speculative")
    return spec if isinstance(spec, dict) and spec.get("draft") else None


def check(plan_or_layout: Any, engine: str) -> list[str]:
    """Why `engine` cannot run this plan (a plan dict: `planner plan --json` / `estimate --json` output) or layout
    (anything with gpu, weights, kv attributes or keys), one line per reason with its source; [] when it can."""
    if engine not in ENGINES_SERVING:
        raise InputError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES_SERVING)})")
    gpu, weights, kv = _fields(plan_or_layout)
    out = []
    rule = unsupported_rule(engine, gpu, weights, kv)  # None for a user-catalog accelerator: no rule names it
    if rule is not None:
        out.append(f"{engine} cannot run {weights} weights with a {kv} KV cache on {gpu}: {rule['reason']} "
                   f"[{rule['source']}]")
    for feat in features(plan_or_layout):
        rule = unsupported_feature(engine, feat)
        if rule is not None:
            out.append(f"{engine} cannot run {feat.replace('_', ' ')}: {rule['reason']} [{rule['source']}]")
    return out


def _fields(p: Any) -> tuple[str, str, str]:
    if isinstance(p, dict):
        prec = p.get("precision") if isinstance(p.get("precision"), dict) else (p.get("inputs") or p)
        gpu = p.get("gpu")
        return (gpu.get("id") if isinstance(gpu, dict) else gpu), prec.get("weights"), prec.get("kv")
    gpu = getattr(p, "gpu", None)
    return getattr(gpu, "id", gpu), getattr(p, "weights"), getattr(p, "kv")
