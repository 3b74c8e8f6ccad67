"""The engine x GPU support matrix (catalog/engines/support.toml): which weight/KV precisions on which GPU
architecture the pinned engines cannot run. `check` answers for a plan (or a bare layout) and one engine; exports
refuse what it reports (planner/export/base.py check_support)."""
from __future__ import annotations

from typing import Any

from ..errors import InputError
from .spec import support_matrix

ENGINES_SERVING = ("vllm", "sglang", "trtllm")  # the serving engines (k8s runs vLLM or SGLang in pods)


def architecture(gpu_id: str) -> str | None:
    return support_matrix().get("architecture", {}).get(gpu_id)


def unsupported_rule(engine: str, gpu_id: str, weights: str, kv: str) -> dict[str, Any] | None:
    """The first rule forbidding `engine` on `gpu_id` with these precisions; a rule without `weights`/`kv` covers
    every precision."""
    arch = architecture(gpu_id)
    for rule in support_matrix().get("unsupported", []):
        if (engine in _engines(rule) and arch in rule.get("architectures", [])
                and kv in rule.get("kv", [kv]) and weights in rule.get("weights", [weights])):
            return rule
    return None


def _engines(rule: dict[str, Any]) -> list[str]:
    return [rule["engine"]] if isinstance(rule["engine"], str) else list(rule["engine"])


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


def unsupported_feature(engine: str, feature: str) -> dict[str, Any] | None:
    for rule in support_matrix().get("unsupported_feature", []):
        if rule["engine"] == engine and rule["feature"] == feature:
            return rule
    return None


def runs_on(engine: str, gpu_id: str, weights: str, kv: str) -> bool:
    return unsupported_rule(engine, gpu_id, weights, kv) is None


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
